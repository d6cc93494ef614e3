//! Graceful restart: stale marking, refresh and sweep (RFC 4724 §4.2).

use super::*;
use crate::types::Family;

#[test]
fn stale_paths_are_kept_refreshed_and_swept() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    announce(
        &mut rib,
        a,
        "198.51.100.0/24",
        attrs(&[65001]),
        "192.0.2.10",
    );
    announce(
        &mut rib,
        a,
        "2001:db8:1::/48",
        attrs(&[65001]),
        "2001:db8::10",
    );

    assert_eq!(rib.mark_stale(a, Family::Ipv4Unicast).unwrap(), 2);
    // Still used while stale.
    assert_eq!(best_peer(&rib, "203.0.113.0/24"), Some(a));
    assert!(rib.best(&net("203.0.113.0/24")).unwrap().stale);
    assert!(!rib.best(&net("2001:db8:1::/48")).unwrap().stale);

    // Re-announced unchanged: no best change, mark cleared.
    assert!(announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10").is_empty());
    assert!(!rib.best(&net("203.0.113.0/24")).unwrap().stale);

    let changes = rib.sweep_stale(a, Family::Ipv4Unicast).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].prefix, net("198.51.100.0/24"));
    assert_eq!(changes[0].best, None);
    assert_eq!(rib.adj_rib_in(a).count(), 2);
    assert!(rib.sweep_stale(a, Family::Ipv6Unicast).unwrap().is_empty());
}

#[test]
fn a_path_announced_again_survives_the_drain_of_its_retired_peer() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    announce(
        &mut rib,
        a,
        "198.51.100.0/24",
        attrs(&[65001]),
        "192.0.2.10",
    );
    // The session drops; its paths are retired, then the peer comes back
    // and announces one of them again before the drain reaches it.
    let keys = rib.retire(a, None).unwrap();
    assert_eq!(keys.len(), 2);
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    rib.remove_stale(a, &keys);
    let changes = rib.take_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].prefix, net("198.51.100.0/24"));
    assert!(rib.best(&net("203.0.113.0/24")).is_some_and(|p| !p.stale));
    assert_eq!(rib.adj_in_len(a), 1);
}
