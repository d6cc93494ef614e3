//! The packing encoder for the advertisement hot path: one set of shared
//! attributes and many NLRI become as few UPDATEs as fit in
//! [`Context::max_message_len`] (RFC 4271 §4.3, RFC 8654). Attributes are
//! encoded once per call; each message copies them and appends NLRI in
//! place, with no allocation per prefix. Messages are appended back to back
//! to one buffer, ready for a socket write.

use std::net::{IpAddr, Ipv6Addr};

use crate::types::Family;
use crate::wire::attr_encode::encode_path_attributes;
use crate::wire::attributes::{attr_flags as fl, attr_type as ty};
use crate::wire::header::{HEADER_LEN, begin, finish, msg_type};
use crate::wire::mp::encode_mp_reach_head;
use crate::wire::nlri::encode_nlri;
use crate::wire::{Context, EncodeError, Nlri, PathAttributes};

/// The next hop of an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub addr: IpAddr,
    /// Sent with IPv6 next hops as the 32-octet form (RFC 2545 §3).
    pub link_local: Option<Ipv6Addr>,
}

impl NextHop {
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            link_local: None,
        }
    }
}

/// Octets of withdrawn-length + total-attribute-length.
const LENGTHS: usize = 4;
/// Flags, type and 2-octet length of an MP attribute.
const MP_HEADER: usize = 4;

/// Appends UPDATEs announcing `nlri` of `family` with `attrs` and
/// `next_hop`; returns how many messages. IPv4 with an IPv4 next hop uses
/// the classic NLRI field and NEXT_HOP (overriding `attrs.next_hop`); IPv6,
/// and IPv4 with an IPv6 next hop (RFC 8950, when negotiated), use
/// MP_REACH_NLRI as the first attribute (RFC 7606 §5.1) and no NEXT_HOP.
/// On error `out` is left as it was.
pub fn pack_announce(
    ctx: &Context,
    family: Family,
    attrs: &PathAttributes,
    next_hop: NextHop,
    nlri: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let call_start = out.len();
    let r = announce(ctx, family, attrs, next_hop, nlri, out);
    if r.is_err() {
        out.truncate(call_start);
    }
    r
}

/// Appends UPDATEs withdrawing `withdrawn` of `family` (IPv4 in the
/// Withdrawn Routes field, IPv6 in MP_UNREACH_NLRI); returns how many.
/// On error `out` is left as it was.
pub fn pack_withdraw(
    ctx: &Context,
    family: Family,
    withdrawn: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let call_start = out.len();
    let r = withdraw(ctx, family, withdrawn, out);
    if r.is_err() {
        out.truncate(call_start);
    }
    r
}

fn announce(
    ctx: &Context,
    family: Family,
    attrs: &PathAttributes,
    next_hop: NextHop,
    nlri: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    if nlri.is_empty() {
        return Ok(0);
    }
    let classic = family == Family::Ipv4Unicast;
    let mut block = Vec::with_capacity(128);
    let mut mp_head = Vec::with_capacity(40);
    match (classic, next_hop.addr) {
        (true, IpAddr::V4(nh)) => {
            if attrs.next_hop == Some(nh) {
                encode_path_attributes(attrs, ctx, &mut block)?;
            } else {
                let a = PathAttributes {
                    next_hop: Some(nh),
                    ..attrs.clone()
                };
                encode_path_attributes(&a, ctx, &mut block)?;
            }
        }
        _ => {
            encode_mp_reach_head(
                family,
                next_hop.addr,
                next_hop.link_local,
                ctx,
                &mut mp_head,
            )?;
            // RFC 4760 §3: no NEXT_HOP when all NLRI are in MP_REACH_NLRI.
            if attrs.next_hop.is_none() {
                encode_path_attributes(attrs, ctx, &mut block)?;
            } else {
                let a = PathAttributes {
                    next_hop: None,
                    ..attrs.clone()
                };
                encode_path_attributes(&a, ctx, &mut block)?;
            }
        }
    }
    let use_classic = mp_head.is_empty();
    let add_path = ctx.add_path_tx.contains(&family);
    let max = ctx.max_message_len();
    let fixed = HEADER_LEN
        + LENGTHS
        + block.len()
        + if use_classic {
            0
        } else {
            MP_HEADER + mp_head.len()
        };
    out.reserve(estimate(nlri, add_path, fixed, max));
    let mut rest = nlri;
    let mut count = 0;
    while !rest.is_empty() {
        let start = begin(out, msg_type::UPDATE);
        out.extend_from_slice(&[0, 0]); // no withdrawn routes
        let attr_len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let limit = start + max;
        if use_classic {
            out.extend_from_slice(&block);
            patch(out, attr_len_at, attr_len_at + 2);
            rest = fill(out, rest, family, add_path, limit)?;
        } else {
            let mp_at = out.len();
            out.extend_from_slice(&[fl::OPTIONAL | fl::EXTENDED_LENGTH, ty::MP_REACH_NLRI, 0, 0]);
            out.extend_from_slice(&mp_head);
            rest = fill(
                out,
                rest,
                family,
                add_path,
                limit.saturating_sub(block.len()),
            )?;
            patch(out, mp_at + 2, mp_at + MP_HEADER);
            out.extend_from_slice(&block);
            patch(out, attr_len_at, attr_len_at + 2);
        }
        finish(out, start, max)?;
        count += 1;
    }
    Ok(count)
}

