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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use manul_bgp::rib::{Path, PeerIndex};

    use super::*;

    fn change(prefix: &str, hops: &[&str], reachable: bool) -> BestChange {
        let next_hops: Vec<IpAddr> = hops.iter().map(|h| h.parse().unwrap()).collect();
        BestChange {
            prefix: prefix.parse().unwrap(),
            previous: None,
            best: reachable.then(|| Path {
                peer: PeerIndex(1),
                path_id: 0,
                attrs: Arc::new(Default::default()),
                next_hop: next_hops[0],
                stale: false,
            }),
            next_hops: next_hops.into_iter().collect(),
        }
    }

    #[test]
    fn keeps_reachable_prefixes_through_other_nodes_only() {
        let own: IpAddr = "10.0.0.1".parse().unwrap();
        let local: BTreeMap<IpNet, ()> = [("10.65.0.0/26".parse().unwrap(), ())].into();
        let mut r = RemoteRoutes::new(vec![own]);
        r.apply(
            vec![
                change("10.65.1.0/26", &["10.0.0.2", "10.0.0.3"], true),
                // Through this node only: not a remote route.
                change("10.65.2.0/26", &["10.0.0.1"], true),
                // Our own block, reflected back to us.
                change("10.65.0.0/26", &["10.0.0.2"], true),
            ],
            &local,
        );
        let ecmp: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        assert_eq!(
            r.routes(),
            &BTreeMap::from([("10.65.1.0/26".parse().unwrap(), ecmp)])
        );
        // Our address among the hops is dropped; unreachable goes.
        r.apply(
            vec![change("10.65.1.0/26", &["10.0.0.1", "10.0.0.3"], true)],
            &local,
        );
        assert_eq!(r.routes()[&"10.65.1.0/26".parse().unwrap()].len(), 1);
        r.apply(vec![change("10.65.1.0/26", &["10.0.0.3"], false)], &local);
        assert_eq!(r.len(), 0);
    }
}
