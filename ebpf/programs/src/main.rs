//! manul's TC programs (aya-ebpf, built for bpfel-unknown-none by felix's
//! build script; no std).
//!
//! `workload_ingress` runs at TC ingress of a workload's host-side
//! interface, i.e. on every packet the pod sends:
//!
//! 1. not IPv4/IPv6 (ARP, ...), or the interface is not a known endpoint:
//!    handed to the stack;
//! 2. source not one of the endpoint's addresses: dropped and counted as
//!    spoofed (IPv6 link-local and unspecified sources, which the stack
//!    never forwards, pass: neighbour discovery needs them);
//! 3. destination routed to a local workload: MACs rewritten, TTL/hop limit
//!    decremented, redirected into the workload (`bpf_redirect_peer`);
//! 4. destination in a remote workload block (not tunnelled): the kernel's
//!    FIB is asked (`bpf_fib_lookup`); with a resolved neighbour the MACs are
//!    rewritten and the packet redirected out of the egress interface, else
//!    `bpf_redirect_neigh` resolves it;
//! 5. anything else (host addresses, Service IPs, external addresses and
//!    any destination outside every pool — a workload whose pool is gone
//!    included: it may need NAT outgoing —, blackholes, unknown, TTL about
//!    to expire, tunnelled blocks, IP fragments): handed to the stack
//!    unchanged; when the destination is not a workload (a Service IP, an
//!    external address, this host), the sender's end of the connection is
//!    recorded (`flows`): packets for that end (the replies) then take the
//!    stack too, through the conntrack entry (and NAT: kube-proxy's
//!    Service DNAT, masquerade) the requests made.
//!
//! Every outcome for a known endpoint is counted per endpoint (per CPU).
//!
//! `uplink_ingress` runs at TC ingress of the host's uplink: a packet
//! addressed to this host (by MAC) for a local workload is redirected
//! straight into it (MACs rewritten, TTL/hop limit decremented,
//! `bpf_redirect_peer`) and counted as delivered to that endpoint — unless
//! it belongs to a connection the stack carries (`flows`); everything else
//! goes to the stack.

#![no_std]
#![no_main]
// The bindings' constant types differ between targets (TC_ACT_* is i32 for
// bpfel, u32 on the host): the casts are needed somewhere.
#![allow(clippy::unnecessary_cast)]

mod flows;
mod fwd;
mod maps;
mod uplink;

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};

/// EtherType IPv4 (network order as loaded).
const ETH_P_IP: u16 = 0x0800;
/// EtherType IPv6.
const ETH_P_IPV6: u16 = 0x86DD;
/// Ethernet header length.
pub(crate) const ETH_LEN: usize = 14;

#[classifier]
pub fn workload_ingress(ctx: TcContext) -> i32 {
    let Ok(proto) = ctx.load::<u16>(12) else {
        return TC_ACT_OK as i32;
    };
    match u16::from_be(proto) {
        ETH_P_IP => fwd::ipv4(ctx),
        ETH_P_IPV6 => fwd::ipv6(ctx),
        _ => fwd::pass_other(&ctx),
    }
}

#[classifier]
pub fn uplink_ingress(ctx: TcContext) -> i32 {
    let Ok(proto) = ctx.load::<u16>(12) else {
        return TC_ACT_OK as i32;
    };
    match u16::from_be(proto) {
        ETH_P_IP => uplink::ipv4(ctx),
        ETH_P_IPV6 => uplink::ipv6(ctx),
        _ => TC_ACT_OK as i32,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
