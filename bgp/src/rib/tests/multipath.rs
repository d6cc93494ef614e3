//! Multipath: equal paths up to the router-ID tie-break, one kind only.

use super::*;

const P: &str = "203.0.113.0/24";

fn multipath_rib() -> Rib {
    let mut cfg = config();
    cfg.multipath = true;
    Rib::new(cfg)
}

#[test]
fn equal_ebgp_paths_give_ecmp_next_hops() {
    let mut rib = multipath_rib();
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    let c = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65003));
    let d = add(&mut rib, info("192.0.2.40", "0.0.0.4", 65004));
    announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10");
    let changes = announce(&mut rib, b, P, attrs(&[65002]), "192.0.2.20");
    // Best unchanged but the multipath set grew: reported.
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].next_hops.to_vec(),
        vec![ip("192.0.2.10"), ip("192.0.2.20")]
    );
    // Longer AS path: not equal, not added, nothing reported.
    assert!(announce(&mut rib, c, P, attrs(&[65003, 1]), "192.0.2.30").is_empty());
    // Same next hop as a: not duplicated, but d is best by router ID.
    let changes = announce(&mut rib, d, P, attrs(&[65004]), "192.0.2.10");
    assert_eq!(changes[0].best.as_ref().map(|p| p.peer), Some(d));
    assert_eq!(
        changes[0].next_hops.to_vec(),
        vec![ip("192.0.2.10"), ip("192.0.2.20")]
    );
}

#[test]
fn multipath_does_not_mix_ebgp_and_ibgp() {
    let mut rib = multipath_rib();
    let e = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let i = add(&mut rib, info("192.0.2.20", "2.2.2.2", LOCAL_AS));
    let i2 = add(&mut rib, info("192.0.2.30", "3.3.3.3", LOCAL_AS));
    announce(&mut rib, e, P, attrs(&[65001]), "192.0.2.10");
    announce(&mut rib, i, P, attrs(&[65001]), "192.0.2.20");
    announce(&mut rib, i2, P, attrs(&[65001]), "192.0.2.30");
    assert_eq!(
        rib.selection(&net(P)).next_hops.to_vec(),
        vec![ip("192.0.2.10")]
    );
    // Without the eBGP path the two iBGP paths share.
    let changes = withdraw(&mut rib, e, P);
    assert_eq!(
        changes[0].next_hops.to_vec(),
        vec![ip("192.0.2.20"), ip("192.0.2.30")]
    );
}

#[test]
fn multipath_off_reports_only_the_best_next_hop() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10");
    assert!(announce(&mut rib, b, P, attrs(&[65002]), "192.0.2.20").is_empty());
    assert_eq!(
        rib.selection(&net(P)).next_hops.to_vec(),
        vec![ip("192.0.2.10")]
    );
}

#[test]
fn a_retired_peer_leaves_the_multipath_set_when_drained() {
    let mut rib = multipath_rib();
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10");
    announce(&mut rib, b, P, attrs(&[65002]), "192.0.2.20");
    let keys = rib.retire(a, None).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        rib.take_changes().is_empty(),
        "retired paths stay until removed"
    );
    rib.remove_stale(a, &keys);
    rib.forget_peer(a);
    let changes = rib.take_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].next_hops.to_vec(), vec![ip("192.0.2.20")]);
    assert_eq!(changes[0].best.as_ref().map(|p| p.peer), Some(b));
}

#[test]
fn a_prefix_new_in_a_batch_is_decided_over_every_path_it_got_in_it() {
    let mut rib = multipath_rib();
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    let c = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65003));
    let one = |peer, path: &[Asn], nh: &str| RibChange::Announce {
        peer,
        attrs: attrs(path),
        next_hop: ip(nh),
        nlri: vec![Nlri::new(net(P))],
    };
    // Added by a, then equal from b and longer from c, in one batch: one
    // decision, over all three paths.
    let changes = rib
        .update(vec![
            one(c, &[65003, 1], "192.0.2.30"),
            one(b, &[65002], "192.0.2.20"),
            one(a, &[65001], "192.0.2.10"),
        ])
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].previous, None);
    assert_eq!(changes[0].best.as_ref().map(|p| p.peer), Some(a));
    assert_eq!(
        changes[0].next_hops.to_vec(),
        vec![ip("192.0.2.10"), ip("192.0.2.20")]
    );
    assert_eq!(rib.best(&net(P)).map(|p| p.peer), Some(a));
}
