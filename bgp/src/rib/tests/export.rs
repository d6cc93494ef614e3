//! Adj-RIB-Out: reflection rules, split horizon, export transformations,
//! diffs and the default export policy.

use std::net::IpAddr;

use super::*;
use crate::policy::{Action, Condition, Rule, Verdict};
use crate::rib::{AdjRibOut, Attrs, ExportCache};
use crate::wire::Community;

const P: &str = "203.0.113.0/24";

struct Fabric {
    rib: Rib,
    c1: PeerIndex,
    c2: PeerIndex,
    n1: PeerIndex,
    n2: PeerIndex,
    e1: PeerIndex,
    e2: PeerIndex,
}

/// A reflector with two clients, two non-clients and two eBGP peers.
fn fabric() -> Fabric {
    let mut rib = Rib::new(config());
    let client = |addr, id| {
        let mut i = info(addr, id, LOCAL_AS);
        i.rr_client = true;
        i
    };
    let (c1i, c2i) = (
        client("192.0.2.11", "1.0.0.1"),
        client("192.0.2.12", "1.0.0.2"),
    );
    let c1 = add(&mut rib, c1i);
    let c2 = add(&mut rib, c2i);
    let n1 = add(&mut rib, info("192.0.2.21", "2.0.0.1", LOCAL_AS));
    let n2 = add(&mut rib, info("192.0.2.22", "2.0.0.2", LOCAL_AS));
    let e1 = add(&mut rib, info("192.0.2.31", "3.0.0.1", 65001));
    let e2 = add(&mut rib, info("192.0.2.32", "3.0.0.2", 65002));
    Fabric {
        rib,
        c1,
        c2,
        n1,
        n2,
        e1,
        e2,
    }
}

fn export(rib: &mut Rib, to: PeerIndex, prefix: &str) -> Option<(Attrs, IpAddr)> {
    let best = rib.best(&net(prefix))?;
    rib.export_route(to, &net(prefix), &best, &mut ExportCache::default())
}

#[test]
fn reflection_rules_table() {
    // (learned from, sent to, advertised?)
    let f = fabric();
    let cases = [
        (f.c1, f.c2, true),  // client -> other client
        (f.c1, f.n1, true),  // client -> non-client
        (f.c1, f.c1, false), // never back to the sender
        (f.n1, f.c1, true),  // non-client -> client
        (f.n1, f.n2, false), // non-client -> non-client: not reflected
        (f.e1, f.c1, true),  // eBGP -> all
        (f.e1, f.n1, true),
        (f.e1, f.e2, true),
        (f.c1, f.e1, true), // iBGP -> eBGP
    ];
    for (from, to, expected) in cases {
        let mut f = fabric();
        let nh = f.rib.peer(from).unwrap().address.to_string();
        announce(&mut f.rib, from, P, attrs(&[65009]), &nh);
        let got = export(&mut f.rib, to, P);
        assert_eq!(got.is_some(), expected, "{from:?} -> {to:?}");
    }
}

#[test]
fn reflected_routes_get_originator_and_cluster() {
    let mut f = fabric();
    announce(&mut f.rib, f.c1, P, attrs(&[]), "192.0.2.11");
    let (a, nh) = export(&mut f.rib, f.c2, P).unwrap();
    assert_eq!(a.originator_id, Some(v4("1.0.0.1")));
    assert_eq!(a.cluster_list, vec![config().router_id]);
    assert_eq!(a.local_pref, Some(100));
    assert_eq!(nh, ip("192.0.2.11"), "next hop kept when reflecting");
    assert_eq!(a.as_path.as_ref().unwrap().segments, vec![]);

    // An existing ORIGINATOR_ID is kept, the cluster ID prepended.
    let mut f = fabric();
    let mut x = attrs(&[]);
    x.originator_id = Some(v4("9.9.9.9"));
    x.cluster_list = vec![v4("8.8.8.8")];
    announce(&mut f.rib, f.n1, P, x, "192.0.2.21");
    let (a, _) = export(&mut f.rib, f.c1, P).unwrap();
    assert_eq!(a.originator_id, Some(v4("9.9.9.9")));
    assert_eq!(a.cluster_list, vec![config().router_id, v4("8.8.8.8")]);
    // Not back to the originator (router ID 9.9.9.9).
    let mut f2 = fabric();
    let mut x = attrs(&[]);
    x.originator_id = Some(v4("1.0.0.2"));
    announce(&mut f2.rib, f2.c1, P, x, "192.0.2.11");
    assert!(export(&mut f2.rib, f2.c2, P).is_none());
}

