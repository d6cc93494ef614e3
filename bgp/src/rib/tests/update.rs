//! Turning a decoded UPDATE into RIB changes.

use super::*;
use crate::rib::changes_from_update;
use crate::types::Family;
use crate::wire::{MpReach, MpUnreach, Update};

const P: &str = "203.0.113.0/24";

#[test]
fn an_update_becomes_withdrawals_then_announcements() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let mut with_nh = attrs(&[65001]);
    with_nh.next_hop = Some(v4("192.0.2.10"));
    let update = Update {
        withdrawn: vec![Nlri::new(net("198.51.100.0/24"))],
        attributes: with_nh,
        nlri: vec![Nlri::new(net("203.0.113.0/24"))],
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: ip("2001:db8::10"),
            link_local_next_hop: None,
            nlri: vec![Nlri::new(net("2001:db8:1::/48"))],
        }),
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![],
        }),
    };
    let changes = changes_from_update(a, update);
    assert_eq!(changes.len(), 3);
    let best = rib.update(changes).unwrap();
    assert_eq!(best.len(), 2);
    let v6 = rib.best(&net("2001:db8:1::/48")).unwrap();
    assert_eq!(v6.next_hop, ip("2001:db8::10"));
    let v4best = rib.best(&net("203.0.113.0/24")).unwrap();
    assert_eq!(v4best.next_hop, ip("192.0.2.10"));
    // Both share one interned set: the next hop lives in the path.
    assert!(std::sync::Arc::ptr_eq(&v6.attrs, &v4best.attrs));
    assert_eq!(rib.interner().len(), 1);
}

fn announce_change(peer: PeerIndex, prefix: &str, path: &[Asn], nh: &str) -> RibChange {
    RibChange::Announce {
        peer,
        attrs: attrs(path),
        next_hop: ip(nh),
        nlri: vec![Nlri::new(net(prefix))],
    }
}

fn withdraw_change(peer: PeerIndex, prefix: &str) -> RibChange {
    RibChange::Withdraw {
        peer,
        nlri: vec![Nlri::new(net(prefix))],
    }
}

#[test]
fn staged_changes_are_decided_once_per_prefix_when_taken() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10");
    // Withdrawn and announced again (by another peer), a new prefix
    // announced, withdrawn and announced again, one announced and gone:
    // all in one batch.
    rib.stage(vec![
        withdraw_change(a, P),
        announce_change(b, P, &[65002], "192.0.2.20"),
        announce_change(a, "198.51.100.0/24", &[65001], "192.0.2.10"),
        withdraw_change(a, "198.51.100.0/24"),
        announce_change(b, "198.51.100.0/24", &[65002], "192.0.2.20"),
        announce_change(a, "192.0.2.128/25", &[65001], "192.0.2.10"),
    ])
    .unwrap();
    rib.stage(vec![withdraw_change(a, "192.0.2.128/25")])
        .unwrap();
    assert_eq!(rib.pending(), 3);
    let mut changes = rib.take_changes();
    changes.sort_by_key(|c| c.prefix);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].prefix, net("198.51.100.0/24"));
    assert_eq!(changes[0].previous, None);
    assert_eq!(changes[0].best.as_ref().map(|p| p.peer), Some(b));
    assert_eq!(changes[1].prefix, net(P));
    assert_eq!(changes[1].previous.as_ref().map(|p| p.peer), Some(a));
    assert_eq!(changes[1].best.as_ref().map(|p| p.peer), Some(b));
    // Taken: the next batch starts clean and sees the prefixes again.
    assert_eq!(rib.pending(), 0);
    let changes = withdraw(&mut rib, b, P);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].previous.as_ref().map(|p| p.peer), Some(b));
    assert_eq!(changes[0].best, None);
    assert_eq!(rib.adj_in_len(a), 0);
    assert_eq!(rib.adj_in_len(b), 1);
}

#[test]
fn an_identical_announcement_changes_nothing_and_a_different_one_does() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    assert_eq!(
        announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10").len(),
        1
    );
    // A route refresh re-sends the same route: nothing to decide or send.
    assert!(announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.10").is_empty());
    assert_eq!(rib.route_count(), 1);
    // A new next hop is a new route.
    let changes = announce(&mut rib, a, P, attrs(&[65001]), "192.0.2.11");
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].previous.as_ref().map(|p| p.next_hop),
        Some(ip("192.0.2.10"))
    );
    assert_eq!(changes[0].next_hops.to_vec(), vec![ip("192.0.2.11")]);
    assert_eq!(rib.route_count(), 1, "the old route was freed");
}

#[test]
fn add_path_ids_small_and_large_are_kept_replaced_and_removed() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let with_ids = |ids: &[u32], path: &[Asn]| RibChange::Announce {
        peer: a,
        attrs: attrs(path),
        next_hop: ip("192.0.2.10"),
        nlri: ids
            .iter()
            .map(|&id| Nlri::with_path_id(net(P), id))
            .collect(),
    };
    let ids_of = |rib: &Rib| {
        let mut ids: Vec<u32> = rib.paths(&net(P)).iter().map(|p| p.path_id).collect();
        ids.sort_unstable();
        ids
    };
    // A large path ID alone is listed, not packed.
    rib.update(vec![with_ids(&[70_000], &[65001])]).unwrap();
    assert_eq!(ids_of(&rib), [70_000]);
    assert_eq!(rib.listed_prefixes(), 1);
    rib.update(vec![with_ids(&[1, 3], &[65001])]).unwrap();
    assert_eq!(ids_of(&rib), [1, 3, 70_000]);
    assert_eq!(rib.adj_in_len(a), 3);
    // Re-announced with a new AS path: replaced in place, not added.
    rib.update(vec![with_ids(&[70_000], &[65001, 9])]).unwrap();
    assert_eq!(ids_of(&rib), [1, 3, 70_000]);
    let long = rib.paths(&net(P));
    let long = long.iter().find(|p| p.path_id == 70_000).unwrap();
    assert_eq!(long.attrs.as_path.as_ref().unwrap().length(), 2);
    let gone = |ids: &[u32]| RibChange::Withdraw {
        peer: a,
        nlri: ids
            .iter()
            .map(|&id| Nlri::with_path_id(net(P), id))
            .collect(),
    };
    rib.update(vec![gone(&[70_000, 1])]).unwrap();
    assert_eq!(ids_of(&rib), [3]);
    assert_eq!(rib.listed_prefixes(), 0, "one small ID left: packed again");
    rib.update(vec![gone(&[3])]).unwrap();
    assert!(rib.paths(&net(P)).is_empty());
    assert_eq!(rib.adj_in_len(a), 0);
    assert_eq!(rib.listed_prefixes(), 0);
}
