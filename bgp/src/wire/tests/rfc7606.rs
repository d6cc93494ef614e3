//! RFC 7606 outcomes, one or more per class and per attribute.

use super::{BASE_ATTRS, four, update_bytes};
use crate::types::Family;
use crate::wire::*;

fn decode(attrs: &[u8], nlri: &[u8]) -> Result<(Update, UpdateOutcome), DecodeError> {
    decode_ctx(attrs, nlri, &four())
}

fn decode_ctx(
    attrs: &[u8],
    nlri: &[u8],
    ctx: &Context,
) -> Result<(Update, UpdateOutcome), DecodeError> {
    let bytes = update_bytes(&[], attrs, nlri);
    match Message::decode_detailed(&bytes, ctx)? {
        (Message::Update(u), o) => Ok((u, o)),
        other => panic!("{other:?}"),
    }
}

fn with(extra: &[u8]) -> Vec<u8> {
    let mut a = BASE_ATTRS.to_vec();
    a.extend_from_slice(extra);
    a
}

/// The types that made the UPDATE treat-as-withdraw.
fn taw(o: &UpdateOutcome) -> Vec<u8> {
    match o {
        UpdateOutcome::TreatAsWithdraw { reasons, .. } => {
            reasons.iter().map(|r| r.type_code).collect()
        }
        _ => panic!("not treat-as-withdraw: {o:?}"),
    }
}

fn discarded(o: &UpdateOutcome) -> Vec<u8> {
    match o {
        UpdateOutcome::AttributeDiscard(d) => d.iter().map(|r| r.type_code).collect(),
        _ => panic!("not attribute discard: {o:?}"),
    }
}

#[test]
fn ok() {
    assert_eq!(decode(&BASE_ATTRS, &[8, 10]).unwrap().1, UpdateOutcome::Ok);
}

#[test]
fn treat_as_withdraw_per_attribute() {
    let cases: Vec<(Vec<u8>, u8)> = vec![
        // §7.1 ORIGIN: undefined value, and wrong length.
        (vec![0x40, 1, 1, 3, 0x40, 2, 0, 0x40, 3, 4, 1, 1, 1, 1], 1),
        (
            vec![0x40, 1, 2, 0, 0, 0x40, 2, 0, 0x40, 3, 4, 1, 1, 1, 1],
            1,
        ),
        // §7.2 AS_PATH: bad segment type.
        (
            vec![
                0x40, 1, 1, 0, 0x40, 2, 6, 9, 1, 0, 0, 0, 1, 0x40, 3, 4, 1, 1, 1, 1,
            ],
            2,
        ),
        // §7.3 NEXT_HOP length 3.
        (vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 3, 1, 1, 1], 3),
        // §7.4 MED length 2.
        (with(&[0x80, 4, 2, 0, 1]), 4),
        // §7.5 LOCAL_PREF length 5.
        (with(&[0x40, 5, 5, 0, 0, 0, 0, 1]), 5),
        // §7.8 COMMUNITIES length 3 and 0.
        (with(&[0xc0, 8, 3, 0, 0, 1]), 8),
        (with(&[0xc0, 8, 0]), 8),
        // §7.9 ORIGINATOR_ID length 5.
        (with(&[0x80, 9, 5, 1, 1, 1, 1, 1]), 9),
        // §7.10 CLUSTER_LIST length 6.
        (with(&[0x80, 10, 6, 1, 1, 1, 1, 1, 1]), 10),
        // §7.14 EXTENDED_COMMUNITIES length 7.
        (with(&[0xc0, 16, 7, 0, 0, 0, 0, 0, 0, 0]), 16),
        // RFC 8092 §6 LARGE_COMMUNITY length 8.
        (with(&[0xc0, 32, 8, 0, 0, 0, 0, 0, 0, 0, 0]), 32),
        // §3 c: wrong flags on a well-formed MED (sent as well-known).
        (with(&[0x40, 4, 4, 0, 0, 0, 1]), 4),
        // §3 c: wrong flags on ORIGIN (sent as optional).
        (vec![0xc0, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 1, 1, 1, 1], 1),
    ];
    for (attrs, t) in cases {
        let (u, o) = decode(&attrs, &[8, 10]).unwrap();
        assert_eq!(taw(&o), vec![t], "{attrs:?}");
        // The effective form withdraws the NLRI.
        let eff = DecodedUpdate {
            update: u,
            outcome: o,
        }
        .into_effective();
        assert_eq!(
            eff.withdrawn,
            vec![Nlri::new("10.0.0.0/8".parse().unwrap())]
        );
        assert!(eff.nlri.is_empty());
        assert_eq!(eff.attributes, PathAttributes::default());
    }
}

