//! Property tests: encode then decode is the identity within the model, and
//! no input makes any decoder panic, in every Context combination.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use crate::types::{AS_TRANS, Family};
use crate::wire::*;

fn contexts() -> impl Strategy<Value = Context> {
    (any::<bool>(), 0u8..4, any::<bool>(), any::<bool>()).prop_map(|(four, ap, enh, ext)| {
        let mut set = BTreeSet::new();
        if ap & 1 != 0 {
            set.insert(Family::Ipv4Unicast);
        }
        if ap & 2 != 0 {
            set.insert(Family::Ipv6Unicast);
        }
        Context {
            four_octet_as: four,
            add_path_rx: set.clone(),
            add_path_tx: set,
            extended_next_hop_v4: enh,
            extended_message: ext,
        }
    })
}

fn nlri_of(family: Family, ctx: &Context) -> BoxedStrategy<Nlri> {
    let ap = ctx.add_path_tx.contains(&family);
    let prefix = match family {
        Family::Ipv4Unicast => (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
            .boxed(),
        Family::Ipv6Unicast => (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
            .boxed(),
    };
    (prefix, any::<u32>())
        .prop_map(move |(p, id)| Nlri {
            prefix: p,
            path_id: ap.then_some(id),
        })
        .boxed()
}

fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..65536, any::<u32>()]
}

fn as_path() -> impl Strategy<Value = AsPath> {
    let seg = (
        prop_oneof![
            Just(SegmentKind::Sequence),
            Just(SegmentKind::Set),
            Just(SegmentKind::ConfedSequence),
            Just(SegmentKind::ConfedSet)
        ],
        prop::collection::vec(asn(), 1..6),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    prop::collection::vec(seg, 0..4).prop_map(|segments| AsPath { segments })
}

fn attributes() -> impl Strategy<Value = PathAttributes> {
    let unknown = prop::collection::vec(
        (
            prop_oneof![Just(33u8), Just(40), Just(99), Just(200)],
            prop::collection::vec(any::<u8>(), 0..8),
        ),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = BTreeSet::new();
        v.into_iter()
            .filter(|(t, _)| seen.insert(*t))
            .map(|(type_code, value)| RawAttribute {
                flags: 0xe0,
                type_code,
                value,
            })
            .collect::<Vec<_>>()
    });
    (
        (
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ],
            as_path(),
            any::<Option<[u8; 4]>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<bool>(),
            proptest::option::of((asn(), any::<[u8; 4]>())),
        ),
        (
            prop::collection::vec(any::<u32>(), 0..4),
            any::<Option<[u8; 4]>>(),
            prop::collection::vec(any::<[u8; 4]>(), 0..3),
            prop::collection::vec(any::<[u8; 8]>(), 0..3),
            prop::collection::vec(any::<(u32, u32, u32)>(), 0..3),
            unknown,
        ),
    )
        .prop_map(
            |((o, p, nh, med, lp, aa, agg), (c, oid, cl, ext, large, unknown))| PathAttributes {
                origin: Some(o),
                as_path: Some(p),
                next_hop: nh.map(Ipv4Addr::from),
                med,
                local_pref: lp,
                atomic_aggregate: aa,
                aggregator: agg.map(|(asn, a)| Aggregator {
                    asn,
                    address: Ipv4Addr::from(a),
                }),
                communities: c.into_iter().map(Community).collect(),
                originator_id: oid.map(Ipv4Addr::from),
                cluster_list: cl.into_iter().map(Ipv4Addr::from).collect(),
                ext_communities: ext.into_iter().map(ExtCommunity).collect(),
                large_communities: large
                    .into_iter()
                    .map(|(global, local1, local2)| LargeCommunity {
                        global,
                        local1,
                        local2,
                    })
                    .collect(),
                unknown,
            },
        )
}

fn updates() -> impl Strategy<Value = (Context, Update)> {
    contexts().prop_flat_map(|ctx| {
        let v4 = nlri_of(Family::Ipv4Unicast, &ctx);
        let v6 = nlri_of(Family::Ipv6Unicast, &ctx);
        let enh = ctx.extended_next_hop_v4;
        let reach = (
            any::<bool>(),
            prop::collection::vec(v4.clone(), 0..5),
            prop::collection::vec(v6.clone(), 0..5),
            any::<[u8; 16]>(),
            any::<Option<[u8; 16]>>(),
        )
            .prop_map(move |(is_v4, n4, n6, g, ll)| {
                if is_v4 && enh {
                    MpReach {
                        family: Family::Ipv4Unicast,
                        next_hop: IpAddr::V6(Ipv6Addr::from(g)),
                        link_local_next_hop: ll.map(Ipv6Addr::from),
                        nlri: n4,
                    }
                } else if is_v4 {
                    let [a, b, c, d, ..] = g;
                    MpReach {
                        family: Family::Ipv4Unicast,
                        next_hop: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                        link_local_next_hop: None,
                        nlri: n4,
                    }
                } else {
                    MpReach {
                        family: Family::Ipv6Unicast,
                        next_hop: IpAddr::V6(Ipv6Addr::from(g)),
                        link_local_next_hop: ll.map(Ipv6Addr::from),
                        nlri: n6,
                    }
                }
            });
        let unreach = (
            any::<bool>(),
            prop::collection::vec(v4.clone(), 0..5),
            prop::collection::vec(v6, 0..5),
        )
            .prop_map(|(is_v4, n4, n6)| {
                if is_v4 {
                    MpUnreach {
                        family: Family::Ipv4Unicast,
                        withdrawn: n4,
                    }
                } else {
                    MpUnreach {
                        family: Family::Ipv6Unicast,
                        withdrawn: n6,
                    }
                }
            });
        (
            Just(ctx),
            prop::collection::vec(v4.clone(), 0..5),
            attributes(),
            prop::collection::vec(v4, 0..5),
            proptest::option::of(reach),
            proptest::option::of(unreach),
        )
            .prop_map(
                |(ctx, withdrawn, mut attributes, nlri, mp_reach, mp_unreach)| {
                    if !nlri.is_empty() && attributes.next_hop.is_none() {
                        attributes.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
                    }
                    (
                        ctx,
                        Update {
                            withdrawn,
                            attributes,
                            nlri,
                            mp_reach,
                            mp_unreach,
                        },
                    )
                },
            )
    })
}

