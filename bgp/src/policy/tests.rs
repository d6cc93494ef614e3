//! Policy tests: each condition and each action.

use std::sync::Arc;

use ipnet::IpNet;

use super::*;
use crate::rib::{AttrInterner, PeerKind, RouteSource};
use crate::types::Family;
use crate::wire::{AsPath, AsSegment, Community, LargeCommunity, SegmentKind};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ctx() -> PolicyContext {
    PolicyContext {
        local_as: 65000,
        peer_kind: PeerKind::Ebgp,
        source: RouteSource::Ebgp,
        reflected: false,
    }
}

fn base() -> PathAttributes {
    PathAttributes {
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65001, 65002, 65003],
            }],
        }),
        communities: vec![Community(0x0001_0002)],
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2,
        }],
        ..Default::default()
    }
}

/// Whether a policy "accept if `cond`, else reject" accepts.
fn matches(cond: Condition, prefix: &str, ctx: &PolicyContext) -> bool {
    let policy = Policy::new(
        vec![Rule::new(vec![cond], vec![Action::Accept])],
        Verdict::Reject,
    );
    let mut t = AttrInterner::new();
    let attrs = t.intern(base());
    policy.apply(&net(prefix), &attrs, ctx, &mut t) != Outcome::Rejected
}

/// Run `actions` on the base attributes.
fn run(actions: Vec<Action>) -> (Attrs, Attrs, bool, AttrInterner) {
    let policy = Policy::new(vec![Rule::new(vec![], actions)], Verdict::Accept);
    let mut t = AttrInterner::new();
    let input = t.intern(base());
    match policy.apply(&net("10.0.0.0/24"), &input, &ctx(), &mut t) {
        Outcome::Accepted {
            attrs,
            next_hop_self,
        } => (input, attrs, next_hop_self, t),
        Outcome::Rejected => panic!("rejected"),
    }
}

#[test]
fn prefix_ranges() {
    let c = ctx();
    let exact = PrefixMatch::exact(net("10.0.0.0/16"));
    assert!(exact.matches(&net("10.0.0.0/16")));
    assert!(!exact.matches(&net("10.0.1.0/24")));
    let longer = PrefixMatch::orlonger(net("10.0.0.0/16"));
    assert!(longer.matches(&net("10.0.1.0/24")));
    assert!(!longer.matches(&net("10.1.0.0/24")));
    assert!(!longer.matches(&net("10.0.0.0/8")));
    let range = PrefixMatch {
        net: net("10.0.0.0/8"),
        ge: Some(24),
        le: Some(26),
    };
    assert!(matches(Condition::Prefix(range), "10.9.9.0/24", &c));
    assert!(matches(Condition::Prefix(range), "10.9.9.64/26", &c));
    assert!(!matches(Condition::Prefix(range), "10.9.9.0/27", &c));
    assert!(!matches(Condition::Prefix(range), "10.9.0.0/16", &c));
    assert!(!matches(Condition::Prefix(range), "2001:db8::/32", &c));
    let le_only = PrefixMatch {
        net: net("10.0.0.0/8"),
        ge: None,
        le: Some(16),
    };
    assert!(le_only.matches(&net("10.0.0.0/8")) && le_only.matches(&net("10.1.0.0/16")));
    assert!(!le_only.matches(&net("10.1.1.0/24")));
    let inverted = PrefixMatch {
        net: net("10.0.0.0/8"),
        ge: Some(30),
        le: Some(20),
    };
    assert!(!inverted.matches(&net("10.0.0.0/24")));
}

#[test]
fn family_and_communities() {
    let c = ctx();
    assert!(matches(
        Condition::Family(Family::Ipv4Unicast),
        "10.0.0.0/24",
        &c
    ));
    assert!(!matches(
        Condition::Family(Family::Ipv6Unicast),
        "10.0.0.0/24",
        &c
    ));
    assert!(matches(
        Condition::Community(Community(0x0001_0002)),
        "10.0.0.0/24",
        &c
    ));
    assert!(!matches(
        Condition::Community(Community(7)),
        "10.0.0.0/24",
        &c
    ));
    let lc = LargeCommunity {
        global: 65001,
        local1: 1,
        local2: 2,
    };
    assert!(matches(Condition::LargeCommunity(lc), "10.0.0.0/24", &c));
    let other = LargeCommunity { local2: 3, ..lc };
    assert!(!matches(
        Condition::LargeCommunity(other),
        "10.0.0.0/24",
        &c
    ));
}

