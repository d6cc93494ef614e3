//! Writing path attributes (RFC 4271 §4.3, §5) other than the MP ones:
//! ascending type order, Extended Length only when a value exceeds 255
//! octets, AS_TRANS + AS4_PATH/AS4_AGGREGATOR for 2-octet peers (RFC 6793
//! §4.2.2), unknown optional transitive attributes re-sent Partial (§5).

use crate::wire::EncodeError;
use crate::wire::as_path::{as4_path_of, encode_as_path, needs_as4_path, to_two_octet};
use crate::wire::attributes::{attr_flags as fl, attr_type as ty};
use crate::wire::{Aggregator, Context, PathAttributes};

/// Appends one attribute whose value `body` writes; the length field is one
/// octet unless the value exceeds 255 octets (RFC 4271 §4.3).
pub(crate) fn put_attr(
    out: &mut Vec<u8>,
    flags: u8,
    type_code: u8,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), EncodeError> {
    put_attr_try(out, flags, type_code, |o| {
        body(o);
        Ok(())
    })
}

/// [`put_attr`] with a fallible body; on error nothing is appended.
pub(crate) fn put_attr_try(
    out: &mut Vec<u8>,
    flags: u8,
    type_code: u8,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[flags & !fl::EXTENDED_LENGTH, type_code, 0]);
    let value_start = out.len();
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - value_start;
    if let Ok(short) = u8::try_from(len) {
        if let Some(slot) = out.get_mut(start + 2) {
            *slot = short;
        }
        return Ok(());
    }
    let Ok(long) = u16::try_from(len) else {
        out.truncate(start);
        return Err(EncodeError::AttributeTooLong { type_code, len });
    };
    if let Some(f) = out.get_mut(start) {
        *f |= fl::EXTENDED_LENGTH;
    }
    let [hi, lo] = long.to_be_bytes();
    if let Some(slot) = out.get_mut(start + 2) {
        *slot = hi;
    }
    out.insert(start + 3, lo);
    Ok(())
}

/// Type codes the codec interprets; entries of `unknown` with these codes
/// are never sent (they would duplicate an interpreted attribute).
pub(crate) fn is_known(type_code: u8) -> bool {
    matches!(type_code, 1..=10 | 14..=18 | 32)
}

fn put_aggregator(
    out: &mut Vec<u8>,
    type_code: u8,
    a: &Aggregator,
    four: bool,
) -> Result<(), EncodeError> {
    put_attr(out, fl::OPTIONAL_TRANSITIVE, type_code, |o| {
        if four {
            o.extend_from_slice(&a.asn.to_be_bytes());
        } else {
            o.extend_from_slice(&to_two_octet(a.asn).to_be_bytes());
        }
        o.extend_from_slice(&a.address.octets());
    })
}

/// Appends every attribute of `a` (not MP_REACH/MP_UNREACH).
pub(crate) fn encode_path_attributes(
    a: &PathAttributes,
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let four = ctx.four_octet_as;
    if let Some(origin) = a.origin {
        put_attr(out, fl::WELL_KNOWN, ty::ORIGIN, |o| o.push(origin as u8))?;
    }
    if let Some(path) = &a.as_path {
        put_attr(out, fl::WELL_KNOWN, ty::AS_PATH, |o| {
            encode_as_path(path, four, o)
        })?;
    }
    if let Some(nh) = a.next_hop {
        put_attr(out, fl::WELL_KNOWN, ty::NEXT_HOP, |o| {
            o.extend_from_slice(&nh.octets())
        })?;
    }
    if let Some(med) = a.med {
        put_attr(out, fl::OPTIONAL_NON_TRANSITIVE, ty::MULTI_EXIT_DISC, |o| {
            o.extend_from_slice(&med.to_be_bytes())
        })?;
    }
    if let Some(lp) = a.local_pref {
        put_attr(out, fl::WELL_KNOWN, ty::LOCAL_PREF, |o| {
            o.extend_from_slice(&lp.to_be_bytes())
        })?;
    }
    if a.atomic_aggregate {
        put_attr(out, fl::WELL_KNOWN, ty::ATOMIC_AGGREGATE, |_| ())?;
    }
    if let Some(agg) = &a.aggregator {
        put_aggregator(out, ty::AGGREGATOR, agg, four)?;
    }
    if !a.communities.is_empty() {
        put_attr(out, fl::OPTIONAL_TRANSITIVE, ty::COMMUNITIES, |o| {
            for c in &a.communities {
                o.extend_from_slice(&c.0.to_be_bytes());
            }
        })?;
    }
    if let Some(id) = a.originator_id {
        put_attr(out, fl::OPTIONAL_NON_TRANSITIVE, ty::ORIGINATOR_ID, |o| {
            o.extend_from_slice(&id.octets())
        })?;
    }
    if !a.cluster_list.is_empty() {
        put_attr(out, fl::OPTIONAL_NON_TRANSITIVE, ty::CLUSTER_LIST, |o| {
            for id in &a.cluster_list {
                o.extend_from_slice(&id.octets());
            }
        })?;
    }
    if !a.ext_communities.is_empty() {
        put_attr(
            out,
            fl::OPTIONAL_TRANSITIVE,
            ty::EXTENDED_COMMUNITIES,
            |o| {
                for c in &a.ext_communities {
                    o.extend_from_slice(&c.0);
                }
            },
        )?;
    }
    if !four {
        // RFC 6793 §4.2.2: the real path and aggregator for old peers.
        if let Some(path) = a.as_path.as_ref().filter(|p| needs_as4_path(p)) {
            let as4 = as4_path_of(path);
            put_attr(out, fl::OPTIONAL_TRANSITIVE, ty::AS4_PATH, |o| {
                encode_as_path(&as4, true, o)
            })?;
        }
        if let Some(agg) = a.aggregator.as_ref().filter(|g| g.asn > 0xffff) {
            put_aggregator(out, ty::AS4_AGGREGATOR, agg, true)?;
        }
    }
    if !a.large_communities.is_empty() {
        put_attr(out, fl::OPTIONAL_TRANSITIVE, ty::LARGE_COMMUNITY, |o| {
            for c in &a.large_communities {
                o.extend_from_slice(&c.global.to_be_bytes());
                o.extend_from_slice(&c.local1.to_be_bytes());
                o.extend_from_slice(&c.local2.to_be_bytes());
            }
        })?;
    }
    for raw in &a.unknown {
        // RFC 4271 §5: unrecognised optional transitive attributes are passed
        // on with Partial set; unrecognised non-transitive ones are dropped.
        let optional_transitive = raw.flags & fl::OPTIONAL_TRANSITIVE == fl::OPTIONAL_TRANSITIVE;
        if optional_transitive && !is_known(raw.type_code) {
            put_attr(out, raw.flags | fl::PARTIAL, raw.type_code, |o| {
                o.extend_from_slice(&raw.value)
            })?;
        }
    }
    Ok(())
}
