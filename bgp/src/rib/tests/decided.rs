//! Decisions by reference: what they name stays readable until the RIB
//! settles, and settling never frees what staged changes still need.

use super::*;

#[test]
fn a_decision_reads_its_dropped_route_until_the_rib_settles() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    let withdrawal = RibChange::Withdraw {
        peer: a,
        nlri: vec![Nlri::new(net("203.0.113.0/24"))],
    };
    rib.stage(vec![withdrawal]).unwrap();
    // Staged, not taken: settling (earlier decisions) now would free the
    // route the coming decision names, so it frees nothing.
    rib.settle(Decided::default());
    assert_eq!(rib.route_count(), 1);
    let decided = rib.take_decided();
    assert_eq!(decided.len(), 1);
    let d = decided.iter().next().unwrap();
    assert_eq!((d.prefix, d.best), (net("203.0.113.0/24"), None));
    let previous = rib.route(d.previous.unwrap());
    assert_eq!((previous.peer, previous.next_hop), (a, ip("192.0.2.10")));
    assert_eq!(
        rib.best_changes(&decided)[0]
            .previous
            .as_ref()
            .unwrap()
            .peer,
        a
    );
    rib.settle(decided);
    assert_eq!(rib.route_count(), 0);
    rib.gc();
    assert_eq!(rib.interner().len(), 0);
}

#[test]
fn a_forgotten_peer_stays_known_until_its_removals_are_settled() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    let keys = rib.retire(a, None).unwrap();
    rib.remove_stale(a, &keys);
    rib.forget_peer(a);
    let decided = rib.take_decided();
    assert_eq!(decided.len(), 1);
    // Advertising the withdrawal still needs to know where the route came from.
    assert!(rib.peer(a).is_some());
    rib.settle(decided);
    assert!(rib.peer(a).is_none());
}

#[test]
fn multipath_next_hops_travel_with_the_decision() {
    let mut cfg = config();
    cfg.multipath = true;
    let mut rib = Rib::new(cfg);
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    let decided = decide(
        &mut rib,
        vec![RibChange::Announce {
            peer: b,
            attrs: attrs(&[65001]),
            next_hop: ip("192.0.2.20"),
            nlri: vec![Nlri::new(net("203.0.113.0/24"))],
        }],
    );
    // Same best path, one more next hop: a change, with both hops.
    assert_eq!(decided.len(), 1);
    let d = *decided.iter().next().unwrap();
    assert_eq!(d.previous, d.best);
    let hops = decided.multipath_hops(&d).unwrap();
    assert_eq!(hops.as_slice(), [ip("192.0.2.10"), ip("192.0.2.20")]);
    assert_eq!(rib.best_changes(&decided)[0].next_hops, *hops);
    rib.settle(decided);
}
