//! The maps (layouts in `manul-ebpf-common`), pinned by name in the
//! directory felix loads them with, and the counter helper.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::map,
    maps::{HashMap, LpmTrie, LruHashMap, PerCpuHashMap},
};
use manul_ebpf_common::{
    Counters, DEFAULT_ENDPOINTS, DEFAULT_ROUTES, DEFAULT_STACK_FLOWS, EndpointValue, FlowKey,
    RouteValue,
};

/// IPv4 routes by prefix.
#[map(name = "routes_v4")]
pub static ROUTES_V4: LpmTrie<[u8; 4], RouteValue> = LpmTrie::pinned(DEFAULT_ROUTES, 0);

/// IPv6 routes by prefix.
#[map(name = "routes_v6")]
pub static ROUTES_V6: LpmTrie<[u8; 16], RouteValue> = LpmTrie::pinned(DEFAULT_ROUTES, 0);

/// Workload endpoints by host-side interface index.
#[map(name = "endpoints")]
pub static ENDPOINTS: HashMap<u32, EndpointValue> = HashMap::pinned(DEFAULT_ENDPOINTS, 0);

/// Workload connection ends the stack carries (see
/// [`manul_ebpf_common::FlowKey`]).
#[map(name = "stack_flows")]
pub static STACK_FLOWS: LruHashMap<FlowKey, u8> = LruHashMap::pinned(DEFAULT_STACK_FLOWS, 0);

/// Per-endpoint counters, per CPU.
#[map(name = "counters")]
pub static COUNTERS: PerCpuHashMap<u32, Counters> = PerCpuHashMap::pinned(DEFAULT_ENDPOINTS, 0);

/// What happened to a packet, for [`count`].
#[derive(Clone, Copy)]
pub enum Outcome {
    Forwarded,
    Spoofed,
    Passed,
    Delivered,
}

/// Count one packet of `bytes` for the endpoint on `ifindex`.
#[inline(always)]
pub fn count(ifindex: u32, outcome: Outcome, bytes: u64) {
    let ptr = match COUNTERS.get_ptr_mut(ifindex) {
        Some(p) => p,
        None => {
            let _ = COUNTERS.insert(ifindex, Counters::default(), BPF_NOEXIST as u64);
            match COUNTERS.get_ptr_mut(ifindex) {
                Some(p) => p,
                None => return,
            }
        }
    };
    // SAFETY: a valid per-CPU value of this CPU, which only this program
    // instance touches while it runs.
    let c = unsafe { &mut *ptr };
    match outcome {
        Outcome::Forwarded => {
            c.forwarded_packets += 1;
            c.forwarded_bytes += bytes;
        }
        Outcome::Spoofed => {
            c.spoofed_packets += 1;
            c.spoofed_bytes += bytes;
        }
        Outcome::Passed => {
            c.passed_packets += 1;
            c.passed_bytes += bytes;
        }
        Outcome::Delivered => {
            c.delivered_packets += 1;
            c.delivered_bytes += bytes;
        }
    }
}
