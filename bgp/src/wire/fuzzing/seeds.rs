//! Valid inputs for the `decode` fuzz target, built with the codec: every
//! message type, every capability and attribute, both families, each
//! prefixed with the selector octet of the context it was encoded under.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::selector_of;
use crate::types::Family;
use crate::wire::attributes::attr_flags as fl;
use crate::wire::notification::cease;
use crate::wire::route_refresh::subtype;
use crate::wire::{
    AddPathMode, Aggregator, AsPath, AsSegment, Capability, Community, Context, ExtCommunity,
    GracefulRestart, LargeCommunity, Message, MpReach, MpUnreach, Nlri, Notification, Open, Origin,
    PathAttributes, RawAttribute, RouteRefresh, SegmentKind, Update,
};

fn net(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap_or_else(|_| unreachable!("literal prefix")))
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| unreachable!("literal address"))
}

fn ctx(four: bool, add_path: &[Family], ext_nh: bool, ext_msg: bool) -> Context {
    let set: BTreeSet<Family> = add_path.iter().copied().collect();
    Context {
        four_octet_as: four,
        add_path_rx: set.clone(),
        add_path_tx: set,
        extended_next_hop_v4: ext_nh,
        extended_message: ext_msg,
    }
}

fn every_capability() -> Vec<Capability> {
    use Family::*;
    vec![
        Capability::Multiprotocol(Ipv4Unicast),
        Capability::Multiprotocol(Ipv6Unicast),
        Capability::RouteRefresh,
        Capability::ExtendedNextHop(vec![(Ipv4Unicast, 2)]),
        Capability::ExtendedMessage,
        Capability::GracefulRestart(GracefulRestart {
            restart_state: true,
            notification: true,
            restart_time: 120,
            families: vec![(Ipv4Unicast, true), (Ipv6Unicast, false)],
        }),
        Capability::FourOctetAs(4_200_000_000),
        Capability::AddPath(vec![
            (Ipv4Unicast, AddPathMode::Both),
            (Ipv6Unicast, AddPathMode::Receive),
        ]),
        Capability::EnhancedRouteRefresh,
        Capability::Unknown {
            code: 73,
            value: b"\x04host".to_vec(),
        },
    ]
}

/// Every attribute but the MP ones, with 4-octet numbers in the path and
/// aggregator so a 2-octet context adds AS4_PATH and AS4_AGGREGATOR.
fn every_attribute() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![64512, 64513],
                },
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65001, 4_200_000_000],
                },
                AsSegment {
                    kind: SegmentKind::Set,
                    asns: vec![65010, 65011],
                },
            ],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_001,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![Community(0xfde9_0001), Community(0xffff_ff01)],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 2)],
        ext_communities: vec![ExtCommunity([0, 2, 0xfd, 0xe9, 0, 0, 0, 100])],
        large_communities: vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        }],
        unknown: vec![RawAttribute {
            flags: fl::OPTIONAL_TRANSITIVE | fl::PARTIAL,
            type_code: 99,
            value: vec![1, 2, 3],
        }],
    }
}

fn v6_reach(nlri: Vec<Nlri>) -> MpReach {
    MpReach {
        family: Family::Ipv6Unicast,
        next_hop: ip("2001:db8::1"),
        link_local_next_hop: Some("fe80::1".parse().unwrap_or_else(|_| unreachable!())),
        nlri,
    }
}