fn withdraw(
    ctx: &Context,
    family: Family,
    list: &[Nlri],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let add_path = ctx.add_path_tx.contains(&family);
    let max = ctx.max_message_len();
    let classic = family == Family::Ipv4Unicast;
    let fixed = HEADER_LEN + LENGTHS + if classic { 0 } else { MP_HEADER + 3 };
    out.reserve(estimate(list, add_path, fixed, max));
    let mut rest = list;
    let mut count = 0;
    while !rest.is_empty() {
        let start = begin(out, msg_type::UPDATE);
        let limit = start + max;
        if classic {
            let wd_at = out.len();
            out.extend_from_slice(&[0, 0]);
            rest = fill(out, rest, family, add_path, limit - 2)?;
            patch(out, wd_at, wd_at + 2);
            out.extend_from_slice(&[0, 0]); // no attributes
        } else {
            out.extend_from_slice(&[0, 0]);
            let attr_len_at = out.len();
            out.extend_from_slice(&[
                0,
                0,
                fl::OPTIONAL | fl::EXTENDED_LENGTH,
                ty::MP_UNREACH_NLRI,
                0,
                0,
            ]);
            out.extend_from_slice(&family.afi().to_be_bytes());
            out.push(family.safi());
            rest = fill(out, rest, family, add_path, limit)?;
            patch(out, attr_len_at + 4, attr_len_at + 2 + MP_HEADER);
            patch(out, attr_len_at, attr_len_at + 2);
        }
        finish(out, start, max)?;
        count += 1;
    }
    Ok(count)
}

/// Appends NLRI from `list` while they fit before `limit`; returns the rest.
fn fill<'a>(
    out: &mut Vec<u8>,
    list: &'a [Nlri],
    family: Family,
    add_path: bool,
    limit: usize,
) -> Result<&'a [Nlri], EncodeError> {
    let mut used = 0;
    for n in list {
        if out.len() + n.wire_len(add_path) > limit {
            break;
        }
        encode_nlri(n, family, add_path, out)?;
        used += 1;
    }
    if used == 0 {
        return Err(EncodeError::NlriTooLong);
    }
    Ok(list.get(used..).unwrap_or_default())
}

/// Writes at `at` the 2-octet length of everything from `from` to the end
/// (below 65536: every message is at most 65535 octets).
fn patch(out: &mut [u8], at: usize, from: usize) {
    let len = out.len().saturating_sub(from);
    let v = u16::try_from(len).unwrap_or(u16::MAX);
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}

/// A capacity hint for the whole output.
fn estimate(list: &[Nlri], add_path: bool, fixed: usize, max: usize) -> usize {
    let per = if add_path { 8 } else { 4 };
    let body = list.len().saturating_mul(per);
    let msgs = body / max.saturating_sub(fixed).max(1) + 1;
    body.saturating_add(msgs.saturating_mul(fixed))
}
