//! One test per step of the decision process, plus loop checks.

use super::*;
use crate::rib::RibError;
use crate::wire::Origin;

const P: &str = "203.0.113.0/24";

/// Two eBGP peers in different ASes (so MED does not apply between them).
fn two_ebgp() -> (Rib, PeerIndex, PeerIndex) {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    (rib, a, b)
}

/// Two iBGP peers.
fn two_ibgp() -> (Rib, PeerIndex, PeerIndex) {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", LOCAL_AS));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", LOCAL_AS));
    (rib, a, b)
}

#[test]
fn local_route_beats_learned() {
    let (mut rib, a, _) = two_ibgp();
    let mut high = attrs(&[]);
    high.local_pref = Some(1000);
    announce(&mut rib, a, P, high, "192.0.2.10");
    let changes = originate(&mut rib, P);
    assert_eq!(changes.len(), 1);
    assert_eq!(best_peer(&rib, P), Some(PeerIndex::LOCAL));
    assert_eq!(changes[0].next_hops.to_vec(), vec![ip("0.0.0.0")]);
}

#[test]
fn highest_local_pref_wins() {
    let (mut rib, a, b) = two_ibgp();
    let mut lo = attrs(&[65010]);
    lo.local_pref = Some(50);
    let mut hi = attrs(&[65010, 65011, 65012]);
    hi.local_pref = Some(200);
    announce(&mut rib, a, P, lo, "192.0.2.10");
    announce(&mut rib, b, P, hi, "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
    // Absent LOCAL_PREF counts as 100: beats 50.
    let (mut rib, a, b) = two_ibgp();
    let mut lo = attrs(&[65010]);
    lo.local_pref = Some(50);
    announce(&mut rib, a, P, lo, "192.0.2.10");
    announce(&mut rib, b, P, attrs(&[65010, 65011]), "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn local_pref_from_ebgp_is_ignored() {
    let (mut rib, a, b) = two_ebgp();
    let mut claims = attrs(&[65001]);
    claims.local_pref = Some(1000);
    announce(&mut rib, a, P, claims, "192.0.2.10");
    announce(&mut rib, b, P, attrs(&[65002]), "192.0.2.20");
    // Equal after ignoring LOCAL_PREF: router ID 1.1.1.1 decides.
    assert_eq!(best_peer(&rib, P), Some(a));
    assert_eq!(rib.best(&net(P)).unwrap().attrs.local_pref, None);
}

#[test]
fn shortest_as_path_wins_with_sets_counting_one() {
    let (mut rib, a, b) = two_ebgp();
    announce(&mut rib, a, P, attrs(&[65001, 1, 2]), "192.0.2.10");
    let mut with_set = attrs(&[65002]);
    with_set.as_path.as_mut().unwrap().segments.push(AsSegment {
        kind: SegmentKind::Set,
        asns: vec![3, 4, 5, 6],
    });
    with_set.as_path.as_mut().unwrap().segments.insert(
        0,
        AsSegment {
            kind: SegmentKind::ConfedSequence,
            asns: vec![64512, 64513],
        },
    );
    announce(&mut rib, b, P, with_set, "192.0.2.20");
    // b: 1 + set(1) + confed(0) = 2 < 3.
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn lowest_origin_wins() {
    let (mut rib, a, b) = two_ebgp();
    let mut egp = attrs(&[65001]);
    egp.origin = Some(Origin::Egp);
    let mut incomplete = attrs(&[65002]);
    incomplete.origin = Some(Origin::Incomplete);
    announce(&mut rib, a, P, incomplete, "192.0.2.10");
    announce(&mut rib, b, P, egp, "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn lowest_med_wins_from_the_same_neighbour_as() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65001));
    let mut high = attrs(&[65001]);
    high.med = Some(50);
    let mut low = attrs(&[65001]);
    low.med = Some(10);
    announce(&mut rib, a, P, high, "192.0.2.10");
    announce(&mut rib, b, P, low, "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
    // Absent MED is 0, the lowest.
    let c = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65001));
    announce(&mut rib, c, P, attrs(&[65001]), "192.0.2.30");
    assert_eq!(best_peer(&rib, P), Some(c));
}

#[test]
fn med_is_not_compared_across_neighbour_ases() {
    let (mut rib, a, b) = two_ebgp();
    let mut high = attrs(&[65001]);
    high.med = Some(500);
    let mut low = attrs(&[65002]);
    low.med = Some(1);
    announce(&mut rib, a, P, high, "192.0.2.10");
    announce(&mut rib, b, P, low, "192.0.2.20");
    // MED ignored across ASes; router ID 1.1.1.1 (a) wins.
    assert_eq!(best_peer(&rib, P), Some(a));
}

#[test]
fn med_elimination_is_per_neighbour_group() {
    // a (AS 65001, MED 5) loses to c (AS 65001, MED 1); b (AS 65002, MED 9)
    // stays; between b and c the router ID decides.
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    let c = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65001));
    for (peer, asn, med) in [(a, 65001, 5), (b, 65002, 9), (c, 65001, 1)] {
        let mut x = attrs(&[asn]);
        x.med = Some(med);
        announce(&mut rib, peer, P, x, "192.0.2.99");
    }
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn ebgp_beats_ibgp() {
    let mut rib = Rib::new(config());
    let i = add(&mut rib, info("192.0.2.10", "1.1.1.1", LOCAL_AS));
    let e = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    announce(&mut rib, i, P, attrs(&[65002]), "192.0.2.10");
    announce(&mut rib, e, P, attrs(&[65002]), "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(e));
}

#[test]
fn lowest_router_id_wins_using_originator_id() {
    let (mut rib, a, b) = two_ibgp();
    announce(&mut rib, a, P, attrs(&[65010]), "192.0.2.10");
    announce(&mut rib, b, P, attrs(&[65010]), "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(a));
    // b's route carries ORIGINATOR_ID 0.0.0.9, lower than a's 1.1.1.1.
    let mut reflected = attrs(&[65010]);
    reflected.originator_id = Some(v4("0.0.0.9"));
    announce(&mut rib, b, P, reflected, "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn shorter_cluster_list_wins() {
    let (mut rib, a, b) = two_ibgp();
    let mut long = attrs(&[65010]);
    long.originator_id = Some(v4("9.9.9.9"));
    long.cluster_list = vec![v4("7.7.7.7"), v4("8.8.8.8")];
    let mut short = long.clone();
    short.cluster_list.truncate(1);
    announce(&mut rib, a, P, long, "192.0.2.10");
    announce(&mut rib, b, P, short, "192.0.2.20");
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn lowest_peer_address_wins() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.20", "1.1.1.1", LOCAL_AS));
    let b = add(&mut rib, info("192.0.2.10", "1.1.1.1", LOCAL_AS));
    announce(&mut rib, a, P, attrs(&[65010]), "192.0.2.20");
    announce(&mut rib, b, P, attrs(&[65010]), "192.0.2.10");
    assert_eq!(best_peer(&rib, P), Some(b));
}

#[test]
fn loop_detection_honours_allowed_own_as_count() {
    let (mut rib, a, _) = two_ebgp();
    assert!(announce(&mut rib, a, P, attrs(&[65001, LOCAL_AS]), "192.0.2.10").is_empty());
    assert_eq!(rib.len(), 0);

    let mut rib = Rib::new(config());
    let mut allowing = info("192.0.2.10", "1.1.1.1", 65001);
    allowing.allow_own_as = 1;
    let a = add(&mut rib, allowing);
    announce(&mut rib, a, P, attrs(&[65001, LOCAL_AS]), "192.0.2.10");
    assert_eq!(best_peer(&rib, P), Some(a));
    // Twice is more than allowed: treated as a withdrawal.
    let changes = announce(
        &mut rib,
        a,
        P,
        attrs(&[65001, LOCAL_AS, 1, LOCAL_AS]),
        "192.0.2.10",
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].best, None);
}

#[test]
fn originator_and_cluster_loops_are_ignored() {
    let (mut rib, a, _) = two_ibgp();
    let mut mine = attrs(&[]);
    mine.originator_id = Some(config().router_id);
    assert!(announce(&mut rib, a, P, mine, "192.0.2.10").is_empty());
    let mut looped = attrs(&[]);
    looped.cluster_list = vec![v4("5.5.5.5"), config().router_id];
    assert!(announce(&mut rib, a, P, looped, "192.0.2.10").is_empty());

    let mut cfg = config();
    cfg.cluster_id = Some(v4("4.4.4.4"));
    let mut rib = Rib::new(cfg);
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", LOCAL_AS));
    let mut looped = attrs(&[]);
    looped.cluster_list = vec![v4("4.4.4.4")];
    assert!(announce(&mut rib, a, P, looped, "192.0.2.10").is_empty());
    let mut fine = attrs(&[]);
    fine.cluster_list = vec![config().router_id];
    assert_eq!(announce(&mut rib, a, P, fine, "192.0.2.10").len(), 1);
}

#[test]
fn only_real_changes_are_reported() {
    let (mut rib, a, b) = two_ebgp();
    assert_eq!(
        announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10").len(),
        1
    );
    // A worse path: best unchanged, nothing reported.
    assert!(announce(&mut rib, b, P, attrs(&[65002, 1]), "192.0.2.20").is_empty());
    // Same route again: nothing.
    assert!(announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10").is_empty());
    // Best withdrawn: the other takes over.
    let c = withdraw(&mut rib, a, P);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].best.as_ref().map(|p| p.peer), Some(b));
    let c = withdraw(&mut rib, b, P);
    assert_eq!(c[0].best, None);
    assert!(c[0].next_hops.is_empty());
    assert!(withdraw(&mut rib, b, P).is_empty());
}

#[test]
fn a_batch_reports_each_prefix_once_and_unknown_peers_fail() {
    let (mut rib, a, _) = two_ebgp();
    let changes = rib
        .update(vec![
            RibChange::Announce {
                peer: a,
                attrs: attrs(&[65001]),
                next_hop: ip("192.0.2.10"),
                nlri: vec![Nlri::new(net(P)), Nlri::new(net("198.51.100.0/24"))],
            },
            RibChange::Withdraw {
                peer: a,
                nlri: vec![Nlri::new(net("198.51.100.0/24"))],
            },
            RibChange::Announce {
                peer: a,
                attrs: attrs(&[65001, 7]),
                next_hop: ip("192.0.2.10"),
                nlri: vec![Nlri::new(net(P))],
            },
        ])
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].prefix, net(P));
    let bad = rib.update(vec![RibChange::Withdraw {
        peer: PeerIndex(99),
        nlri: vec![],
    }]);
    assert_eq!(bad, Err(RibError::UnknownPeer(PeerIndex(99))));
}

#[test]
fn peer_down_removes_its_paths() {
    let (mut rib, a, b) = two_ebgp();
    announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10");
    announce(
        &mut rib,
        a,
        "198.51.100.0/24",
        attrs(&[65001]),
        "192.0.2.10",
    );
    announce(&mut rib, b, P, attrs(&[65002, 1]), "192.0.2.20");
    let mut changes = rib.peer_down(a).unwrap();
    changes.sort_by_key(|c| c.prefix);
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].best, None); // 198.51.100.0/24
    assert_eq!(changes[1].best.as_ref().map(|p| p.peer), Some(b));
    assert_eq!(rib.adj_rib_in(a).count(), 0);
    drop(changes);
    rib.gc();
    assert_eq!(rib.interner().len(), 1);
}
