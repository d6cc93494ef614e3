//! `uplink_ingress`: traffic from the fabric to local workloads, straight
//! into the workload.

use aya_ebpf::{
    bindings::TC_ACT_OK, helpers::generated::bpf_redirect_peer, maps::lpm_trie::Key,
    programs::TcContext,
};
use manul_ebpf_common::kind;

use crate::ETH_LEN;
use crate::flows;
use crate::fwd::{decrement_ttl_v4, endpoint, set_macs};
use crate::maps::{Outcome, ROUTES_V4, ROUTES_V6, count};

/// `skb->pkt_type` of a frame addressed to this host.
const PACKET_HOST: u32 = 0;

/// Is the frame addressed to this host (not broadcast, not another MAC)?
#[inline(always)]
fn for_this_host(ctx: &TcContext) -> bool {
    // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed this
    // program, valid for the whole run; the verifier checks the field read.
    unsafe { (*ctx.skb.skb).pkt_type == PACKET_HOST }
}

/// Rewrite MACs for the workload behind `target`, count, redirect.
#[inline(always)]
fn deliver(ctx: &mut TcContext, target: u32) -> Option<i32> {
    let ep = endpoint(target)?;
    if !set_macs(ctx, &ep.mac, &ep.host_mac) {
        return None;
    }
    count(target, Outcome::Delivered, ctx.len() as u64);
    // SAFETY: the helper takes two integers and touches no memory of
    // ours; it records where the packet goes when the program returns.
    Some(unsafe { bpf_redirect_peer(target, 0) } as i32)
}

/// IPv4 from the uplink.
pub fn ipv4(mut ctx: TcContext) -> i32 {
    deliver_v4(&mut ctx).unwrap_or(TC_ACT_OK as i32)
}

#[inline(always)]
fn deliver_v4(ctx: &mut TcContext) -> Option<i32> {
    if !for_this_host(ctx) {
        return None;
    }
    let dst: [u8; 4] = ctx.load(ETH_LEN + 16).ok()?;
    let route = *ROUTES_V4.get(Key::new(32, dst))?;
    if route.kind != kind::LOCAL_WORKLOAD {
        return None;
    }
    endpoint(route.ifindex)?;
    // A reply of a connection the stack carries (NAT): the stack's.
    if !flows::fast(&flows::ports_v4(ctx), flows::v4(dst), 4) {
        return None;
    }
    let word: u16 = ctx.load(ETH_LEN + 8).ok()?;
    if word.to_ne_bytes()[0] <= 1 {
        return None;
    }
    decrement_ttl_v4(ctx, word)?;
    deliver(ctx, route.ifindex)
}

/// IPv6 from the uplink.
pub fn ipv6(mut ctx: TcContext) -> i32 {
    deliver_v6(&mut ctx).unwrap_or(TC_ACT_OK as i32)
}

#[inline(always)]
fn deliver_v6(ctx: &mut TcContext) -> Option<i32> {
    if !for_this_host(ctx) {
        return None;
    }
    let dst: [u8; 16] = ctx.load(ETH_LEN + 24).ok()?;
    let route = *ROUTES_V6.get(Key::new(128, dst))?;
    if route.kind != kind::LOCAL_WORKLOAD {
        return None;
    }
    endpoint(route.ifindex)?;
    if !flows::fast(&flows::ports_v6(ctx), dst, 6) {
        return None;
    }
    let hop_limit: u8 = ctx.load(ETH_LEN + 7).ok()?;
    if hop_limit <= 1 {
        return None;
    }
    ctx.store(ETH_LEN + 7, &(hop_limit - 1), 0).ok()?;
    deliver(ctx, route.ifindex)
}
