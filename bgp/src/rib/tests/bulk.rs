//! Large announcements, whose new prefixes are added on two threads
//! (`rib::bulk`), end exactly as the same prefixes announced in small
//! pieces, one at a time.

use super::*;

fn v4_prefix(i: u32) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i << 8))), 24).unwrap()
}

fn announce_ids(peer: PeerIndex, path: &[Asn], nh: &str, nlri: Vec<Nlri>) -> RibChange {
    RibChange::Announce {
        peer,
        attrs: attrs(path),
        next_hop: ip(nh),
        nlri,
    }
}

/// Two peers (multipath on, so shared prefixes have two next hops); `b`
/// holds prefixes 0..3000 before the batch.
fn rib_with_b() -> (Rib, PeerIndex, PeerIndex) {
    let mut cfg = config();
    cfg.multipath = true;
    let mut rib = Rib::new(cfg);
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    let held = (0..3000).map(|i| Nlri::new(v4_prefix(i))).collect();
    rib.update(vec![announce_ids(b, &[65002], "192.0.2.20", held)])
        .unwrap();
    (rib, a, b)
}

/// The announcement from `a`: 12000 prefixes with path ID 1, of which
/// 0..3000 are held by `b`, 100..200 were withdrawn by `b` earlier in the
/// batch, one comes twice, a few have a path ID too large to pack, and a
/// few are IPv6.
fn big_announcement() -> Vec<Nlri> {
    let mut nlri: Vec<Nlri> = (0..12_000)
        .map(|i| Nlri::with_path_id(v4_prefix(i), if i % 997 == 0 { 70_000 } else { 1 }))
        .collect();
    nlri.insert(6000, Nlri::with_path_id(v4_prefix(5000), 1));
    for (k, at) in [10, 4000, 11_000].into_iter().enumerate() {
        let p: IpNet = format!("2001:db8:{k}::/48").parse().unwrap();
        nlri.insert(at, Nlri::with_path_id(p, 1));
    }
    nlri
}

fn batch(rib: &mut Rib, a: PeerIndex, b: PeerIndex, pieces: usize) -> Vec<BestChange> {
    let gone = (100..200).map(|i| Nlri::new(v4_prefix(i))).collect();
    let mut changes = vec![RibChange::Withdraw {
        peer: b,
        nlri: gone,
    }];
    for piece in big_announcement().chunks(pieces) {
        changes.push(announce_ids(a, &[65002], "192.0.2.10", piece.to_vec()));
    }
    rib.stage(changes).unwrap();
    let mut out = rib.take_changes();
    out.sort_by_key(|c| c.prefix);
    out
}

fn loc_rib(rib: &Rib) -> Vec<BestChange> {
    let mut all = rib.loc_rib();
    all.sort_by_key(|c| c.prefix);
    all
}

#[test]
fn a_large_announcement_ends_as_the_same_one_in_small_pieces() {
    assert!(big_announcement().len() >= crate::rib::bulk::BULK_MIN);
    let (mut bulk, a, b) = rib_with_b();
    let (mut each, _, _) = rib_with_b();
    let whole = batch(&mut bulk, a, b, usize::MAX);
    let pieces = batch(&mut each, a, b, 1000);
    assert_eq!(whole.len(), pieces.len());
    assert_eq!(whole, pieces);
    // Every prefix of the announcement decided once: 12000 IPv4 and 3 IPv6
    // (the 100 that b withdrew have a's path instead).
    assert_eq!(whole.len(), 12_003);
    assert_eq!(loc_rib(&bulk), loc_rib(&each));
    assert_eq!(bulk.adj_in_len(a), 12_003);
    assert_eq!(bulk.adj_in_len(a), each.adj_in_len(a));
    assert_eq!(bulk.adj_in_len(b), 2900);
    assert_eq!(bulk.route_count(), each.route_count());
    assert_eq!(bulk.listed_prefixes(), each.listed_prefixes());
    // Shared prefixes have both next hops.
    let shared = bulk.selection(&v4_prefix(7));
    assert_eq!(shared.next_hops.len(), 2);
    // The same announcement again (a route refresh): nothing changes.
    let again = announce_ids(a, &[65002], "192.0.2.10", big_announcement());
    assert!(bulk.update(vec![again]).unwrap().is_empty());
    assert_eq!(bulk.adj_in_len(a), 12_003);
    assert_eq!(loc_rib(&bulk), loc_rib(&each));
    // Everything withdrawn: nothing left, every route let go.
    for rib in [&mut bulk, &mut each] {
        let all: Vec<Nlri> = big_announcement();
        rib.update(vec![RibChange::Withdraw { peer: a, nlri: all }])
            .unwrap();
        rib.peer_down(b).unwrap();
        assert!(rib.is_empty());
        assert_eq!(rib.route_count(), 0);
        assert_eq!(rib.listed_prefixes(), 0);
    }
}