#[test]
fn ibgp_split_horizon_without_reflection() {
    let mut rib = Rib::new(config());
    let i1 = add(&mut rib, info("192.0.2.10", "1.1.1.1", LOCAL_AS));
    let i2 = add(&mut rib, info("192.0.2.20", "2.2.2.2", LOCAL_AS));
    let e = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65003));
    announce(&mut rib, i1, P, attrs(&[65009]), "192.0.2.10");
    assert!(export(&mut rib, i2, P).is_none());
    assert!(export(&mut rib, e, P).is_some());
}

#[test]
fn ebgp_export_transformations() {
    let mut f = fabric();
    let mut x = attrs(&[65009]);
    x.local_pref = Some(200);
    x.med = Some(5);
    x.originator_id = Some(v4("9.9.9.9"));
    x.cluster_list = vec![v4("8.8.8.8")];
    announce(&mut f.rib, f.n1, P, x, "10.9.9.9");
    let (a, nh) = export(&mut f.rib, f.e1, P).unwrap();
    assert_eq!(a.as_path, attrs(&[LOCAL_AS, 65009]).as_path);
    assert_eq!(nh, ip("192.0.2.1"));
    assert_eq!(a.local_pref, None);
    assert_eq!(a.med, None, "MED from another AS is not passed on");
    assert_eq!(a.originator_id, None);
    assert!(a.cluster_list.is_empty());
    assert_eq!(a.next_hop, None, "next hop travels beside the attributes");

    // Our own MED goes out; IPv6 uses the session's IPv6 address.
    let mut own = attrs(&[]);
    own.med = Some(7);
    f.rib
        .update(vec![RibChange::Originate {
            prefix: net("2001:db8:5::/48"),
            attrs: own,
            next_hop: None,
        }])
        .unwrap();
    let (a, nh) = export(&mut f.rib, f.e2, "2001:db8:5::/48").unwrap();
    assert_eq!(a.med, Some(7));
    assert_eq!(nh, ip("2001:db8::1"));
    assert_eq!(a.as_path, attrs(&[LOCAL_AS]).as_path);
}

#[test]
fn ibgp_export_next_hop_and_local_pref() {
    let mut rib = Rib::new(config());
    let e = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let i = add(&mut rib, info("192.0.2.20", "2.2.2.2", LOCAL_AS));
    let mut nhs = info("192.0.2.30", "3.3.3.3", LOCAL_AS);
    nhs.next_hop_self = true;
    let i_nhs = add(&mut rib, nhs);
    announce(&mut rib, e, P, attrs(&[65001]), "192.0.2.10");
    let (a, nh) = export(&mut rib, i, P).unwrap();
    assert_eq!((a.local_pref, nh), (Some(100), ip("192.0.2.10")));
    assert_eq!(
        a.as_path,
        attrs(&[65001]).as_path,
        "no prepend inside the AS"
    );
    let (_, nh) = export(&mut rib, i_nhs, P).unwrap();
    assert_eq!(nh, ip("192.0.2.1"));
    // Our own route: we are the next hop.
    originate(&mut rib, "198.51.100.0/24");
    let (_, nh) = export(&mut rib, i, "198.51.100.0/24").unwrap();
    assert_eq!(nh, ip("192.0.2.1"));
}

#[test]
fn adj_rib_out_diffs_and_groups() {
    let mut f = fabric();
    let mut out = AdjRibOut::new(f.e2);
    let decided = decide(
        &mut f.rib,
        vec![RibChange::Announce {
            peer: f.e1,
            attrs: attrs(&[65001]),
            next_hop: ip("192.0.2.31"),
            nlri: vec![
                Nlri::new(net("203.0.113.0/24")),
                Nlri::new(net("198.51.100.0/24")),
            ],
        }],
    );
    let diff = out.apply(&mut f.rib, &decided);
    assert!(diff.withdrawn.is_empty());
    assert_eq!(diff.announce.len(), 1, "one group for shared attributes");
    assert_eq!(diff.announce[0].prefixes.len(), 2);
    assert_eq!(diff.announce[0].next_hop, ip("192.0.2.1"));
    assert_eq!(out.len(), 2);
    // The sender's own Adj-RIB-Out gets nothing.
    let mut back = AdjRibOut::new(f.e1);
    assert!(back.apply(&mut f.rib, &decided).is_empty());
    f.rib.settle(decided);
    // Withdrawal: the route the prefix had is gone from the table, and
    // still readable for the Adj-RIB-Out until the RIB settles.
    let withdrawal = RibChange::Withdraw {
        peer: f.e1,
        nlri: vec![Nlri::new(net("198.51.100.0/24"))],
    };
    let decided = decide(&mut f.rib, vec![withdrawal]);
    let diff = out.apply(&mut f.rib, &decided);
    f.rib.settle(decided);
    assert_eq!(diff.withdrawn, vec![net("198.51.100.0/24")]);
    assert!(diff.announce.is_empty());
    // A full sync of a fresh Adj-RIB-Out announces the Loc-RIB.
    let mut fresh = AdjRibOut::new(f.n1);
    let diff = fresh.sync(&mut f.rib, None);
    assert_eq!(diff.announce.len(), 1);
    assert_eq!(diff.announce[0].prefixes, vec![net(P)]);
    out.clear(&mut f.rib);
    fresh.clear(&mut f.rib);
    assert!(out.is_empty());
}

