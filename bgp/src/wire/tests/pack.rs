//! The packing encoder produces the fewest messages, each within the limit,
//! and they decode back to the input.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::four;
use crate::types::Family;
use crate::wire::*;

fn v4_prefixes(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap(),
            ))
        })
        .collect()
}

fn v6_prefixes(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let a = Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + (u128::from(i) << 64),
            );
            Nlri::new(IpNet::V6(Ipv6Net::new(a, 64).unwrap()))
        })
        .collect()
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65001, 65002])),
        communities: vec![Community(1), Community(2)],
        ..PathAttributes::default()
    }
}

/// Splits a buffer of back-to-back messages and decodes each.
fn split(ctx: &Context, mut buf: &[u8]) -> Vec<(usize, Update)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = frame(buf, ctx).unwrap().unwrap();
        let (msg, rest) = buf.split_at(len);
        let (m, o) = Message::decode_detailed(msg, ctx).unwrap();
        assert_eq!(o, UpdateOutcome::Ok);
        let Message::Update(u) = m else { panic!() };
        out.push((len, u));
        buf = rest;
    }
    out
}

/// Fewest messages for `n` equal-size entries: ceil(n / per message).
fn minimum(n: usize, max: usize, fixed: usize, entry: usize) -> usize {
    n.div_ceil((max - fixed) / entry)
}

fn attr_block_len(ctx: &Context, a: &PathAttributes) -> usize {
    let u = Update {
        attributes: a.clone(),
        ..Update::default()
    };
    Message::Update(u).to_bytes(ctx).unwrap().len() - 23
}

#[test]
fn ipv4_classic_is_minimal_and_round_trips() {
    for ctx in [
        four(),
        Context {
            extended_message: true,
            ..four()
        },
    ] {
        let nlri = v4_prefixes(50_000);
        let nh = Ipv4Addr::new(192, 0, 2, 1);
        let a = PathAttributes {
            next_hop: Some(nh),
            ..attrs()
        };
        let mut out = Vec::new();
        let n = pack_announce(
            &ctx,
            Family::Ipv4Unicast,
            &attrs(),
            NextHop::new(nh.into()),
            &nlri,
            &mut out,
        )
        .unwrap();
        let max = ctx.max_message_len();
        assert_eq!(
            n,
            minimum(nlri.len(), max, 23 + attr_block_len(&ctx, &a), 4)
        );
        let msgs = split(&ctx, &out);
        assert_eq!(msgs.len(), n);
        let mut back = Vec::new();
        for (len, u) in msgs {
            assert!(len <= max);
            assert_eq!(u.attributes, a);
            back.extend(u.nlri);
        }
        assert_eq!(back, nlri);
    }
}

#[test]
fn ipv6_mp_reach_is_minimal_and_round_trips() {
    let ctx = four();
    let nlri = v6_prefixes(10_000);
    let nh = NextHop {
        addr: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let mut out = Vec::new();
    let n = pack_announce(&ctx, Family::Ipv6Unicast, &attrs(), nh, &nlri, &mut out).unwrap();
    // MP_REACH: 4 header + AFI/SAFI/len 4 + 32 next hop + reserved 1.
    let fixed = 23 + 4 + 4 + 32 + 1 + attr_block_len(&ctx, &attrs());
    assert_eq!(n, minimum(nlri.len(), 4096, fixed, 9));
    let mut back = Vec::new();
    for (len, u) in split(&ctx, &out) {
        assert!(len <= 4096);
        assert_eq!(u.attributes, attrs());
        let mp = u.mp_reach.unwrap();
        assert_eq!(
            (mp.next_hop, mp.link_local_next_hop),
            (nh.addr, nh.link_local)
        );
        back.extend(mp.nlri);
    }
    assert_eq!(back, nlri);
}

#[test]
fn ipv4_with_ipv6_next_hop_and_add_path() {
    let ctx = Context {
        extended_next_hop_v4: true,
        extended_message: true,
        add_path_tx: [Family::Ipv4Unicast].into(),
        add_path_rx: [Family::Ipv4Unicast].into(),
        ..four()
    };
    let nlri: Vec<_> = v4_prefixes(30_000)
        .into_iter()
        .enumerate()
        .map(|(i, n)| Nlri::with_path_id(n.prefix, u32::try_from(i).unwrap()))
        .collect();
    let nh = NextHop::new("2001:db8::1".parse().unwrap());
    let mut out = Vec::new();
    let n = pack_announce(&ctx, Family::Ipv4Unicast, &attrs(), nh, &nlri, &mut out).unwrap();
    let fixed = 23 + 4 + 4 + 16 + 1 + attr_block_len(&ctx, &attrs());
    assert_eq!(n, minimum(nlri.len(), 65535, fixed, 8));
    let back: Vec<_> = split(&ctx, &out)
        .into_iter()
        .flat_map(|(len, u)| {
            assert!(len <= 65535);
            u.mp_reach.unwrap().nlri
        })
        .collect();
    assert_eq!(back, nlri);
    // Not negotiated: refused, and nothing written.
    let mut out = vec![7];
    assert!(pack_announce(&four(), Family::Ipv4Unicast, &attrs(), nh, &nlri, &mut out).is_err());
    assert_eq!(out, [7]);
}

#[test]
fn withdrawals_are_minimal_and_round_trip() {
    let ctx = four();
    let v4 = v4_prefixes(5_000);
    let mut out = Vec::new();
    let n = pack_withdraw(&ctx, Family::Ipv4Unicast, &v4, &mut out).unwrap();
    assert_eq!(n, minimum(v4.len(), 4096, 23, 4));
    let back: Vec<_> = split(&ctx, &out)
        .into_iter()
        .flat_map(|(_, u)| u.withdrawn)
        .collect();
    assert_eq!(back, v4);

    let v6 = v6_prefixes(5_000);
    let mut out = Vec::new();
    let n = pack_withdraw(&ctx, Family::Ipv6Unicast, &v6, &mut out).unwrap();
    assert_eq!(n, minimum(v6.len(), 4096, 23 + 4 + 3, 9));
    let back: Vec<_> = split(&ctx, &out)
        .into_iter()
        .flat_map(|(_, u)| u.mp_unreach.unwrap().withdrawn)
        .collect();
    assert_eq!(back, v6);
}

#[test]
fn empty_input_and_family_mismatch() {
    let mut out = Vec::new();
    let nh = NextHop::new(Ipv4Addr::new(1, 1, 1, 1).into());
    assert_eq!(
        pack_announce(&four(), Family::Ipv4Unicast, &attrs(), nh, &[], &mut out),
        Ok(0)
    );
    assert_eq!(
        pack_withdraw(&four(), Family::Ipv6Unicast, &[], &mut out),
        Ok(0)
    );
    assert!(out.is_empty());
    let mixed = [v4_prefixes(1), v6_prefixes(1)].concat();
    assert!(matches!(
        pack_announce(&four(), Family::Ipv4Unicast, &attrs(), nh, &mixed, &mut out),
        Err(EncodeError::FamilyMismatch { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn attributes_too_big_for_any_message_are_an_error() {
    let huge = PathAttributes {
        communities: (0..1100).map(Community).collect(),
        ..attrs()
    };
    let mut out = Vec::new();
    let nh = NextHop::new("2001:db8::1".parse().unwrap());
    let r = pack_announce(
        &four(),
        Family::Ipv6Unicast,
        &huge,
        nh,
        &v6_prefixes(3),
        &mut out,
    );
    assert_eq!(r, Err(EncodeError::NlriTooLong));
    assert!(out.is_empty());
}