#[test]
fn as_path_conditions() {
    let c = ctx();
    let p = "10.0.0.0/24";
    assert!(matches(Condition::AsPathContains(65002), p, &c));
    assert!(!matches(Condition::AsPathContains(65009), p, &c));
    assert!(matches(Condition::OriginAs(65003), p, &c));
    assert!(!matches(Condition::OriginAs(65001), p, &c));
    assert!(matches(Condition::AsPathLen { min: 3, max: 3 }, p, &c));
    assert!(!matches(Condition::AsPathLen { min: 0, max: 2 }, p, &c));
}

#[test]
fn session_and_source_conditions() {
    let mut c = ctx();
    let p = "10.0.0.0/24";
    assert!(matches(Condition::PeerKind(PeerKind::Ebgp), p, &c));
    assert!(!matches(Condition::PeerKind(PeerKind::Ibgp), p, &c));
    assert!(matches(Condition::Source(RouteSource::Ebgp), p, &c));
    assert!(!matches(Condition::Source(RouteSource::Local), p, &c));
    assert!(!matches(Condition::Reflected, p, &c));
    c.reflected = true;
    assert!(matches(Condition::Reflected, p, &c));
}

#[test]
fn accept_reject_and_defaults() {
    let mut t = AttrInterner::new();
    let a = t.intern(base());
    let p = net("10.0.0.0/24");
    assert_eq!(
        Policy::reject_all().apply(&p, &a, &ctx(), &mut t),
        Outcome::Rejected
    );
    match Policy::accept_all().apply(&p, &a, &ctx(), &mut t) {
        Outcome::Accepted { attrs, .. } => assert!(Arc::ptr_eq(&attrs, &a)),
        Outcome::Rejected => panic!("rejected"),
    }
    // First terminal rule wins; non-terminal rules fall through.
    let policy = Policy::new(
        vec![
            Rule::new(vec![], vec![Action::SetMed(1)]),
            Rule::new(
                vec![Condition::Prefix(PrefixMatch::orlonger(net("10.0.0.0/8")))],
                vec![Action::Reject],
            ),
            Rule::new(vec![], vec![Action::Accept]),
        ],
        Verdict::Accept,
    );
    assert_eq!(policy.apply(&p, &a, &ctx(), &mut t), Outcome::Rejected);
    match policy.apply(&net("192.168.0.0/24"), &a, &ctx(), &mut t) {
        Outcome::Accepted { attrs, .. } => assert_eq!(attrs.med, Some(1)),
        Outcome::Rejected => panic!("rejected"),
    }
    // Conditions see earlier modifications.
    let chained = Policy::new(
        vec![
            Rule::new(vec![], vec![Action::AddCommunity(Community(9))]),
            Rule::new(
                vec![Condition::Community(Community(9))],
                vec![Action::Reject],
            ),
        ],
        Verdict::Accept,
    );
    assert_eq!(chained.apply(&p, &a, &ctx(), &mut t), Outcome::Rejected);
}

#[test]
fn community_actions() {
    let (input, out, _, _) = run(vec![
        Action::AddCommunity(Community(5)),
        Action::AddCommunity(Community(5)),
        Action::RemoveCommunity(Community(0x0001_0002)),
    ]);
    assert_eq!(out.communities, vec![Community(5)]);
    assert_eq!(
        input.communities,
        vec![Community(0x0001_0002)],
        "copy-on-write"
    );
    let lc = LargeCommunity {
        global: 1,
        local1: 2,
        local2: 3,
    };
    let (_, out, _, _) = run(vec![Action::AddLargeCommunity(lc)]);
    assert_eq!(out.large_communities.len(), 2);
    assert_eq!(out.large_communities[1], lc);
}

#[test]
fn path_and_preference_actions() {
    let (_, out, nhs, _) = run(vec![
        Action::Prepend(2),
        Action::SetLocalPref(300),
        Action::SetMed(20),
        Action::NextHopSelf,
    ]);
    assert_eq!(
        out.as_path.as_ref().unwrap().segments[0].asns,
        vec![65000, 65000, 65001, 65002, 65003]
    );
    assert_eq!(out.local_pref, Some(300));
    assert_eq!(out.med, Some(20));
    assert!(nhs);
}

#[test]
fn modifications_are_reinterned() {
    let (input, out, _, mut t) = run(vec![Action::SetMed(20)]);
    assert!(!Arc::ptr_eq(&input, &out));
    assert_eq!(t.len(), 2);
    // The same modification elsewhere lands on the same handle.
    let mut modified = base();
    modified.med = Some(20);
    assert!(Arc::ptr_eq(&t.intern(modified), &out));
    // A no-op modification keeps the original handle.
    let (input, out, _, _) = run(vec![Action::AddCommunity(Community(0x0001_0002))]);
    assert!(Arc::ptr_eq(&input, &out));
}