#[test]
fn attribute_discard() {
    // §7.6 ATOMIC_AGGREGATE with a value.
    let (u, o) = decode(&with(&[0x40, 6, 1, 0]), &[8, 10]).unwrap();
    assert_eq!(discarded(&o), vec![6]);
    assert!(!u.attributes.atomic_aggregate);
    // §7.7 AGGREGATOR of 6 octets on a 4-octet session.
    let (u, o) = decode(&with(&[0xc0, 7, 6, 0xfd, 0xe9, 1, 1, 1, 1]), &[8, 10]).unwrap();
    assert_eq!(discarded(&o), vec![7]);
    assert_eq!(u.attributes.aggregator, None);
    assert_eq!(u.nlri.len(), 1);
    // §3 c: AGGREGATOR with wrong flags.
    let (_, o) = decode(&with(&[0x80, 7, 8, 0, 0, 0xfd, 0xe9, 1, 1, 1, 1]), &[8, 10]).unwrap();
    assert_eq!(discarded(&o), vec![7]);
    // RFC 6793 §6: AS4_PATH from a 4-octet peer is discarded.
    let (u, o) = decode(&with(&[0xc0, 17, 6, 2, 1, 0, 0, 0, 1]), &[8, 10]).unwrap();
    assert_eq!(discarded(&o), vec![17]);
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![65001])));
    // The effective form keeps the NLRI.
    let eff = DecodedUpdate {
        update: u.clone(),
        outcome: o,
    }
    .into_effective();
    assert_eq!(eff, u);
}

#[test]
fn duplicates_keep_the_first() {
    // §3 g: a second ORIGIN (EGP) is discarded, the first (IGP) kept.
    let (u, o) = decode(&with(&[0x40, 1, 1, 1]), &[8, 10]).unwrap();
    assert_eq!(discarded(&o), vec![1]);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
}

#[test]
fn duplicate_mp_reach_resets() {
    let mp = [0x80, 15, 3, 0, 2, 1];
    let mut attrs = mp.to_vec();
    attrs.extend_from_slice(&mp);
    let e = decode(&attrs, &[]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 1));
}

#[test]
fn malformed_mp_attributes_reset() {
    // IPv6 MP_REACH with a 4-octet next hop: 3/9 with the attribute as data.
    let attr = [0x80, 14, 9, 0, 2, 1, 4, 1, 2, 3, 4, 0];
    let e = decode(&attr, &[]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
    assert_eq!(e.data, attr);
    // NLRI in MP_UNREACH unparseable (prefix length 129).
    let e = decode(&[0x80, 15, 5, 0, 2, 1, 129, 0], &[]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
    // MP_REACH with wrong flags (well-known).
    let e = decode(&[0x40, 15, 3, 0, 2, 1], &[]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
}

#[test]
fn unparseable_classic_nlri_resets() {
    let e = decode(&BASE_ATTRS, &[33, 10, 0, 0, 0, 0]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 10));
    let e = decode(&BASE_ATTRS, &[24, 10, 0]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 10));
    // Truncated withdrawn routes too.
    let bytes = update_bytes(&[24, 10], &[], &[]);
    let e = Message::decode(&bytes, &four()).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 10));
}

#[test]
fn lengths_beyond_the_message_reset() {
    // Withdrawn Routes Length past the end.
    let mut b = update_bytes(&[], &[], &[]);
    if let Some(x) = b.get_mut(20) {
        *x = 9;
    }
    let e = Message::decode(&b, &four()).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 1));
    // Total Attribute Length past the end.
    let mut b = update_bytes(&[], &[], &[]);
    if let Some(x) = b.get_mut(22) {
        *x = 1;
    }
    let e = Message::decode(&b, &four()).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 1));
}

#[test]
fn unrecognized_well_known_resets() {
    let e = decode(&with(&[0x40, 99, 1, 0]), &[8, 10]).unwrap_err();
    assert_eq!((e.code, e.subcode, e.data), (3, 2, vec![0x40, 99, 1, 0]));
}

#[test]
fn missing_well_known_is_treat_as_withdraw() {
    // §3 d: no NEXT_HOP with classic NLRI.
    let (_, o) = decode(&BASE_ATTRS[..13], &[8, 10]).unwrap();
    assert_eq!(taw(&o), vec![3]);
    // No ORIGIN, no AS_PATH with MP_REACH NLRI (NEXT_HOP not needed).
    let mp = [
        0x80, 14, 24, 0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 16,
        0x20, 1,
    ];
    let (u, o) = decode(&mp, &[]).unwrap();
    assert_eq!(taw(&o), vec![1, 2]);
    let eff = DecodedUpdate {
        update: u,
        outcome: o,
    }
    .into_effective();
    assert_eq!(
        eff.mp_unreach,
        Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![Nlri::new("2001::/16".parse().unwrap())]
        })
    );
    assert!(eff.mp_reach.is_none());
    // Without NLRI nothing is mandatory.
    let (_, o) = decode(&[0xc0, 8, 4, 0, 0, 0, 1], &[]).unwrap();
    assert_eq!(o, UpdateOutcome::Ok);
}

