//! The pure half of reconciliation: what felix believes the kernel holds
//! ([`Actual`]) and the minimal set of writes that makes it hold the
//! desired routes ([`plan`]).
//!
//! Ownership (Calico's felix does the same with its protocol number, 80):
//! felix owns exactly the routes in its table marked with its protocol. It
//! replaces or deletes only those. A desired destination whose slot (table,
//! destination, TOS 0, felix's metric) is held by another owner's route —
//! BIRD's (12), a static one, the kernel's — is left alone and reported as
//! blocked, never overwritten.
//!
//! An owned route on an interface that only just appeared and that felix
//! does not (yet) want is **held**, not deleted: the CNI plugin writes a
//! pod's host route, marked as felix's, before the pod's endpoint reaches
//! felix through the datastore. Calico's felix gives such routes the same
//! grace. Once the interface is older than the grace period, the route
//! goes like any other.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use ipnet::IpNet;
use manul_status::FamilyCount;

use crate::kernel::{Hop, KernelRoute, Kind, effective_priority};
use crate::route::{DesiredRoutes, Target};

/// Whose routes are felix's, and where it writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Routing protocol number felix marks its routes with.
    pub protocol: u8,
    /// The table (254: main).
    pub table: u32,
    /// The metric felix writes.
    pub metric: u32,
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership {
            protocol: 80,
            table: 254,
            metric: 0,
        }
    }
}

/// What felix knows of its table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// Felix's routes, by destination and priority.
    owned: BTreeMap<(IpNet, u32), KernelRoute>,
    /// How many of them are IPv4 (the rest are IPv6).
    owned_v4: usize,
    /// Other owners' routes in felix's slots: destination → protocol.
    pub foreign: BTreeMap<IpNet, u8>,
}

impl Actual {
    /// Record that `route` now exists (`present`) or is gone.
    pub fn observe(&mut self, own: &Ownership, route: &KernelRoute, present: bool) {
        if route.table != own.table || route.tos != 0 {
            return;
        }
        if route.protocol == own.protocol {
            let key = (route.dst, route.priority);
            let v4 = usize::from(matches!(route.dst, IpNet::V4(_)));
            if present {
                if self.owned.insert(key, route.clone()).is_none() {
                    self.owned_v4 += v4;
                }
            } else if self.owned.remove(&key).is_some() {
                self.owned_v4 -= v4;
            }
        } else if route.priority == effective_priority(&route.dst, own.metric) {
            if present {
                self.foreign.insert(route.dst, route.protocol);
            } else if self.foreign.get(&route.dst) == Some(&route.protocol) {
                self.foreign.remove(&route.dst);
            }
        }
    }

    /// Felix's routes in its table, by destination and priority.
    pub fn owned(&self) -> &BTreeMap<(IpNet, u32), KernelRoute> {
        &self.owned
    }

    /// How many routes felix owns in its table, by family.
    pub fn owned_count(&self) -> FamilyCount {
        FamilyCount {
            ipv4: self.owned_v4,
            ipv6: self.owned.len() - self.owned_v4,
        }
    }

    fn owned_at(&self, dst: &IpNet) -> impl Iterator<Item = &KernelRoute> + '_ {
        self.owned
            .range((
                Bound::Included((*dst, 0)),
                Bound::Included((*dst, u32::MAX)),
            ))
            .map(|(_, r)| r)
    }
}

/// The writes to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create or replace.
    pub upserts: Vec<KernelRoute>,
    /// Delete.
    pub deletes: Vec<KernelRoute>,
    /// Desired routes that cannot be written now, and why (an interface
    /// that does not exist yet, a slot another owner holds).
    pub blocked: Vec<(IpNet, String)>,
    /// Owned routes not desired but kept for now: their interface is new
    /// (see the module doc).
    pub held: Vec<IpNet>,
}

