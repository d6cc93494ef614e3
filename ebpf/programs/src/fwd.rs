//! The forwarding decisions of `workload_ingress`, per address family.

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_OK, TC_ACT_SHOT,
        bpf_fib_lookup, bpf_redir_neigh,
    },
    helpers::generated::{
        bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh, bpf_redirect_peer,
    },
    maps::lpm_trie::Key,
    programs::TcContext,
};
use manul_ebpf_common::{EndpointValue, RouteValue, flags, kind};

use crate::ETH_LEN;
use crate::flows::{self, Ports};
use crate::maps::{ENDPOINTS, Outcome, ROUTES_V4, ROUTES_V6, count};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// The interface the packet came in on (the workload's host side).
#[inline(always)]
fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed this
    // program, valid for the whole run; the verifier checks the field read.
    unsafe { (*ctx.skb.skb).ifindex }
}

/// The endpoint sending on this interface, if felix knows it.
#[inline(always)]
pub(crate) fn endpoint(ifindex: u32) -> Option<&'static EndpointValue> {
    // SAFETY: the value is only read, and only during this run: the kernel
    // keeps a hash map value alive (RCU) until the program returns, even
    // if user space deletes it meanwhile.
    unsafe { ENDPOINTS.get(ifindex) }
}

#[inline(always)]
fn pass(ctx: &TcContext, ifindex: u32) -> i32 {
    count(ifindex, Outcome::Passed, ctx.len() as u64);
    TC_ACT_OK as i32
}

/// ARP and other non-IP frames: counted (for a known endpoint) and passed.
pub fn pass_other(ctx: &TcContext) -> i32 {
    let ifi = ifindex(ctx);
    if endpoint(ifi).is_some() {
        return pass(ctx, ifi);
    }
    TC_ACT_OK as i32
}

/// Rewrite the Ethernet addresses to `dst`, `src`.
#[inline(always)]
pub(crate) fn set_macs(ctx: &mut TcContext, dst: &[u8; 6], src: &[u8; 6]) -> bool {
    ctx.store(0, dst, 0).is_ok() && ctx.store(6, src, 0).is_ok()
}

/// A local workload other than the sender, known as an endpoint.
#[inline(always)]
fn local_target(from: u32, target: u32) -> Option<()> {
    if target == from {
        return None; // hairpin: the stack's business
    }
    endpoint(target).map(|_| ())
}

/// Redirect into the local workload behind host-side interface `target`.
#[inline(always)]
fn to_local(ctx: &mut TcContext, from: u32, target: u32) -> Option<i32> {
    if target == from {
        return None; // hairpin: the stack's business
    }
    let ep = endpoint(target)?;
    if !set_macs(ctx, &ep.mac, &ep.host_mac) {
        return None;
    }
    count(from, Outcome::Forwarded, ctx.len() as u64);
    // SAFETY: the helper takes two integers and touches no memory of
    // ours; it records where the packet goes when the program returns.
    Some(unsafe { bpf_redirect_peer(target, 0) } as i32)
}

/// After a successful or neighbour-less FIB lookup, send the packet on.
#[inline(always)]
fn after_fib(
    ctx: &mut TcContext,
    from: u32,
    rc: i64,
    params: &bpf_fib_lookup,
    nh: &mut bpf_redir_neigh,
) -> Option<i32> {
    if rc == BPF_FIB_LKUP_RET_SUCCESS as i64 {
        if !set_macs(ctx, &params.dmac, &params.smac) {
            return None;
        }
        count(from, Outcome::Forwarded, ctx.len() as u64);
        // SAFETY: the helper takes two integers and touches no memory of
        // ours; it records where the packet goes when the program returns.
        return Some(unsafe { bpf_redirect(params.ifindex, 0) } as i32);
    }
    if rc == BPF_FIB_LKUP_RET_NO_NEIGH as i64 {
        count(from, Outcome::Forwarded, ctx.len() as u64);
        // SAFETY: `nh` is a live, initialised bpf_redir_neigh of the size
        // passed, which the helper only reads.
        return Some(unsafe {
            bpf_redirect_neigh(
                params.ifindex,
                nh as *mut _,
                core::mem::size_of::<bpf_redir_neigh>() as i32,
                0,
            )
        } as i32);
    }
    None
}