/// Paths that a 2-octet session cannot carry exactly (RFC 6793 limits).
fn two_octet_lossless(a: &PathAttributes) -> bool {
    let Some(p) = &a.as_path else { return true };
    let big_in_confed = p
        .segments
        .iter()
        .any(|s| s.kind.is_confed() && s.asns.iter().any(|&x| x > 0xffff));
    let first_plain = p
        .segments
        .iter()
        .position(|s| !s.kind.is_confed())
        .unwrap_or(p.segments.len());
    let confed_after = p
        .segments
        .iter()
        .skip(first_plain)
        .any(|s| s.kind.is_confed());
    let needs_as4 = p
        .segments
        .iter()
        .any(|s| !s.kind.is_confed() && s.asns.iter().any(|&x| x > 0xffff));
    // An aggregator that is not AS_TRANS on the wire voids AS4_PATH (§4.2.3).
    let agg_voids = a
        .aggregator
        .is_some_and(|g| g.asn <= 0xffff && g.asn != AS_TRANS)
        && needs_as4;
    !big_in_confed && !confed_after && !agg_voids
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn update_round_trip((ctx, u) in updates()) {
        prop_assume!(ctx.four_octet_as || two_octet_lossless(&u.attributes));
        let bytes = Message::Update(u.clone()).to_bytes(&ctx).unwrap();
        prop_assert!(bytes.len() <= ctx.max_message_len());
        let (m, o) = Message::decode_detailed(&bytes, &ctx).unwrap();
        prop_assert_eq!(o, UpdateOutcome::Ok);
        prop_assert_eq!(m, Message::Update(u));
    }

    #[test]
    fn open_round_trip(
        asn in asn(),
        hold in prop_oneof![Just(0u16), 3u16..],
        id in 1u32..,
        four in any::<bool>(),
        caps in prop::collection::vec(prop_oneof![
            any::<bool>().prop_map(|b| Capability::Multiprotocol(if b { Family::Ipv4Unicast } else { Family::Ipv6Unicast })),
            Just(Capability::RouteRefresh),
            Just(Capability::EnhancedRouteRefresh),
            Just(Capability::ExtendedMessage),
            Just(Capability::ExtendedNextHop(vec![(Family::Ipv4Unicast, 2)])),
            (any::<bool>(), any::<bool>(), 0u16..4096, any::<bool>()).prop_map(|(r, n, t, f)| Capability::GracefulRestart(GracefulRestart {
                restart_state: r, notification: n, restart_time: t, families: vec![(Family::Ipv6Unicast, f)],
            })),
            Just(Capability::AddPath(vec![(Family::Ipv4Unicast, AddPathMode::Both), (Family::Ipv6Unicast, AddPathMode::Send)])),
            (100u8..=255, prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(code, value)| Capability::Unknown { code, value }),
        ], 0..80),
    ) {
        let mut caps = caps;
        let asn = if four { caps.push(Capability::FourOctetAs(asn)); asn } else { asn & 0xffff };
        let open = Open::new(asn, hold, Ipv4Addr::from(id), caps);
        let bytes = Message::Open(open.clone()).to_bytes(&Context::default()).unwrap();
        prop_assert_eq!(Message::decode(&bytes, &Context::default()), Ok(Message::Open(open)));
    }

    #[test]
    fn decode_never_panics(ctx in contexts(), t in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&u16::try_from(body.len() + 19).unwrap().to_be_bytes());
        b.push(t);
        b.extend_from_slice(&body);
        let _ = frame(&b, &ctx);
        let _ = Message::decode(&b, &ctx);
        let _ = Message::decode_detailed(&b, &ctx);
    }

    #[test]
    fn decode_never_panics_on_raw_bytes(ctx in contexts(), b in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = frame(&b, &ctx);
        let _ = Message::decode(&b, &ctx);
    }

    /// Mutated valid UPDATEs reach deep into the attribute parsers.
    #[test]
    fn decode_never_panics_on_mutated_updates(
        (ctx, u) in updates(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = Message::Update(u).to_bytes(&ctx).unwrap();
        for (i, v) in flips {
            let i = 19 + i.index(bytes.len().saturating_sub(19).max(1));
            if let Some(b) = bytes.get_mut(i) { *b = v; }
        }
        let _ = Message::decode(&bytes, &ctx);
    }
}