#[test]
fn attribute_length_overrun_is_treat_as_withdraw_when_nlri_are_known() {
    // §4: the last attribute claims 9 octets but 4 remain.
    let (u, o) = decode(&with(&[0x80, 4, 9, 0, 0, 0, 1]), &[8, 10]).unwrap();
    assert_eq!(taw(&o), vec![4]);
    assert_eq!(u.nlri.len(), 1);
    // §4: fewer than 3 octets left for an attribute header.
    let (_, o) = decode(&with(&[0x80, 4]), &[8, 10]).unwrap();
    assert_eq!(taw(&o), vec![4]);
    // Extended Length with fewer than 4 octets left.
    let (_, o) = decode(&with(&[0x90, 4, 0]), &[8, 10]).unwrap();
    assert_eq!(taw(&o), vec![4]);
}

#[test]
fn attribute_length_overrun_resets_when_nlri_may_be_hidden() {
    // No classic NLRI and no MP attribute parsed: an MP_REACH may be lost.
    let e = decode(&with(&[0x80, 4, 9, 0, 0, 0, 1]), &[]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 1));
}

#[test]
fn strongest_approach_wins() {
    // Discard (ATOMIC_AGGREGATE) + treat-as-withdraw (MED) -> treat-as-withdraw.
    let (_, o) = decode(&with(&[0x40, 6, 1, 0, 0x80, 4, 1, 0]), &[8, 10]).unwrap();
    match o {
        UpdateOutcome::TreatAsWithdraw { reasons, discarded } => {
            assert_eq!(reasons.first().map(|r| r.type_code), Some(4));
            assert_eq!(discarded.first().map(|r| r.type_code), Some(6));
        }
        other => panic!("{other:?}"),
    }
    // Treat-as-withdraw then a malformed MP_UNREACH -> reset.
    let e = decode(&with(&[0x80, 4, 1, 0, 0x80, 15, 2, 0, 2]), &[8, 10]).unwrap_err();
    assert_eq!((e.code, e.subcode), (3, 9));
}

#[test]
fn mp_reach_for_an_unknown_family_is_discarded() {
    let (_, o) = decode(&[0x80, 14, 10, 0, 1, 128, 4, 1, 2, 3, 4, 0, 0], &[]).unwrap();
    assert_eq!(discarded(&o), vec![14]);
}

#[test]
fn effective_form_never_looks_like_end_of_rib() {
    // Only a malformed ATOMIC_AGGREGATE: dropping it would leave an empty
    // UPDATE, i.e. IPv4 End-of-RIB.
    let bytes = update_bytes(&[], &[0x40, 6, 1, 0], &[]);
    let Message::Update(u) = Message::decode(&bytes, &four()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib(), None);
    // Only a malformed ORIGIN, no NLRI: treat-as-withdraw of nothing.
    let bytes = update_bytes(&[], &[0x40, 1, 1, 7], &[]);
    let Message::Update(u) = Message::decode(&bytes, &four()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib(), None);
    assert!(u.nlri.is_empty() && u.withdrawn.is_empty());
}

#[test]
fn treat_as_withdraw_moves_ipv4_mp_and_keeps_ipv6_unreach() {
    let ctx = Context {
        extended_next_hop_v4: true,
        ..four()
    };
    // MP_UNREACH IPv6 2001:db8::/32, MP_REACH IPv4 10/8 via IPv6, bad MED.
    let mut attrs = vec![0x80, 15, 8, 0, 2, 1, 32, 0x20, 1, 0x0d, 0xb8];
    attrs.extend_from_slice(&[0x80, 14, 23, 0, 1, 1, 16]);
    attrs.extend_from_slice(&[
        0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 8, 10,
    ]);
    attrs.extend_from_slice(&BASE_ATTRS[..13]);
    attrs.extend_from_slice(&[0x80, 4, 1, 0]);
    let (u, o) = decode_ctx(&attrs, &[], &ctx).unwrap();
    assert_eq!(taw(&o), vec![4]);
    let eff = DecodedUpdate {
        update: u,
        outcome: o,
    }
    .into_effective();
    assert_eq!(
        eff.withdrawn,
        vec![Nlri::new("10.0.0.0/8".parse().unwrap())]
    );
    assert_eq!(eff.mp_unreach.map(|m| m.withdrawn.len()), Some(1));
}
