//! Every message type against hand-written bytes.

use std::net::Ipv4Addr;

use super::{BASE_ATTRS, four, update_bytes};
use crate::types::Family;
use crate::wire::*;

#[test]
fn keepalive_by_hand() {
    let mut want = vec![0xff; 16];
    want.extend_from_slice(&[0, 19, 4]);
    assert_eq!(
        Message::Keepalive.to_bytes(&Context::default()).unwrap(),
        want
    );
    assert_eq!(
        Message::decode(&want, &Context::default()),
        Ok(Message::Keepalive)
    );
}

#[test]
fn notification_by_hand() {
    let n = Notification::cease_with_message(notification::cease::ADMINISTRATIVE_RESET, "bye");
    let bytes = Message::Notification(n.clone())
        .to_bytes(&Context::default())
        .unwrap();
    let mut want = vec![0xff; 16];
    want.extend_from_slice(&[0, 25, 3, 6, 4, 3, b'b', b'y', b'e']);
    assert_eq!(bytes, want);
    assert_eq!(
        Message::decode(&bytes, &Context::default()),
        Ok(Message::Notification(n))
    );
    // Hold timer expired, no data: the minimum 21 octets.
    let mut ht = vec![0xff; 16];
    ht.extend_from_slice(&[0, 21, 3, 4, 0]);
    let m = Message::decode(&ht, &Context::default()).unwrap();
    assert_eq!(m, Message::Notification(Notification::new(4, 0, vec![])));
}

#[test]
fn route_refresh_by_hand() {
    let rr = RouteRefresh {
        family: Family::Ipv6Unicast,
        subtype: route_refresh::subtype::BEGIN,
    };
    let bytes = Message::RouteRefresh(rr)
        .to_bytes(&Context::default())
        .unwrap();
    let mut want = vec![0xff; 16];
    want.extend_from_slice(&[0, 23, 5, 0, 2, 1, 1]);
    assert_eq!(bytes, want);
    assert_eq!(
        Message::decode(&bytes, &Context::default()),
        Ok(Message::RouteRefresh(rr))
    );
}

#[test]
fn route_refresh_for_an_unknown_family_is_ignorable() {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 23, 5, 0, 1, 0, 128]);
    assert_eq!(
        Message::decode(&b, &Context::default()),
        Ok(Message::UnknownRouteRefresh {
            afi: 1,
            safi: 128,
            subtype: 0
        })
    );
    // Unknown subtype (RFC 7313 §5: ignore).
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 23, 5, 0, 1, 3, 1]);
    assert!(matches!(
        Message::decode(&b, &Context::default()),
        Ok(Message::UnknownRouteRefresh { subtype: 3, .. })
    ));
}

#[test]
fn route_refresh_of_wrong_size_is_7_1_with_the_message() {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 24, 5, 0, 1, 1, 1, 0]);
    let e = Message::decode(&b, &Context::default()).unwrap_err();
    assert_eq!((e.code, e.subcode), (7, 1));
    assert_eq!(e.data, b);
}

#[test]
fn update_with_as_path_by_hand() {
    let u = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..PathAttributes::default()
        },
        nlri: vec![Nlri::new("10.1.0.0/16".parse().unwrap())],
        ..Update::default()
    };
    let want = update_bytes(&[], &BASE_ATTRS, &[16, 10, 1]);
    let got = Message::Update(u.clone()).to_bytes(&four()).unwrap();
    assert_eq!(got, want);
    assert_eq!(Message::decode(&got, &four()), Ok(Message::Update(u)));
}

#[test]
fn every_attribute_by_hand() {
    let attrs = PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::sequence(vec![65001])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65002,
            address: Ipv4Addr::new(10, 0, 0, 2),
        }),
        communities: vec![Community(0xfde9_0001)],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 7)],
        ext_communities: vec![ExtCommunity([0, 2, 0xfd, 0xe9, 0, 0, 0, 1])],
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 2,
            local2: 3,
        }],
        unknown: vec![RawAttribute {
            flags: 0xe0,
            type_code: 99,
            value: vec![0xab],
        }],
    };
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        0x40, 1, 1, 2,
        0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9,
        0x40, 3, 4, 192, 0, 2, 1,
        0x80, 4, 4, 0, 0, 0, 100,
        0x40, 5, 4, 0, 0, 0, 200,
        0x40, 6, 0,
        0xc0, 7, 8, 0, 0, 0xfd, 0xea, 10, 0, 0, 2,
        0xc0, 8, 4, 0xfd, 0xe9, 0, 1,
        0x80, 9, 4, 10, 0, 0, 9,
        0x80, 10, 4, 10, 0, 0, 7,
        0xc0, 16, 8, 0, 2, 0xfd, 0xe9, 0, 0, 0, 1,
        0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 2, 0, 0, 0, 3,
        0xe0, 99, 1, 0xab,
    ];
    let u = Update {
        attributes: attrs,
        nlri: vec![Nlri::new("10.0.0.0/8".parse().unwrap())],
        ..Update::default()
    };
    let bytes = Message::Update(u.clone()).to_bytes(&four()).unwrap();
    assert_eq!(bytes, update_bytes(&[], &want, &[8, 10]));
    assert_eq!(Message::decode(&bytes, &four()), Ok(Message::Update(u)));
}

