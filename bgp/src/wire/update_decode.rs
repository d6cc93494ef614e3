//! UPDATE decoding (RFC 4271 §4.3) with the revised error handling of
//! RFC 7606: each problem is a session reset (the `Err`), treat-as-withdraw
//! or attribute discard, and the strongest one found wins (§3 h).

use crate::types::{AS_TRANS, Family};
use crate::wire::as_path::{decode_as_path, merge_as4_path};
use crate::wire::attr_decode as parse;
use crate::wire::attributes::{attr_flags as fl, attr_type as ty};
use crate::wire::mp::{decode_mp_reach, decode_mp_unreach};
use crate::wire::nlri::decode_nlri;
use crate::wire::notification::{code, update as sub};
use crate::wire::reader::Reader;
use crate::wire::{
    Aggregator, AsPath, Context, DecodeError, MpReach, MpUnreach, Nlri, PathAttributes,
    RawAttribute, Update,
};

/// One RFC 7606 finding: which attribute, why, and the attribute as
/// received (absent when its own header or length could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrError {
    pub type_code: u8,
    pub reason: &'static str,
    pub attribute: Option<RawAttribute>,
}

/// How a decoded UPDATE must be handled (RFC 7606 §2). A session reset is
/// the `Err` of [`Update::decode_body`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing wrong.
    Ok,
    /// Attributes were dropped (listed); the UPDATE is otherwise usable.
    AttributeDiscard(Vec<AttrError>),
    /// Every NLRI in the UPDATE (classic and MP_REACH) must be handled as
    /// withdrawn (`reasons` is never empty); `discarded` lists any
    /// attributes that were also dropped.
    TreatAsWithdraw {
        reasons: Vec<AttrError>,
        discarded: Vec<AttrError>,
    },
}

/// An UPDATE as received, with what RFC 7606 says to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedUpdate {
    pub update: Update,
    pub outcome: UpdateOutcome,
}

/// How strongly one malformed attribute is handled (RFC 7606 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approach {
    Discard,
    TreatAsWithdraw,
    /// RFC 7606 §7.11-12: we reset instead of disabling the AFI/SAFI.
    Reset,
}

/// The (Optional, Transitive) flags each interpreted attribute must have
/// and the approach when it is malformed (RFC 7606 §7, RFC 6793 §6,
/// RFC 8092 §6).
fn rule(type_code: u8) -> Option<(u8, Approach)> {
    use Approach::*;
    Some(match type_code {
        ty::ORIGIN | ty::AS_PATH | ty::NEXT_HOP | ty::LOCAL_PREF => {
            (fl::WELL_KNOWN, TreatAsWithdraw)
        }
        ty::ATOMIC_AGGREGATE => (fl::WELL_KNOWN, Discard),
        ty::MULTI_EXIT_DISC | ty::ORIGINATOR_ID | ty::CLUSTER_LIST => {
            (fl::OPTIONAL_NON_TRANSITIVE, TreatAsWithdraw)
        }
        ty::AGGREGATOR | ty::AS4_PATH | ty::AS4_AGGREGATOR => (fl::OPTIONAL_TRANSITIVE, Discard),
        ty::COMMUNITIES | ty::EXTENDED_COMMUNITIES | ty::LARGE_COMMUNITY => {
            (fl::OPTIONAL_TRANSITIVE, TreatAsWithdraw)
        }
        ty::MP_REACH_NLRI | ty::MP_UNREACH_NLRI => (fl::OPTIONAL_NON_TRANSITIVE, Reset),
        _ => return None,
    })
}

fn malformed_list(reason: &'static str) -> DecodeError {
    DecodeError::new(
        code::UPDATE_MESSAGE,
        sub::MALFORMED_ATTRIBUTE_LIST,
        Vec::new(),
        reason,
    )
}

#[derive(Default)]
struct State {
    attrs: PathAttributes,
    mp_reach: Option<MpReach>,
    mp_unreach: Option<MpUnreach>,
    /// Attribute types seen, as a 256-bit set.
    seen: [u64; 4],
    withdraw: Vec<AttrError>,
    discarded: Vec<AttrError>,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
}

