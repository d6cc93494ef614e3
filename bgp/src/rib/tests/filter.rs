//! An import policy that is a route filter (accept or reject by prefix):
//! the rejected prefixes of an announcement are not in the table (and
//! what the peer had for them goes), the others are, in bulk or one at a
//! time, exactly as under a policy accepting them all.

use super::*;
use crate::policy::{Condition, PrefixMatch, Rule, Verdict};

fn v4_prefix(i: u32) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i << 8))), 24).unwrap()
}

/// Rejects the default route and 11.0.0.0/16 and longer.
fn filter() -> Policy {
    Policy::new(
        vec![
            Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(net(
                "0.0.0.0/0",
            )))]),
            Rule::reject(vec![Condition::Prefix(PrefixMatch::orlonger(net(
                "11.0.0.0/16",
            )))]),
        ],
        Verdict::Accept,
    )
}

fn announcement(peer: PeerIndex, nlri: Vec<Nlri>) -> RibChange {
    RibChange::Announce {
        peer,
        attrs: attrs(&[65001]),
        next_hop: ip("192.0.2.10"),
        nlri,
    }
}

#[test]
fn rejected_prefixes_stay_out_in_bulk_and_one_by_one() {
    for n in [3u32, 20_000] {
        let mut rib = Rib::new(config());
        let a = rib.add_peer(
            info("192.0.2.10", "1.1.1.1", 65001),
            filter(),
            Policy::accept_all(),
        );
        let mut nlri: Vec<Nlri> = (0..n).map(|i| Nlri::new(v4_prefix(i))).collect();
        nlri.push(Nlri::new(net("0.0.0.0/0")));
        rib.update(vec![announcement(a, nlri)]).unwrap();
        // 11.0.0.0/24 .. 11.0.255.0/24 are inside 11.0.0.0/16.
        let rejected = n.min(256) as usize;
        assert_eq!(rib.len(), n as usize - rejected, "{n} prefixes");
        assert_eq!(rib.adj_in_len(a), n as usize - rejected);
        assert!(rib.best(&net("0.0.0.0/0")).is_none());
        assert!(rib.best(&v4_prefix(0)).is_none());
        if n > 256 {
            assert_eq!(best_peer(&rib, &v4_prefix(256).to_string()), Some(a));
        }
    }
}

#[test]
fn a_route_the_new_filter_rejects_goes_when_it_is_sent_again() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let routes = || vec![Nlri::new(net("0.0.0.0/0")), Nlri::new(net("12.0.0.0/8"))];
    rib.update(vec![announcement(a, routes())]).unwrap();
    assert_eq!(rib.len(), 2);
    // The filter changes; the peer sends its routes again (a route refresh).
    rib.set_policies(a, filter(), Policy::accept_all()).unwrap();
    let changes = rib.update(vec![announcement(a, routes())]).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].prefix, net("0.0.0.0/0"));
    assert!(changes[0].best.is_none());
    assert_eq!(rib.len(), 1);
    assert_eq!(rib.adj_in_len(a), 1);
    // And back: accepted again when sent again.
    rib.set_policies(a, Policy::accept_all(), Policy::accept_all())
        .unwrap();
    rib.update(vec![announcement(a, routes())]).unwrap();
    assert_eq!(rib.len(), 2);
}
