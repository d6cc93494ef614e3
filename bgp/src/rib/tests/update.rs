//! Turning a decoded UPDATE into RIB changes.

use super::*;
use crate::rib::changes_from_update;
use crate::types::Family;
use crate::wire::{MpReach, MpUnreach, Update};

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
    let changes = changes_from_update(a, &update);
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