impl State {
    fn seen(&self, t: u8) -> bool {
        self.seen
            .get(usize::from(t / 64))
            .is_some_and(|w| w & (1 << (t % 64)) != 0)
    }

    fn flag(&mut self, approach: Approach, e: AttrError, raw: &[u8]) -> Result<(), DecodeError> {
        match approach {
            Approach::Discard => self.discarded.push(e),
            Approach::TreatAsWithdraw => self.withdraw.push(e),
            Approach::Reset => {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    sub::OPTIONAL_ATTRIBUTE_ERROR,
                    raw.to_vec(),
                    e.reason,
                ));
            }
        }
        Ok(())
    }

    /// Handles one complete attribute; `raw` is it as received.
    fn attribute(
        &mut self,
        flags: u8,
        t: u8,
        value: &[u8],
        raw: &[u8],
        ctx: &Context,
    ) -> Result<(), DecodeError> {
        let err = |reason| AttrError {
            type_code: t,
            reason,
            attribute: Some(RawAttribute {
                flags: flags & !fl::EXTENDED_LENGTH,
                type_code: t,
                value: value.to_vec(),
            }),
        };
        // RFC 7606 §3 g: duplicates.
        if self.seen(t) {
            if t == ty::MP_REACH_NLRI || t == ty::MP_UNREACH_NLRI {
                return Err(malformed_list(
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                ));
            }
            self.discarded.push(err("duplicate attribute"));
            return Ok(());
        }
        if let Some(w) = self.seen.get_mut(usize::from(t / 64)) {
            *w |= 1 << (t % 64);
        }
        let Some((want_flags, approach)) = rule(t) else {
            // RFC 4271 §6.3: an unrecognised well-known attribute resets.
            if flags & fl::OPTIONAL == 0 {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    raw.to_vec(),
                    "unrecognized well-known attribute",
                ));
            }
            self.attrs.unknown.push(RawAttribute {
                flags: flags & !fl::EXTENDED_LENGTH,
                type_code: t,
                value: value.to_vec(),
            });
            return Ok(());
        };
        // RFC 7606 §3 c: wrong Optional/Transitive bits make it malformed.
        if flags & fl::OPTIONAL_TRANSITIVE != want_flags {
            return self.flag(approach, err("attribute flags conflict with the type"), raw);
        }
        let four = ctx.four_octet_as;
        let a = &mut self.attrs;
        let result: Result<(), &'static str> = match t {
            ty::ORIGIN => parse::origin(value).map(|v| a.origin = Some(v)),
            ty::AS_PATH => decode_as_path(value, four).map(|v| a.as_path = Some(v)),
            ty::NEXT_HOP => parse::ipv4(value).map(|v| a.next_hop = Some(v)),
            ty::MULTI_EXIT_DISC => parse::u32_value(value).map(|v| a.med = Some(v)),
            ty::LOCAL_PREF => parse::u32_value(value).map(|v| a.local_pref = Some(v)),
            ty::ATOMIC_AGGREGATE => {
                parse::atomic_aggregate(value).map(|()| a.atomic_aggregate = true)
            }
            ty::AGGREGATOR => parse::aggregator(value, four).map(|v| a.aggregator = Some(v)),
            ty::COMMUNITIES => parse::communities(value).map(|v| a.communities = v),
            ty::ORIGINATOR_ID => parse::ipv4(value).map(|v| a.originator_id = Some(v)),
            ty::CLUSTER_LIST => parse::cluster_list(value).map(|v| a.cluster_list = v),
            ty::EXTENDED_COMMUNITIES => {
                parse::ext_communities(value).map(|v| a.ext_communities = v)
            }
            ty::LARGE_COMMUNITY => parse::large_communities(value).map(|v| a.large_communities = v),
            // RFC 6793 §6: a 4-octet speaker discards AS4_* from 4-octet peers.
            ty::AS4_PATH | ty::AS4_AGGREGATOR if four => Err("AS4 attribute from a 4-octet peer"),
            ty::AS4_PATH => decode_as_path(value, true).map(|v| self.as4_path = Some(v)),
            ty::AS4_AGGREGATOR => {
                parse::aggregator(value, true).map(|v| self.as4_aggregator = Some(v))
            }
            ty::MP_REACH_NLRI => match decode_mp_reach(value, ctx) {
                Ok(Some(m)) => {
                    self.mp_reach = Some(m);
                    Ok(())
                }
                Ok(None) => return self.flag(Approach::Discard, err("unsupported AFI/SAFI"), raw),
                Err(e) => Err(e),
            },
            ty::MP_UNREACH_NLRI => match decode_mp_unreach(value, ctx) {
                Ok(Some(m)) => {
                    self.mp_unreach = Some(m);
                    Ok(())
                }
                Ok(None) => return self.flag(Approach::Discard, err("unsupported AFI/SAFI"), raw),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(reason) => self.flag(approach, err(reason), raw),
        }
    }

    /// RFC 6793 §4.2.3: rebuild the 4-octet path and aggregator of an old peer.
    fn merge_as4(&mut self) {
        let (as4_path, as4_agg) = (self.as4_path.take(), self.as4_aggregator.take());
        if let Some(agg) = self.attrs.aggregator.as_mut() {
            if agg.asn != AS_TRANS {
                return; // AS4_PATH and AS4_AGGREGATOR are ignored.
            }
            if let Some(real) = as4_agg {
                *agg = real;
            }
        }
        if let (Some(path), Some(as4)) = (self.attrs.as_path.as_mut(), as4_path) {
            *path = merge_as4_path(path, &as4);
        }
    }
}

