//! Tests of decide-only policies (route filters): the new conditions, and
//! the precomputed index against trying every rule in turn.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use super::*;
use crate::rib::{AttrInterner, PeerKind, RouteSource};
use crate::types::Family;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ctx(source: RouteSource, peer_kind: PeerKind) -> PolicyContext {
    PolicyContext {
        local_as: 64512,
        peer_kind,
        source,
        reflected: false,
    }
}

fn learned() -> PolicyContext {
    ctx(RouteSource::Ebgp, PeerKind::Ebgp)
}

/// The verdict by trying each rule in turn (the definition).
fn in_turn(policy: &Policy, prefix: &IpNet, attrs: &PathAttributes, c: &PolicyContext) -> Verdict {
    policy
        .rules()
        .iter()
        .find(|r| r.conditions.iter().all(|x| x.matches(prefix, attrs, c)))
        .and_then(Rule::verdict)
        .unwrap_or(policy.default_verdict())
}

fn verdict(policy: &Policy, prefix: &str, c: &PolicyContext) -> Verdict {
    let attrs = PathAttributes::default();
    let v = policy
        .decide(&net(prefix), &attrs, c)
        .expect("decides only");
    assert_eq!(v, in_turn(policy, &net(prefix), &attrs, c), "{prefix}");
    v
}

#[test]
fn a_filter_is_indexed_and_a_modifying_policy_is_not() {
    let filter = Policy::new(
        vec![Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(
            net("0.0.0.0/0"),
        ))])],
        Verdict::Accept,
    );
    assert!(filter.decides_only() && filter.by_prefix());
    let modifying = Policy::new(
        vec![Rule::new(vec![], vec![Action::SetMed(1), Action::Accept])],
        Verdict::Accept,
    );
    assert!(!modifying.decides_only());
    assert!(
        modifying
            .decide(&net("10.0.0.0/8"), &PathAttributes::default(), &learned())
            .is_none()
    );
    assert!(Policy::node_default_export().decides_only());
    assert!(!Policy::node_default_export().by_prefix());
}

#[test]
fn negated_prefixes_learned_and_never() {
    let c = learned();
    let not_in = Condition::NotPrefix(PrefixMatch::orlonger(net("10.0.0.0/8")));
    let p = Policy::new(vec![Rule::reject(vec![not_in])], Verdict::Accept);
    assert_eq!(verdict(&p, "10.1.0.0/16", &c), Verdict::Accept);
    assert_eq!(verdict(&p, "11.0.0.0/8", &c), Verdict::Reject);
    // A prefix of the other family is never inside 10.0.0.0/8.
    assert_eq!(verdict(&p, "2001:db8::/32", &c), Verdict::Reject);

    let p = Policy::new(
        vec![Rule::reject(vec![Condition::Learned])],
        Verdict::Accept,
    );
    assert_eq!(verdict(&p, "10.0.0.0/8", &c), Verdict::Reject);
    let ours = ctx(RouteSource::Local, PeerKind::Ebgp);
    assert_eq!(verdict(&p, "10.0.0.0/8", &ours), Verdict::Accept);

    let p = Policy::new(
        vec![
            Rule::reject(vec![Condition::Never]),
            Rule::reject(vec![
                Condition::Prefix(PrefixMatch::orlonger(net("10.0.0.0/8"))),
                Condition::Never,
            ]),
        ],
        Verdict::Accept,
    );
    assert_eq!(verdict(&p, "10.0.0.0/8", &c), Verdict::Accept);
}

#[test]
fn the_first_matching_rule_decides() {
    let c = learned();
    let p = Policy::new(
        vec![
            Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(net(
                "0.0.0.0/0",
            )))]),
            Rule::accept(vec![Condition::Prefix(PrefixMatch {
                net: net("10.0.0.0/8"),
                ge: Some(24),
                le: Some(24),
            })]),
            Rule::reject(vec![Condition::Prefix(PrefixMatch::orlonger(net(
                "10.0.0.0/8",
            )))]),
            Rule::reject(vec![Condition::PeerKind(PeerKind::Ibgp)]),
        ],
        Verdict::Accept,
    );
    assert_eq!(verdict(&p, "0.0.0.0/0", &c), Verdict::Reject);
    assert_eq!(verdict(&p, "10.1.2.0/24", &c), Verdict::Accept);
    assert_eq!(verdict(&p, "10.1.2.0/25", &c), Verdict::Reject);
    assert_eq!(verdict(&p, "11.0.0.0/8", &c), Verdict::Accept);
    let ibgp = ctx(RouteSource::Ibgp, PeerKind::Ibgp);
    assert_eq!(verdict(&p, "11.0.0.0/8", &ibgp), Verdict::Reject);
    assert_eq!(verdict(&p, "10.1.2.0/24", &ibgp), Verdict::Accept);
}