#[test]
fn default_node_export_policy_sends_only_local_and_reflected() {
    let mut rib = Rib::new(config());
    let e = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let mut ci = info("192.0.2.20", "2.0.0.1", LOCAL_AS);
    ci.rr_client = true;
    let c = rib.add_peer(ci, Policy::accept_all(), Policy::node_default_export());
    let tor = rib.add_peer(
        info("192.0.2.30", "3.3.3.3", 65003),
        Policy::accept_all(),
        Policy::node_default_export(),
    );
    let n = rib.add_peer(
        info("192.0.2.40", "4.4.4.4", LOCAL_AS),
        Policy::accept_all(),
        Policy::node_default_export(),
    );
    announce(&mut rib, e, P, attrs(&[65001]), "192.0.2.10");
    assert!(
        export(&mut rib, tor, P).is_none(),
        "learned route not re-exported"
    );
    assert!(export(&mut rib, c, P).is_none());
    originate(&mut rib, "10.244.1.0/26");
    assert!(export(&mut rib, tor, "10.244.1.0/26").is_some());
    announce(&mut rib, c, "10.244.2.0/26", attrs(&[]), "192.0.2.20");
    assert!(export(&mut rib, n, "10.244.2.0/26").is_some(), "reflected");
    assert!(export(&mut rib, tor, "10.244.2.0/26").is_none());
}

#[test]
fn export_policy_modifies_and_rejects() {
    let mut rib = Rib::new(config());
    let e = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let policy = Policy::new(
        vec![
            Rule::new(
                vec![Condition::Community(Community(0xFFFF_FF01))],
                vec![Action::Reject],
            ),
            Rule::new(
                vec![],
                vec![Action::Prepend(2), Action::SetMed(42), Action::Accept],
            ),
        ],
        Verdict::Reject,
    );
    let tor = rib.add_peer(
        info("192.0.2.30", "3.3.3.3", 65003),
        Policy::accept_all(),
        policy,
    );
    announce(&mut rib, e, P, attrs(&[65001]), "192.0.2.10");
    let (a, _) = export(&mut rib, tor, P).unwrap();
    assert_eq!(
        a.as_path,
        attrs(&[LOCAL_AS, LOCAL_AS, LOCAL_AS, 65001]).as_path
    );
    assert_eq!(a.med, Some(42), "policy MED survives the MED strip");
    let mut tagged = attrs(&[65001]);
    tagged.communities = vec![Community(0xFFFF_FF01)];
    announce(&mut rib, e, P, tagged, "192.0.2.10");
    assert!(export(&mut rib, tor, P).is_none());
}

#[test]
fn an_export_policy_change_sends_only_the_difference() {
    let mut rib = Rib::new(config());
    let e = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let tor = add(&mut rib, info("192.0.2.30", "3.3.3.3", 65003));
    announce(&mut rib, e, P, attrs(&[65001]), "192.0.2.10");
    let mut tagged = attrs(&[65001]);
    tagged.communities = vec![Community(0xFFFF_FF01)];
    announce(&mut rib, e, "198.51.100.0/24", tagged, "192.0.2.10");
    let mut out = AdjRibOut::new(tor);
    let first = out.sync(&mut rib, None);
    let sent: usize = first.announce.iter().map(|g| g.prefixes.len()).sum();
    assert_eq!(sent, 2);
    assert_eq!(out.len(), 2);
    // Reject the tagged prefix and prepend to the rest from now on.
    let policy = Policy::new(
        vec![
            Rule::new(
                vec![Condition::Community(Community(0xFFFF_FF01))],
                vec![Action::Reject],
            ),
            Rule::new(vec![], vec![Action::Prepend(1), Action::Accept]),
        ],
        Verdict::Reject,
    );
    let old = rib.set_policies(tor, Policy::accept_all(), policy).unwrap();
    let diff = out.sync(&mut rib, Some(&old));
    assert_eq!(diff.withdrawn, vec![net("198.51.100.0/24")]);
    assert_eq!(diff.announce.len(), 1);
    assert_eq!(diff.announce[0].prefixes, vec![net(P)]);
    assert_eq!(out.len(), 1);
    // Nothing changed since: a resync under the same policy sends nothing.
    let same = rib.set_policies(tor, Policy::accept_all(), old).unwrap();
    rib.set_policies(tor, Policy::accept_all(), same.clone())
        .unwrap();
    assert!(out.sync(&mut rib, Some(&same)).is_empty());
}