impl Update {
    /// Decodes an UPDATE body (the octets after the 19-octet header).
    pub fn decode_body(body: &[u8], ctx: &Context) -> Result<DecodedUpdate, DecodeError> {
        let mut r = Reader::new(body);
        // RFC 4271 §6.3: lengths that do not fit the message.
        let withdrawn_len = r.u16().ok_or_else(|| malformed_list("truncated UPDATE"))?;
        let withdrawn_field = r
            .take(usize::from(withdrawn_len))
            .ok_or_else(|| malformed_list("withdrawn routes length exceeds the message"))?;
        let attrs_len = r.u16().ok_or_else(|| malformed_list("truncated UPDATE"))?;
        let attrs_field = r
            .take(usize::from(attrs_len))
            .ok_or_else(|| malformed_list("total attribute length exceeds the message"))?;
        let v4 = Family::Ipv4Unicast;
        let add_path = ctx.add_path_rx.contains(&v4);
        let bad_nlri = |e: crate::wire::nlri::NlriError| {
            DecodeError::new(
                code::UPDATE_MESSAGE,
                sub::INVALID_NETWORK_FIELD,
                Vec::new(),
                e.reason(),
            )
        };
        // RFC 7606 §5.3: an unparseable NLRI field is a session reset.
        let mut withdrawn: Vec<Nlri> = Vec::new();
        decode_nlri(withdrawn_field, v4, add_path, &mut withdrawn).map_err(bad_nlri)?;
        let mut nlri: Vec<Nlri> = Vec::new();
        decode_nlri(r.rest(), v4, add_path, &mut nlri).map_err(bad_nlri)?;

        let mut st = State::default();
        let mut ar = Reader::new(attrs_field);
        let mut overrun = false;
        while !ar.is_empty() {
            let before = ar.rest();
            // RFC 7606 §4: too few octets for a header, or a length running
            // past the field, is treat-as-withdraw; NLRI are found through
            // the Total Attribute Length.
            let header = match (ar.u8(), ar.u8()) {
                (Some(f), Some(t)) => {
                    let len = if f & fl::EXTENDED_LENGTH != 0 {
                        ar.u16()
                    } else {
                        ar.u8().map(u16::from)
                    };
                    len.map(|l| (f, t, l))
                }
                _ => None,
            };
            let Some((flags, t, len)) = header else {
                st.withdraw.push(AttrError {
                    type_code: before.get(1).copied().unwrap_or(0),
                    reason: "attribute header truncated",
                    attribute: None,
                });
                overrun = true;
                break;
            };
            let Some(value) = ar.take(usize::from(len)) else {
                st.withdraw.push(AttrError {
                    type_code: t,
                    reason: "attribute length overruns the path attributes",
                    attribute: None,
                });
                overrun = true;
                break;
            };
            let raw = before
                .get(..before.len() - ar.remaining())
                .unwrap_or_default();
            st.attribute(flags, t, value, raw, ctx)?;
        }
        // RFC 7606 §3 j / §5: treat-as-withdraw needs every NLRI located. If
        // parsing stopped before any MP attribute and there is no classic
        // NLRI, an MP_REACH may have been lost: fall back to a reset.
        if overrun && st.mp_reach.is_none() && st.mp_unreach.is_none() && nlri.is_empty() {
            return Err(malformed_list(
                "attribute length error hides where the NLRI are",
            ));
        }
        if !ctx.four_octet_as {
            st.merge_as4();
        }
        // RFC 7606 §3 d: missing well-known mandatory attributes when there
        // is reachability; NEXT_HOP only for classic NLRI (RFC 4760 §3).
        let reach = !nlri.is_empty() || st.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if reach {
            let mut need = vec![ty::ORIGIN, ty::AS_PATH];
            if !nlri.is_empty() {
                need.push(ty::NEXT_HOP);
            }
            for t in need {
                if !st.seen(t) {
                    st.withdraw.push(AttrError {
                        type_code: t,
                        reason: "missing well-known mandatory attribute",
                        attribute: None,
                    });
                }
            }
        }
        let outcome = if !st.withdraw.is_empty() {
            UpdateOutcome::TreatAsWithdraw {
                reasons: st.withdraw,
                discarded: st.discarded,
            }
        } else if !st.discarded.is_empty() {
            UpdateOutcome::AttributeDiscard(st.discarded)
        } else {
            UpdateOutcome::Ok
        };
        Ok(DecodedUpdate {
            update: Update {
                withdrawn,
                attributes: st.attrs,
                nlri,
                mp_reach: st.mp_reach,
                mp_unreach: st.mp_unreach,
            },
            outcome,
        })
    }
}