#[test]
fn unknown_attributes_partial_and_non_transitive() {
    let mut attrs = BASE_ATTRS.to_vec();
    attrs.extend_from_slice(&[0xc0, 99, 1, 7]); // optional transitive
    attrs.extend_from_slice(&[0x80, 98, 1, 8]); // optional non-transitive
    let bytes = update_bytes(&[], &attrs, &[8, 10]);
    let Message::Update(u) = Message::decode(&bytes, &four()).unwrap() else {
        panic!()
    };
    assert_eq!(u.attributes.unknown.len(), 2);
    let again = Message::Update(u).to_bytes(&four()).unwrap();
    let mut want = BASE_ATTRS.to_vec();
    want.extend_from_slice(&[0xe0, 99, 1, 7]); // Partial set, the other dropped
    assert_eq!(again, update_bytes(&[], &want, &[8, 10]));
}

#[test]
fn extended_length_above_255_octets() {
    let u = Update {
        attributes: PathAttributes {
            communities: (0..100).map(Community).collect(),
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    let bytes = Message::Update(u.clone()).to_bytes(&four()).unwrap();
    assert_eq!(bytes.get(23..27), Some(&[0xd0, 8, 0x01, 0x90][..]));
    assert_eq!(Message::decode(&bytes, &four()), Ok(Message::Update(u)));
}

#[test]
fn ipv6_update_and_withdrawals() {
    let u = Update {
        withdrawn: vec![Nlri::new("10.9.0.0/16".parse().unwrap())],
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            ..PathAttributes::default()
        },
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local_next_hop: None,
            nlri: vec![Nlri::new("2001:db8:1::/48".parse().unwrap())],
        }),
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![Nlri::new("2001:db8:2::/48".parse().unwrap())],
        }),
        ..Update::default()
    };
    let bytes = Message::Update(u.clone()).to_bytes(&four()).unwrap();
    // MP_REACH_NLRI is the first attribute (RFC 7606 §5.1).
    assert_eq!(bytes.get(26..28), Some(&[0x80, 14][..]));
    assert_eq!(
        Message::decode_detailed(&bytes, &four()),
        Ok((Message::Update(u), UpdateOutcome::Ok))
    );
}

#[test]
fn too_big_update_is_an_encode_error() {
    let u = Update {
        withdrawn: (0..2000u32)
            .map(|i| {
                Nlri::new(ipnet::IpNet::V4(
                    ipnet::Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap(),
                ))
            })
            .collect(),
        ..Update::default()
    };
    let mut out = vec![1];
    assert!(matches!(
        u.encode(&four(), &mut out),
        Err(EncodeError::MessageTooLong { .. })
    ));
    assert_eq!(out, [1]);
    let big = Context {
        extended_message: true,
        ..four()
    };
    assert!(u.encode(&big, &mut out).is_ok());
}

#[test]
fn end_of_rib() {
    for f in Family::ALL {
        let eor = Update::end_of_rib_marker(f);
        assert_eq!(eor.end_of_rib(), Some(f));
        let bytes = Message::Update(eor).to_bytes(&Context::default()).unwrap();
        let Message::Update(back) = Message::decode(&bytes, &Context::default()).unwrap() else {
            panic!()
        };
        assert_eq!(back.end_of_rib(), Some(f));
    }
    // IPv4 End-of-RIB is the 23-octet empty UPDATE.
    assert_eq!(
        Message::Update(Update::end_of_rib_marker(Family::Ipv4Unicast))
            .to_bytes(&Context::default())
            .unwrap(),
        update_bytes(&[], &[], &[])
    );
    let not = Update {
        withdrawn: vec![Nlri::new("10.0.0.0/8".parse().unwrap())],
        ..Update::default()
    };
    assert_eq!(not.end_of_rib(), None);
}

#[test]
fn update_without_nlri_but_with_attributes_is_fine() {
    let bytes = update_bytes(&[], &BASE_ATTRS, &[]);
    let (m, o) = Message::decode_detailed(&bytes, &four()).unwrap();
    assert_eq!(o, UpdateOutcome::Ok);
    let Message::Update(u) = m else { panic!() };
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    assert_eq!(u.end_of_rib(), None);
}

#[test]
fn decode_requires_exactly_one_message() {
    let mut b = Message::Keepalive.to_bytes(&Context::default()).unwrap();
    b.push(0);
    let e = Message::decode(&b, &Context::default()).unwrap_err();
    assert_eq!((e.code, e.subcode), (1, 2));
}