/// Is the destination a workload (here or on another host)? Traffic to a
/// workload's own address is never rewritten by the stack (kube-proxy
/// rewrites Service IPs, masquerade applies to destinations outside the
/// pools), so the stack carrying it (a TTL about to expire, a large
/// segment, a tunnel) needs no record in `flows`.
#[inline(always)]
fn to_workload(route: Option<&RouteValue>) -> bool {
    route.is_some_and(|r| r.kind == kind::LOCAL_WORKLOAD || r.kind == kind::REMOTE_WORKLOAD)
}

/// A destination inside a pool. One outside every pool (a workload whose
/// pool was deleted) may need NAT outgoing — nftables' masquerade and
/// conntrack for the replies — so it is left to the stack.
#[inline(always)]
fn in_pool(route: &RouteValue) -> bool {
    route.flags & flags::IN_POOL != 0
}

/// Remote routes the programs forward themselves: untunnelled workload blocks.
#[inline(always)]
fn fast_remote(route: &RouteValue) -> bool {
    route.kind == kind::REMOTE_WORKLOAD && route.flags & flags::TUNNELED == 0
}

/// IPv4: see the crate docs.
pub fn ipv4(mut ctx: TcContext) -> i32 {
    let ifi = ifindex(&ctx);
    let Some(ep) = endpoint(ifi) else {
        return TC_ACT_OK as i32;
    };
    let (Ok(src), Ok(dst)) = (
        ctx.load::<[u8; 4]>(ETH_LEN + 12),
        ctx.load::<[u8; 4]>(ETH_LEN + 16),
    ) else {
        return pass(&ctx, ifi);
    };
    if !ep.allows_v4(&src) {
        count(ifi, Outcome::Spoofed, ctx.len() as u64);
        return TC_ACT_SHOT as i32;
    }
    let ports = flows::ports_v4(&ctx);
    let route = ROUTES_V4.get(Key::new(32, dst)).copied();
    match route.and_then(|r| forward_v4(&mut ctx, ifi, src, dst, r, &ports)) {
        Some(rc) => rc,
        None => {
            if !to_workload(route.as_ref()) {
                flows::remember(&ports, flows::v4(src), 4);
            }
            pass(&ctx, ifi)
        }
    }
}

#[inline(always)]
fn forward_v4(
    ctx: &mut TcContext,
    ifi: u32,
    src: [u8; 4],
    dst: [u8; 4],
    route: RouteValue,
    ports: &Ports,
) -> Option<i32> {
    if route.kind != kind::LOCAL_WORKLOAD && !fast_remote(&route) {
        return None;
    }
    if !in_pool(&route) {
        return None;
    }
    if matches!(ports, Ports::Unknown) {
        return None; // a fragment, an extension header: the stack's
    }
    // TTL and checksum: the word holding TTL and protocol.
    let word: u16 = ctx.load(ETH_LEN + 8).ok()?;
    let ttl = word.to_ne_bytes()[0];
    if ttl <= 1 {
        return None; // the stack sends time-exceeded
    }
    if route.kind == kind::LOCAL_WORKLOAD {
        // Nothing changes before it is sure to be redirected.
        local_target(ifi, route.ifindex)?;
        // A reply of a connection the stack carries (NAT): the stack's.
        if !flows::fast(ports, flows::v4(dst), 4) {
            return None;
        }
        decrement_ttl_v4(ctx, word)?;
        return to_local(ctx, ifi, route.ifindex);
    }
    // SAFETY: a C struct of integers, arrays and unions of integers: all
    // zeroes is a valid value (the helper's documented starting point).
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.ifindex = ifi;
    params.__bindgen_anon_1.tot_len = (ctx.len() as u16).wrapping_sub(ETH_LEN as u16);
    params.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(src);
    params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(dst);
    // SAFETY: `ctx.as_ptr()` is this program's context; `params` is a live,
    // initialised bpf_fib_lookup of the size passed (the helper reads and
    // writes it).
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &mut params as *mut _,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 && rc != BPF_FIB_LKUP_RET_NO_NEIGH as i64 {
        return None;
    }
    decrement_ttl_v4(ctx, word)?;
    // SAFETY: a C struct of integers and a union of integers: all zeroes
    // is a valid value.
    let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
    nh.nh_family = AF_INET as u32;
    // SAFETY: the IPv4 member of unions the kernel filled in for AF_INET.
    nh.__bindgen_anon_1.ipv4_nh = unsafe { params.__bindgen_anon_4.ipv4_dst };
    after_fib(ctx, ifi, rc, &params, &mut nh)
}