impl DecodedUpdate {
    /// The UPDATE to act on: as decoded, except that treat-as-withdraw turns
    /// every announced NLRI into a withdrawal (IPv4 in `withdrawn`, IPv6 in
    /// `mp_unreach`) and drops the attributes. An UPDATE whose error
    /// handling leaves it looking like End-of-RIB keeps the offending
    /// attribute in `attributes.unknown` so it can never be taken for one.
    pub fn into_effective(self) -> Update {
        let DecodedUpdate { update, outcome } = self;
        match outcome {
            UpdateOutcome::Ok => update,
            UpdateOutcome::AttributeDiscard(errs) => keep_not_eor(update, &errs),
            UpdateOutcome::TreatAsWithdraw { reasons, .. } => {
                let mut v4 = update.withdrawn;
                v4.extend(update.nlri);
                let mut v6 = Vec::new();
                let mp = [
                    update.mp_reach.map(|m| (m.family, m.nlri)),
                    update.mp_unreach.map(|m| (m.family, m.withdrawn)),
                ];
                for (family, list) in mp.into_iter().flatten() {
                    match family {
                        Family::Ipv4Unicast => v4.extend(list),
                        Family::Ipv6Unicast => v6.extend(list),
                    }
                }
                let nothing = v4.is_empty() && v6.is_empty();
                let out = Update {
                    withdrawn: v4,
                    attributes: if nothing {
                        update.attributes
                    } else {
                        PathAttributes::default()
                    },
                    nlri: Vec::new(),
                    mp_reach: None,
                    mp_unreach: (!v6.is_empty()).then_some(MpUnreach {
                        family: Family::Ipv6Unicast,
                        withdrawn: v6,
                    }),
                };
                if nothing {
                    keep_not_eor(out, &reasons)
                } else {
                    out
                }
            }
        }
    }
}

fn keep_not_eor(mut u: Update, errs: &[AttrError]) -> Update {
    if u.end_of_rib().is_some() {
        let raw = errs
            .iter()
            .find_map(|e| e.attribute.clone())
            .unwrap_or(RawAttribute {
                flags: fl::OPTIONAL,
                type_code: 0,
                value: Vec::new(),
            });
        u.attributes.unknown.push(raw);
    }
    u
}
