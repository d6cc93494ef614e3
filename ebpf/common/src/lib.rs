//! The layouts of the maps manul's TC programs read and felix writes:
//! `#[repr(C)]`, no padding the compiler could fill differently on either
//! side, `no_std` so the programs (bpfel-unknown-none) build it too. The
//! `user` feature adds `aya::Pod` for user space.
//!
//! | map | type | key | value |
//! |---|---|---|---|
//! | [`ROUTES_V4`] | LPM trie | prefix length + 4 address bytes (network order) | [`RouteValue`] |
//! | [`ROUTES_V6`] | LPM trie | prefix length + 16 address bytes | [`RouteValue`] |
//! | [`ENDPOINTS`] | hash | host-side interface index (`u32`) | [`EndpointValue`] |
//! | [`COUNTERS`] | per-CPU hash | host-side interface index (`u32`) | [`Counters`] |
//! | [`STACK_FLOWS`] | LRU hash | [`FlowKey`]: a workload's end of a connection | `u8` (1) |

#![no_std]

/// IPv4 route map name (also its pin file name).
pub const ROUTES_V4: &str = "routes_v4";
/// IPv6 route map name.
pub const ROUTES_V6: &str = "routes_v6";
/// Endpoint map name.
pub const ENDPOINTS: &str = "endpoints";
/// Per-endpoint counters map name.
pub const COUNTERS: &str = "counters";
/// The map of connections the kernel's stack carries (the programs write
/// it; felix only pins and removes it).
pub const STACK_FLOWS: &str = "stack_flows";
/// The workload-ingress TC program's name in the object file.
pub const PROG_WORKLOAD_INGRESS: &str = "workload_ingress";
/// The uplink-ingress TC program's name in the object file.
pub const PROG_UPLINK_INGRESS: &str = "uplink_ingress";

/// Default capacity of each route map.
pub const DEFAULT_ROUTES: u32 = 65_536;
/// Default capacity of the endpoint and counter maps.
pub const DEFAULT_ENDPOINTS: u32 = 4_096;
/// Capacity of [`STACK_FLOWS`]: connections of this host's workloads that
/// the stack carries at once (least recently used ones are forgotten
/// first; every packet of a connection refreshes it).
pub const DEFAULT_STACK_FLOWS: u32 = 262_144;

/// Most IPv4 addresses one endpoint may send from.
pub const MAX_V4: usize = 4;
/// Most IPv6 addresses one endpoint may send from.
pub const MAX_V6: usize = 4;

/// What a route's destination is ([`RouteValue::kind`]).
pub mod kind {
    /// A workload on this host: `ifindex` is its host-side interface.
    pub const LOCAL_WORKLOAD: u8 = 1;
    /// A workload block on another host: `next_hop` is that host.
    pub const REMOTE_WORKLOAD: u8 = 2;
    /// An address of this host.
    pub const LOCAL_HOST: u8 = 3;
    /// Another host.
    pub const REMOTE_HOST: u8 = 4;
    /// Dropped here (a local block's unassigned addresses).
    pub const BLACKHOLE: u8 = 5;
}

/// Route properties ([`RouteValue::flags`], a bit set).
pub mod flags {
    /// The destination is inside an IP pool.
    pub const IN_POOL: u8 = 1;
    /// Its pool NATs traffic leaving the pool.
    pub const NAT_OUTGOING: u8 = 2;
    /// The next hop is on one of this host's subnets.
    pub const SAME_SUBNET: u8 = 4;
    /// Reached through a tunnel (VXLAN, IPIP): the programs leave it to the stack.
    pub const TUNNELED: u8 = 8;
}

/// A route: what the destination is and how to reach it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteValue {
    /// One of [`kind`].
    pub kind: u8,
    /// Bits of [`flags`].
    pub flags: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// The interface (local workloads), else 0.
    pub ifindex: u32,
    /// The next hop (remote routes): 4 bytes of IPv4 then zeros, or IPv6.
    pub next_hop: [u8; 16],
}

