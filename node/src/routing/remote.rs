//! The remote prefixes felix routes to, kept from the speaker's best
//! paths (pure): a prefix with a best path and a next hop that is not
//! this node, and that this node does not originate itself.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_bgp::rib::BestChange;

/// Remote prefixes and their next hops (several: ECMP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteRoutes {
    /// This node's own addresses: never a next hop felix routes through.
    own: Vec<IpAddr>,
    routes: BTreeMap<IpNet, Vec<IpAddr>>,
}

impl RemoteRoutes {
    /// None yet, for a node with addresses `own`.
    pub fn new(own: Vec<IpAddr>) -> Self {
        RemoteRoutes {
            own,
            routes: BTreeMap::new(),
        }
    }

    /// Forget everything (before a whole Loc-RIB).
    pub fn clear(&mut self) {
        self.routes.clear();
    }

    /// Apply best-path changes; `local` are the prefixes this node
    /// originates (never routed to a peer).
    pub fn apply<V>(&mut self, changes: Vec<BestChange>, local: &BTreeMap<IpNet, V>) {
        for c in changes {
            let hops: Vec<IpAddr> = c
                .next_hops
                .iter()
                .copied()
                .filter(|h| !self.own.contains(h))
                .collect();
            if c.best.is_some() && !hops.is_empty() && !local.contains_key(&c.prefix) {
                self.routes.insert(c.prefix, hops);
            } else {
                self.routes.remove(&c.prefix);
            }
        }
    }

    /// How many prefixes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// The prefixes and their next hops, for felix.
    pub fn routes(&self) -> &BTreeMap<IpNet, Vec<IpAddr>> {
        &self.routes
    }
}