impl Plan {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// `target` for `dst` as a kernel route, interfaces resolved by `links`.
pub fn resolve(
    own: &Ownership,
    dst: &IpNet,
    target: &Target,
    links: &HashMap<String, u32>,
) -> Result<KernelRoute, String> {
    let index = |name: &str| {
        links
            .get(name)
            .copied()
            .ok_or_else(|| format!("interface {name} does not exist"))
    };
    let kind = match target {
        Target::Blackhole => Kind::Blackhole,
        Target::Device(dev) => Kind::Unicast(vec![Hop {
            gateway: None,
            oif: index(dev)?,
            onlink: false,
        }]),
        Target::Via(hops) => {
            let mut out = Vec::with_capacity(hops.len());
            for h in hops {
                out.push(Hop {
                    gateway: Some(h.gateway),
                    oif: match &h.device {
                        Some(d) => index(d)?,
                        None => 0,
                    },
                    onlink: h.onlink,
                });
            }
            out.sort();
            Kind::Unicast(out)
        }
    };
    Ok(KernelRoute {
        dst: dst.trunc(),
        table: own.table,
        protocol: own.protocol,
        priority: effective_priority(dst, own.metric),
        tos: 0,
        kind,
    })
}

/// Whether the kernel's `actual` is what `want` asks for (a hop whose
/// interface felix left to the kernel matches any interface).
pub fn satisfies(actual: &KernelRoute, want: &KernelRoute) -> bool {
    match (&actual.kind, &want.kind) {
        (Kind::Blackhole, Kind::Blackhole) => true,
        (Kind::Unicast(a), Kind::Unicast(w)) => {
            a.len() == w.len()
                && w.iter().all(|wh| {
                    a.iter().any(|ah| {
                        ah.gateway == wh.gateway
                            && ah.onlink == wh.onlink
                            && (wh.oif == 0 || ah.oif == wh.oif)
                    })
                })
        }
        _ => false,
    }
}

/// Whether `route` goes only through interfaces in `new_links` (indexes).
fn on_new_links(route: &KernelRoute, new_links: &HashSet<u32>) -> bool {
    match &route.kind {
        Kind::Unicast(hops) => {
            !hops.is_empty()
                && hops
                    .iter()
                    .all(|h| h.oif != 0 && new_links.contains(&h.oif))
        }
        _ => false,
    }
}

/// The writes that bring `actual` to `desired`, for every destination, or
/// only those in `only`. Owned routes through `new_links` (interfaces
/// still in their grace period) are held rather than deleted.
pub fn plan(
    own: &Ownership,
    desired: &DesiredRoutes,
    links: &HashMap<String, u32>,
    new_links: &HashSet<u32>,
    actual: &Actual,
    only: Option<&BTreeSet<IpNet>>,
) -> Plan {
    let mut out = Plan::default();
    let dsts: BTreeSet<IpNet> = match only {
        Some(set) => set.clone(),
        None => desired
            .keys()
            .copied()
            .chain(actual.owned.keys().map(|(d, _)| *d))
            .collect(),
    };
    for dst in dsts {
        let want = desired.get(&dst).map(|t| resolve(own, &dst, t, links));
        let slot = effective_priority(&dst, own.metric);
        let mut in_slot = None;
        for route in actual.owned_at(&dst) {
            if route.priority == slot {
                in_slot = Some(route);
            } else {
                out.deletes.push(route.clone());
            }
        }
        match (want, in_slot) {
            (None, Some(route)) if on_new_links(route, new_links) => out.held.push(dst),
            (None, Some(route)) => out.deletes.push(route.clone()),
            (None, None) => {}
            (Some(Err(why)), _) => out.blocked.push((dst, why)),
            (Some(Ok(want)), Some(have)) => {
                if !satisfies(have, &want) {
                    out.upserts.push(want);
                }
            }
            (Some(Ok(want)), None) => match actual.foreign.get(&dst) {
                Some(proto) => out.blocked.push((
                    dst,
                    format!("the route slot is held by protocol {proto}; felix leaves it alone"),
                )),
                None => out.upserts.push(want),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::NextHop;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn links() -> HashMap<String, u32> {
        [("cali1".to_string(), 5), ("eth0".to_string(), 2)].into()
    }

    fn desired() -> DesiredRoutes {
        let mut d = DesiredRoutes::new();
        d.insert(net("10.65.0.0/26"), Target::Blackhole);
        d.insert(net("10.65.0.2/32"), Target::Device("cali1".into()));
        d.insert(
            net("10.65.1.0/26"),
            Target::Via(vec![NextHop {
                gateway: "192.168.1.2".parse().unwrap(),
                device: None,
                onlink: false,
            }]),
        );
        d
    }

    #[test]
    fn converged_table_plans_nothing() {
        let own = Ownership::default();
        let mut actual = Actual::default();
        for (dst, t) in &desired() {
            let mut r = resolve(&own, dst, t, &links()).unwrap();
            if let Kind::Unicast(h) = &mut r.kind {
                h[0].oif = h[0].oif.max(2); // the kernel fills in the interface
            }
            actual.observe(&own, &r, true);
        }
        let p = plan(&own, &desired(), &links(), &HashSet::new(), &actual, None);
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn minimal_writes_and_foreign_routes_untouched() {
        let own = Ownership::default();
        let mut actual = Actual::default();
        // A stale owned route, a foreign (BIRD) route in a desired slot, and
        // an owned route that differs.
        let stale = resolve(&own, &net("10.99.0.0/26"), &Target::Blackhole, &links()).unwrap();
        actual.observe(&own, &stale, true);
        let mut bird = resolve(&own, &net("10.65.1.0/26"), &Target::Blackhole, &links()).unwrap();
        bird.protocol = 12;
        actual.observe(&own, &bird, true);
        let wrong = resolve(
            &own,
            &net("10.65.0.2/32"),
            &Target::Device("eth0".into()),
            &links(),
        )
        .unwrap();
        actual.observe(&own, &wrong, true);
        let p = plan(&own, &desired(), &links(), &HashSet::new(), &actual, None);
        assert_eq!(
            p.upserts
                .iter()
                .map(|r| r.dst.to_string())
                .collect::<Vec<_>>(),
            vec!["10.65.0.0/26", "10.65.0.2/32"]
        );
        assert_eq!(p.deletes, vec![stale]);
        assert_eq!(p.blocked.len(), 1);
        assert!(p.blocked[0].1.contains("protocol 12"));
    }

    #[test]
    fn an_unwanted_route_on_a_new_interface_is_held_not_deleted() {
        let own = Ownership::default();
        let mut actual = Actual::default();
        let on_cali = resolve(
            &own,
            &net("10.65.0.7/32"),
            &Target::Device("cali1".into()),
            &links(),
        )
        .unwrap();
        let on_eth = resolve(
            &own,
            &net("10.65.0.8/32"),
            &Target::Device("eth0".into()),
            &links(),
        )
        .unwrap();
        actual.observe(&own, &on_cali, true);
        actual.observe(&own, &on_eth, true);
        let empty = DesiredRoutes::new();
        let young: HashSet<u32> = [5].into();
        let p = plan(&own, &empty, &links(), &young, &actual, None);
        assert_eq!(p.held, vec![net("10.65.0.7/32")]);
        assert_eq!(p.deletes, vec![on_eth.clone()]);
        // Once the interface is old, it goes.
        let p = plan(&own, &empty, &links(), &HashSet::new(), &actual, None);
        assert!(p.held.is_empty());
        assert_eq!(p.deletes, vec![on_cali, on_eth]);
    }

    #[test]
    fn a_missing_interface_blocks_only_its_route() {
        let own = Ownership::default();
        let mut d = desired();
        d.insert(net("10.65.0.3/32"), Target::Device("cali-gone".into()));
        let p = plan(
            &own,
            &d,
            &links(),
            &HashSet::new(),
            &Actual::default(),
            None,
        );
        assert_eq!(p.upserts.len(), 3);
        assert_eq!(
            p.blocked,
            vec![(
                net("10.65.0.3/32"),
                "interface cali-gone does not exist".into()
            )]
        );
    }
}
