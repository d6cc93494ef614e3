//! RFC 6793 through whole UPDATEs: sending to and receiving from a peer
//! without 4-octet AS support.

use std::net::Ipv4Addr;

use super::update_bytes;
use crate::types::AS_TRANS;
use crate::wire::*;

fn two() -> Context {
    Context::default()
}

#[test]
fn encode_for_a_two_octet_peer_by_hand() {
    let u = Update {
        attributes: PathAttributes {
            as_path: Some(AsPath::sequence(vec![65001, 4_200_000_000])),
            aggregator: Some(Aggregator {
                asn: 4_200_000_000,
                address: Ipv4Addr::new(10, 0, 0, 1),
            }),
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    let bytes = Message::Update(u.clone()).to_bytes(&two()).unwrap();
    #[rustfmt::skip]
    let want = [
        0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0,
        0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1,
        0xc0, 17, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00,
        0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 1,
    ];
    assert_eq!(bytes, update_bytes(&[], &want, &[]));
    // And back: AS4_PATH and AS4_AGGREGATOR are merged.
    assert_eq!(Message::decode(&bytes, &two()), Ok(Message::Update(u)));
}

#[test]
fn no_as4_path_when_every_asn_fits() {
    let u = Update {
        attributes: PathAttributes {
            as_path: Some(AsPath::sequence(vec![65001, 65002])),
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    let bytes = Message::Update(u).to_bytes(&two()).unwrap();
    assert_eq!(
        bytes,
        update_bytes(&[], &[0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0xfd, 0xea], &[])
    );
}

#[test]
fn merge_on_receive() {
    // AS_PATH 65001 AS_TRANS AS_TRANS; AS4_PATH 4200000000 4200000001.
    #[rustfmt::skip]
    let attrs = [
        0x40, 2, 8, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0,
        0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x00, 0xfa, 0x56, 0xea, 0x01,
    ];
    let Message::Update(u) = Message::decode(&update_bytes(&[], &attrs, &[]), &two()).unwrap()
    else {
        panic!()
    };
    let p = u.attributes.as_path.unwrap();
    assert_eq!(p.length(), 3);
    let flat: Vec<_> = p.segments.iter().flat_map(|s| s.asns.clone()).collect();
    assert_eq!(flat, [65001, 4_200_000_000, 4_200_000_001]);
}

#[test]
fn longer_as4_path_is_ignored() {
    #[rustfmt::skip]
    let attrs = [
        0x40, 2, 4, 2, 1, 0x5b, 0xa0,
        0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x00, 0xfa, 0x56, 0xea, 0x01,
    ];
    let Message::Update(u) = Message::decode(&update_bytes(&[], &attrs, &[]), &two()).unwrap()
    else {
        panic!()
    };
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![AS_TRANS])));
}

#[test]
fn aggregator_not_as_trans_voids_as4_attributes() {
    #[rustfmt::skip]
    let attrs = [
        0x40, 2, 4, 2, 1, 0x5b, 0xa0,
        0xc0, 7, 6, 0xfd, 0xe9, 10, 0, 0, 1,
        0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00,
        0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 1,
    ];
    let Message::Update(u) = Message::decode(&update_bytes(&[], &attrs, &[]), &two()).unwrap()
    else {
        panic!()
    };
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![AS_TRANS])));
    assert_eq!(u.attributes.aggregator.map(|a| a.asn), Some(65001));
}

#[test]
fn malformed_as4_path_is_discarded() {
    #[rustfmt::skip]
    let attrs = [
        0x40, 2, 4, 2, 1, 0x5b, 0xa0,
        0xc0, 17, 3, 2, 1, 0xfa,
    ];
    let (m, o) = Message::decode_detailed(&update_bytes(&[], &attrs, &[]), &two()).unwrap();
    assert!(matches!(o, UpdateOutcome::AttributeDiscard(ref d) if d.len() == 1));
    let Message::Update(u) = m else { panic!() };
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![AS_TRANS])));
}