/// TTL - 1 with the header checksum updated incrementally.
#[inline(always)]
pub(crate) fn decrement_ttl_v4(ctx: &mut TcContext, word: u16) -> Option<()> {
    let mut b = word.to_ne_bytes();
    b[0] -= 1;
    let new = u16::from_ne_bytes(b);
    ctx.store(ETH_LEN + 8, &new, 0).ok()?;
    ctx.l3_csum_replace(ETH_LEN + 10, word as u64, new as u64, 2)
        .ok()
}

/// An IPv6 address as the kernel's `__u32[4]` (the same bytes in memory).
#[inline(always)]
fn words(a: [u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}

/// IPv6: see the crate docs.
pub fn ipv6(mut ctx: TcContext) -> i32 {
    let ifi = ifindex(&ctx);
    let Some(ep) = endpoint(ifi) else {
        return TC_ACT_OK as i32;
    };
    let (Ok(src), Ok(dst)) = (
        ctx.load::<[u8; 16]>(ETH_LEN + 8),
        ctx.load::<[u8; 16]>(ETH_LEN + 24),
    ) else {
        return pass(&ctx, ifi);
    };
    let link_local = src[0] == 0xfe && src[1] & 0xc0 == 0x80;
    let unspecified = src == [0; 16];
    if link_local || unspecified {
        return pass(&ctx, ifi);
    }
    if !ep.allows_v6(&src) {
        count(ifi, Outcome::Spoofed, ctx.len() as u64);
        return TC_ACT_SHOT as i32;
    }
    let ports = flows::ports_v6(&ctx);
    let route = ROUTES_V6.get(Key::new(128, dst)).copied();
    match route.and_then(|r| forward_v6(&mut ctx, ifi, src, dst, r, &ports)) {
        Some(rc) => rc,
        None => {
            if !to_workload(route.as_ref()) {
                flows::remember(&ports, src, 6);
            }
            pass(&ctx, ifi)
        }
    }
}

#[inline(always)]
fn forward_v6(
    ctx: &mut TcContext,
    ifi: u32,
    src: [u8; 16],
    dst: [u8; 16],
    route: RouteValue,
    ports: &Ports,
) -> Option<i32> {
    if route.kind != kind::LOCAL_WORKLOAD && !fast_remote(&route) {
        return None;
    }
    if !in_pool(&route) {
        return None;
    }
    if matches!(ports, Ports::Unknown) {
        return None; // a fragment, an extension header: the stack's
    }
    let hop_limit: u8 = ctx.load(ETH_LEN + 7).ok()?;
    if hop_limit <= 1 {
        return None;
    }
    if route.kind == kind::LOCAL_WORKLOAD {
        local_target(ifi, route.ifindex)?;
        if !flows::fast(ports, dst, 6) {
            return None;
        }
        ctx.store(ETH_LEN + 7, &(hop_limit - 1), 0).ok()?;
        return to_local(ctx, ifi, route.ifindex);
    }
    // SAFETY: as in `forward_v4`.
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET6;
    params.ifindex = ifi;
    params.__bindgen_anon_1.tot_len = (ctx.len() as u16).wrapping_sub(ETH_LEN as u16);
    params.__bindgen_anon_3.ipv6_src = words(src);
    params.__bindgen_anon_4.ipv6_dst = words(dst);
    // SAFETY: `ctx.as_ptr()` is this program's context; `params` is a live,
    // initialised bpf_fib_lookup of the size passed (the helper reads and
    // writes it).
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &mut params as *mut _,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 && rc != BPF_FIB_LKUP_RET_NO_NEIGH as i64 {
        return None;
    }
    ctx.store(ETH_LEN + 7, &(hop_limit - 1), 0).ok()?;
    // SAFETY: as in `forward_v4`.
    let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
    nh.nh_family = AF_INET6 as u32;
    // SAFETY: the IPv6 member of unions the kernel filled in for AF_INET6.
    nh.__bindgen_anon_1.ipv6_nh = unsafe { params.__bindgen_anon_4.ipv6_dst };
    after_fib(ctx, ifi, rc, &params, &mut nh)
}
