//! UPDATE encoding (RFC 4271 §4.3): withdrawn routes, path attributes with
//! MP_REACH/MP_UNREACH first (RFC 7606 §5.1), then classic NLRI.

use crate::types::Family;
use crate::wire::attr_encode::{encode_path_attributes, put_attr_try};
use crate::wire::attributes::{attr_flags as fl, attr_type as ty};
use crate::wire::header::{begin, finish, msg_type};
use crate::wire::mp::{encode_mp_reach, encode_mp_unreach};
use crate::wire::nlri::encode_nlris;
use crate::wire::{Context, EncodeError, Update};

/// Reserves a 2-octet length at the end of `out`; returns its position.
pub(crate) fn reserve_len(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Fills a length reserved by [`reserve_len`] with what follows it.
pub(crate) fn patch_len(out: &mut [u8], at: usize) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(at + 2);
    let v = u16::try_from(len).map_err(|_| EncodeError::MessageTooLong { len, max: 65535 })?;
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

impl Update {
    /// Appends this UPDATE as one whole message. Classic `withdrawn` and
    /// `nlri` must be IPv4; path identifiers are written for families in
    /// `ctx.add_path_tx`. On error nothing is appended.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = begin(out, msg_type::UPDATE);
        let r = self.encode_inner(ctx, out);
        if r.is_err() {
            out.truncate(start);
            return r;
        }
        finish(out, start, ctx.max_message_len())
    }

    fn encode_inner(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let v4 = Family::Ipv4Unicast;
        let add_path = ctx.add_path_tx.contains(&v4);
        let at = reserve_len(out);
        encode_nlris(&self.withdrawn, v4, add_path, out)?;
        patch_len(out, at)?;
        let at = reserve_len(out);
        if let Some(m) = &self.mp_reach {
            put_attr_try(out, fl::OPTIONAL_NON_TRANSITIVE, ty::MP_REACH_NLRI, |o| {
                encode_mp_reach(m, ctx, o)
            })?;
        }
        if let Some(m) = &self.mp_unreach {
            put_attr_try(out, fl::OPTIONAL_NON_TRANSITIVE, ty::MP_UNREACH_NLRI, |o| {
                encode_mp_unreach(m, ctx, o)
            })?;
        }
        encode_path_attributes(&self.attributes, ctx, out)?;
        patch_len(out, at)?;
        encode_nlris(&self.nlri, v4, add_path, out)
    }

    /// The family this UPDATE ends the initial table of, if it is an
    /// End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast,
    /// or one with only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(&self) -> Option<Family> {
        let bare = self.withdrawn.is_empty()
            && self.nlri.is_empty()
            && self.mp_reach.is_none()
            && self.attributes == crate::wire::PathAttributes::default();
        if !bare {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::Ipv4Unicast),
            Some(m) if m.withdrawn.is_empty() => Some(m.family),
            Some(_) => None,
        }
    }

    /// The End-of-RIB marker of a family (RFC 4724 §2).
    pub fn end_of_rib_marker(family: Family) -> Update {
        match family {
            Family::Ipv4Unicast => Update::default(),
            _ => Update {
                mp_unreach: Some(crate::wire::MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                }),
                ..Update::default()
            },
        }
    }
}