/// A local workload's end of a connection: its address, its port (TCP,
/// UDP or SCTP, as on the wire), the protocol and the family (4 or 6;
/// an IPv4 address fills the first 4 bytes, the rest are 0).
///
/// A workload's packet that the programs hand to the kernel's stack
/// for a destination that is not a workload (a Service IP that
/// kube-proxy rewrites, an external address that is masqueraded, this
/// host) records its source end here; a packet the programs would carry
/// straight to a workload whose destination end is recorded goes to the
/// stack instead, so that replies pass the same conntrack entry (and
/// its NAT) as the requests did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The workload's address.
    pub addr: [u8; 16],
    /// Its port, in network order.
    pub port: u16,
    /// IP protocol number (6, 17, 132).
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
}

/// A workload endpoint, by its host-side interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointValue {
    /// The host-side interface index (also the key).
    pub ifindex: u32,
    /// Reserved for endpoint flags; 0.
    pub flags: u32,
    /// The workload's own MAC (destination MAC of packets sent to it).
    pub mac: [u8; 6],
    /// The host-side interface's MAC (source MAC of packets sent to it).
    pub host_mac: [u8; 6],
    /// How many of `v4` are set.
    pub n_v4: u8,
    /// How many of `v6` are set.
    pub n_v6: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// Allowed IPv4 source addresses (network order).
    pub v4: [[u8; 4]; MAX_V4],
    /// Allowed IPv6 source addresses.
    pub v6: [[u8; 16]; MAX_V6],
}

impl EndpointValue {
    /// Is `addr` one of the allowed IPv4 sources?
    #[inline(always)]
    pub fn allows_v4(&self, addr: &[u8; 4]) -> bool {
        let mut i = 0;
        while i < MAX_V4 {
            if i < self.n_v4 as usize && self.v4[i] == *addr {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Is `addr` one of the allowed IPv6 sources?
    #[inline(always)]
    pub fn allows_v6(&self, addr: &[u8; 16]) -> bool {
        let mut i = 0;
        while i < MAX_V6 {
            if i < self.n_v6 as usize && self.v6[i] == *addr {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// Per-endpoint counters (one per CPU; user space sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Packets the programs redirected themselves.
    pub forwarded_packets: u64,
    /// Their bytes.
    pub forwarded_bytes: u64,
    /// Packets dropped: source not the endpoint's.
    pub spoofed_packets: u64,
    /// Their bytes.
    pub spoofed_bytes: u64,
    /// Packets handed to the kernel's stack unchanged.
    pub passed_packets: u64,
    /// Their bytes.
    pub passed_bytes: u64,
    /// Packets the uplink program redirected into this endpoint.
    pub delivered_packets: u64,
    /// Their bytes.
    pub delivered_bytes: u64,
}

impl Counters {
    /// The field-wise sum (over CPUs).
    pub fn add(&mut self, o: &Counters) {
        self.forwarded_packets += o.forwarded_packets;
        self.forwarded_bytes += o.forwarded_bytes;
        self.spoofed_packets += o.spoofed_packets;
        self.spoofed_bytes += o.spoofed_bytes;
        self.passed_packets += o.passed_packets;
        self.passed_bytes += o.passed_bytes;
        self.delivered_packets += o.delivered_packets;
        self.delivered_bytes += o.delivered_bytes;
    }
}

#[cfg(feature = "user")]
mod pod {
    // aya::Pod asks for plain data: Copy, and every bit pattern of its size
    // a valid value, with no padding bytes (which would be uninitialised).
    // The sizes asserted below equal the sum of the fields, so none has
    // padding.

    // SAFETY: #[repr(C)], Copy, only u8, u32 and byte arrays; 24 bytes.
    unsafe impl aya::Pod for super::RouteValue {}
    // SAFETY: #[repr(C)], Copy, only u8, u32 and byte arrays; its size is
    // asserted to be that of its fields.
    unsafe impl aya::Pod for super::EndpointValue {}
    // SAFETY: #[repr(C)], Copy, eight u64s.
    unsafe impl aya::Pod for super::Counters {}
    // SAFETY: #[repr(C)], Copy, a byte array, a u16 and two u8s; 20 bytes.
    unsafe impl aya::Pod for super::FlowKey {}
}

const _: () = assert!(core::mem::size_of::<RouteValue>() == 24);
const _: () = assert!(core::mem::size_of::<EndpointValue>() == 24 + 4 * MAX_V4 + 16 * MAX_V6);
const _: () = assert!(core::mem::size_of::<Counters>() == 64);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 20);