#[test]
fn apply_gives_the_same_handle_or_rejects() {
    let mut t = AttrInterner::new();
    let a = t.intern(PathAttributes::default());
    let p = Policy::new(
        vec![Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(
            net("0.0.0.0/0"),
        ))])],
        Verdict::Accept,
    );
    assert_eq!(
        p.apply(&net("0.0.0.0/0"), &a, &learned(), &mut t),
        Outcome::Rejected
    );
    match p.apply(&net("10.0.0.0/8"), &a, &learned(), &mut t) {
        Outcome::Accepted {
            attrs,
            next_hop_self,
        } => assert!(Arc::ptr_eq(&attrs, &a) && !next_hop_self),
        Outcome::Rejected => panic!("rejected"),
    }
}

// Property: the index finds the rule trying each in turn finds, over
// rules and prefixes drawn from a small space (so that they meet).

fn v4(a: u8, b: u8, len: u8) -> IpNet {
    IpNet::V4(
        Ipv4Net::new(Ipv4Addr::new(10, a, b, a ^ b), len.min(32))
            .unwrap()
            .trunc(),
    )
}

fn v6(a: u8, b: u8, len: u8) -> IpNet {
    let addr = Ipv6Addr::new(0x2001, 0xdb8, u16::from(a), u16::from(b), 0, 0, 0, 1);
    IpNet::V6(Ipv6Net::new(addr, len.min(128)).unwrap().trunc())
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (0u8..4, 0u8..4, 0u8..=32).prop_map(|(a, b, l)| v4(a, b, l)),
        (0u8..4, 0u8..4, prop_oneof![0u8..=64, 120u8..=128]).prop_map(|(a, b, l)| v6(a, b, l)),
    ]
}

fn prefix_match() -> impl Strategy<Value = PrefixMatch> {
    (
        prefix(),
        proptest::option::of(0u8..=130),
        proptest::option::of(0u8..=130),
    )
        .prop_map(|(net, ge, le)| PrefixMatch { net, ge, le })
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => prefix_match().prop_map(Condition::Prefix),
        2 => prefix_match().prop_map(Condition::NotPrefix),
        1 => prop_oneof![Just(Family::Ipv4Unicast), Just(Family::Ipv6Unicast)].prop_map(Condition::Family),
        1 => Just(Condition::Learned),
        1 => Just(Condition::Never),
        1 => prop_oneof![Just(PeerKind::Ibgp), Just(PeerKind::Ebgp)].prop_map(Condition::PeerKind),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (proptest::collection::vec(condition(), 0..3), any::<bool>()).prop_map(|(c, accept)| {
        if accept {
            Rule::accept(c)
        } else {
            Rule::reject(c)
        }
    })
}

proptest! {
    #[test]
    fn the_index_agrees_with_trying_each_rule(
        rules in proptest::collection::vec(rule(), 0..40),
        default_accept in any::<bool>(),
        prefixes in proptest::collection::vec(prefix(), 1..30),
        local in any::<bool>(),
        ibgp in any::<bool>(),
    ) {
        let default = if default_accept { Verdict::Accept } else { Verdict::Reject };
        let policy = Policy::new(rules, default);
        prop_assert!(policy.decides_only());
        let c = ctx(
            if local { RouteSource::Local } else { RouteSource::Ebgp },
            if ibgp { PeerKind::Ibgp } else { PeerKind::Ebgp },
        );
        let attrs = PathAttributes::default();
        for p in &prefixes {
            prop_assert_eq!(
                policy.decide(p, &attrs, &c),
                Some(in_turn(&policy, p, &attrs, &c)),
                "prefix {}", p
            );
        }
    }
}