fn update_seeds() -> Vec<(&'static str, Context, Message)> {
    use Family::*;
    let four = ctx(true, &[], false, false);
    let two = ctx(false, &[], false, false);
    let add_v4 = ctx(true, &[Ipv4Unicast], false, false);
    let add_v6 = ctx(true, &[Ipv6Unicast], false, false);
    let ext_nh = ctx(true, &[], true, false);
    let ext_msg = ctx(true, &[Ipv4Unicast, Ipv6Unicast], true, true);
    let v4_nlri = vec![net("10.0.0.0/8"), net("192.168.1.0/24"), net("1.2.3.4/32")];
    let classic = Update {
        attributes: every_attribute(),
        nlri: v4_nlri.clone(),
        ..Update::default()
    };
    let mut mp_attrs = every_attribute();
    mp_attrs.next_hop = None;
    let mp_v6 = Update {
        attributes: mp_attrs.clone(),
        mp_reach: Some(v6_reach(vec![net("2001:db8:1::/48"), net("::/0")])),
        ..Update::default()
    };
    let mp_v4 = Update {
        attributes: mp_attrs.clone(),
        mp_reach: Some(MpReach {
            family: Ipv4Unicast,
            next_hop: ip("192.0.2.1"),
            link_local_next_hop: None,
            nlri: v4_nlri.clone(),
        }),
        ..Update::default()
    };
    let mp_v4_v6_nh = Update {
        mp_reach: Some(MpReach {
            family: Ipv4Unicast,
            next_hop: ip("2001:db8::1"),
            link_local_next_hop: None,
            nlri: v4_nlri.clone(),
        }),
        ..mp_v4.clone()
    };
    let with_ids = |list: &[Nlri]| -> Vec<Nlri> {
        list.iter()
            .zip(1u32..)
            .map(|(n, id)| Nlri::with_path_id(n.prefix, id))
            .collect()
    };
    let withdraw_v4 = Update {
        withdrawn: v4_nlri.clone(),
        ..Update::default()
    };
    let withdraw_v6 = Update {
        mp_unreach: Some(MpUnreach {
            family: Ipv6Unicast,
            withdrawn: vec![net("2001:db8:1::/48"), net("2001:db8:2::/64")],
        }),
        ..Update::default()
    };
    let add_path_v4 = Update {
        withdrawn: with_ids(&[net("172.16.0.0/12")]),
        nlri: with_ids(&v4_nlri),
        ..classic.clone()
    };
    let add_path_v6 = Update {
        mp_reach: Some(v6_reach(with_ids(&[net("2001:db8:1::/48")]))),
        mp_unreach: Some(MpUnreach {
            family: Ipv6Unicast,
            withdrawn: with_ids(&[net("2001:db8:9::/48")]),
        }),
        ..mp_v6.clone()
    };
    // More than 4096 octets: only with extended messages.
    let big = Update {
        attributes: PathAttributes {
            communities: (0..1200).map(Community).collect(),
            ..every_attribute()
        },
        ..classic.clone()
    };
    let u = Message::Update;
    vec![
        ("update-classic-4octet", four.clone(), u(classic.clone())),
        ("update-classic-2octet", two.clone(), u(classic)),
        ("update-mp-v6", four.clone(), u(mp_v6.clone())),
        ("update-mp-v6-2octet", two.clone(), u(mp_v6)),
        ("update-mp-v4", four.clone(), u(mp_v4)),
        ("update-mp-v4-v6-next-hop", ext_nh, u(mp_v4_v6_nh)),
        ("update-withdraw-v4", four.clone(), u(withdraw_v4)),
        ("update-withdraw-v6", four.clone(), u(withdraw_v6)),
        ("update-add-path-v4", add_v4, u(add_path_v4)),
        ("update-add-path-v6", add_v6, u(add_path_v6)),
        ("update-extended-message", ext_msg, u(big)),
        (
            "eor-v4",
            four.clone(),
            u(Update::end_of_rib_marker(Ipv4Unicast)),
        ),
        ("eor-v6", four, u(Update::end_of_rib_marker(Ipv6Unicast))),
    ]
}

fn other_seeds() -> Vec<(&'static str, Context, Message)> {
    let base = Context::default();
    let open = |caps| Message::Open(Open::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), caps));
    // RFC 9072: more than 255 octets of optional parameters.
    let many: Vec<Capability> = (0..70)
        .map(|i| Capability::Unknown {
            code: 200,
            value: vec![i, i],
        })
        .collect();
    vec![
        ("keepalive", base.clone(), Message::Keepalive),
        (
            "open-every-capability",
            base.clone(),
            open(every_capability()),
        ),
        ("open-extended-parameters", base.clone(), open(many)),
        ("open-bare", base.clone(), open(Vec::new())),
        (
            "notification-shutdown",
            base.clone(),
            Message::Notification(Notification::cease_with_message(
                cease::ADMINISTRATIVE_SHUTDOWN,
                "maintenance \u{1f527}",
            )),
        ),
        (
            "notification-update-error",
            base.clone(),
            Message::Notification(Notification::new(3, 11, vec![0x40, 2, 0])),
        ),
        (
            "route-refresh",
            base.clone(),
            Message::RouteRefresh(RouteRefresh::request(Family::Ipv4Unicast)),
        ),
        (
            "route-refresh-borr-v6",
            base.clone(),
            Message::RouteRefresh(RouteRefresh {
                family: Family::Ipv6Unicast,
                subtype: subtype::BEGIN,
            }),
        ),
        (
            "route-refresh-unknown",
            base,
            Message::UnknownRouteRefresh {
                afi: 25,
                safi: 65,
                subtype: 7,
            },
        ),
    ]
}

/// Named seed inputs: selector octet, then the encoded message (one seed
/// holds two messages back to back, to cover the framing loop).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut all = other_seeds();
    all.extend(update_seeds());
    for (name, ctx, msg) in all {
        let mut input = vec![selector_of(&ctx)];
        if let Err(e) = msg.encode(&ctx, &mut input) {
            unreachable!("seed {name} does not encode: {e}");
        }
        out.push((name.to_owned(), input));
    }
    let base = Context::default();
    let mut stream = vec![selector_of(&base)];
    for m in [
        Message::Keepalive,
        Message::Update(Update::end_of_rib_marker(Family::Ipv4Unicast)),
    ] {
        if let Err(e) = m.encode(&base, &mut stream) {
            unreachable!("stream seed does not encode: {e}");
        }
    }
    out.push(("stream-keepalive-eor".to_owned(), stream));
    out
}
