//! Connections the kernel's stack carries (`stack_flows`, see
//! [`manul_ebpf_common::FlowKey`]): a workload's packet handed to the
//! stack for a destination that is not a workload (the stack may rewrite
//! it) records the workload's end of its connection; a packet the
//! programs would carry straight to a workload goes to the stack instead
//! when the workload's end is recorded. So the replies of a connection
//! kube-proxy rewrote (a Service IP to a backend pod) pass the conntrack
//! entry that rewrites them back, like the requests did, and
//! masqueraded traffic stays with its NAT, while pod-to-pod traffic keeps
//! the fast path.

use aya_ebpf::{bindings::BPF_ANY, programs::TcContext};
use manul_ebpf_common::FlowKey;

use crate::ETH_LEN;
use crate::maps::STACK_FLOWS;

/// What a packet's transport header says.
#[derive(Clone, Copy)]
pub(crate) enum Ports {
    /// TCP, UDP or SCTP: the protocol and both ports (network order).
    Known { proto: u8, sport: u16, dport: u16 },
    /// Another protocol (ICMP, ...): no connection end to look at.
    None,
    /// A fragment, an IPv6 extension header, a header that cannot be
    /// read: the ports are not at hand, so the stack decides.
    Unknown,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;

#[inline(always)]
fn has_ports(proto: u8) -> bool {
    proto == TCP || proto == UDP || proto == SCTP
}

#[inline(always)]
fn at(ctx: &TcContext, proto: u8, offset: usize) -> Ports {
    match ctx.load::<[u16; 2]>(offset) {
        Ok([sport, dport]) => Ports::Known {
            proto,
            sport,
            dport,
        },
        Err(_) => Ports::Unknown,
    }
}

/// The ports of an IPv4 packet (after its Ethernet header).
#[inline(always)]
pub(crate) fn ports_v4(ctx: &TcContext) -> Ports {
    let (Ok(vihl), Ok(frag), Ok(proto)) = (
        ctx.load::<u8>(ETH_LEN),
        ctx.load::<u16>(ETH_LEN + 6),
        ctx.load::<u8>(ETH_LEN + 9),
    ) else {
        return Ports::Unknown;
    };
    // More fragments, or a fragment offset: not the whole datagram.
    if u16::from_be(frag) & 0x3fff != 0 {
        return Ports::Unknown;
    }
    if !has_ports(proto) {
        return Ports::None;
    }
    let ihl = (vihl & 0x0f) as usize * 4;
    if ihl < 20 {
        return Ports::Unknown;
    }
    at(ctx, proto, ETH_LEN + ihl)
}

/// The ports of an IPv6 packet whose next header is the transport.
#[inline(always)]
pub(crate) fn ports_v6(ctx: &TcContext) -> Ports {
    let Ok(next) = ctx.load::<u8>(ETH_LEN + 6) else {
        return Ports::Unknown;
    };
    match next {
        TCP | UDP | SCTP => at(ctx, next, ETH_LEN + 40),
        // Hop-by-hop, routing, fragment, ESP, AH, destination options:
        // the transport header is further on, or not readable.
        0 | 43 | 44 | 50 | 51 | 60 => Ports::Unknown,
        _ => Ports::None,
    }
}

#[inline(always)]
fn key(addr: [u8; 16], family: u8, proto: u8, port: u16) -> FlowKey {
    FlowKey {
        addr,
        port,
        proto,
        family,
    }
}

/// An IPv4 address in a key.
#[inline(always)]
pub(crate) fn v4(a: [u8; 4]) -> [u8; 16] {
    [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// The stack carries this packet from a workload at `src`: remember the
/// workload's end (refreshed by every such packet).
#[inline(always)]
pub(crate) fn remember(ports: &Ports, src: [u8; 16], family: u8) {
    if let Ports::Known { proto, sport, .. } = *ports {
        let _ = STACK_FLOWS.insert(key(src, family, proto, sport), 1, BPF_ANY as u64);
    }
}

/// May the programs carry this packet for `dst` themselves? Not when the
/// ports are unknown, nor when the destination's end is one the stack
/// carries.
#[inline(always)]
pub(crate) fn fast(ports: &Ports, dst: [u8; 16], family: u8) -> bool {
    match *ports {
        Ports::Known { proto, dport, .. } => STACK_FLOWS
            .get_ptr(key(dst, family, proto, dport))
            .is_none(),
        Ports::None => true,
        Ports::Unknown => false,
    }
}
