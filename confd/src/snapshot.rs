//! [`Snapshot`]: this node's view of the cluster at one etcd revision, and
//! [`Delta`], one change to it.
//!
//! Pure data: the sync task ([`crate::sync`]) feeds it watch events one by
//! one ([`Snapshot::set`]) or a whole re-list ([`Snapshot::replace`]), and
//! both return exactly the deltas that change something — a put of an
//! identical value, or a re-list after compaction that finds what the watch
//! had already seen, yields none.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;

use ipnet::IpNet;
use manul_datastore::ipam::AffinityState;
use manul_datastore::resources::{
    BgpConfiguration, BgpFilter, BgpPeer, GLOBAL_NAME, IpPool, Node, WorkloadEndpoint,
    node_config_name,
};

use crate::item::{BlockOwners, Item, ItemKey};

/// One change: `old` → `new` at `key` (`None` = absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// What changed.
    pub key: ItemKey,
    /// The value before.
    pub old: Option<Item>,
    /// The value after.
    pub new: Option<Item>,
}

/// Everything this node keeps, by key. Cloning shares the values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    items: BTreeMap<ItemKey, Item>,
}

/// The range of keys of one [`ItemKey`] variant, given its smallest key.
fn from(first: ItemKey) -> (Bound<ItemKey>, Bound<ItemKey>) {
    (Bound::Included(first), Bound::Unbounded)
}

macro_rules! typed_iter {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(&self) -> impl Iterator<Item = (&str, &$ty)> + '_ {
            self.items
                .range(from(ItemKey::$variant(String::new())))
                .map_while(|(k, v)| match (k, v) {
                    (ItemKey::$variant(name), Item::$variant(r)) => Some((name.as_str(), &**r)),
                    _ => None,
                })
        }
    };
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every item in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&ItemKey, &Item)> + '_ {
        self.items.iter()
    }

    /// The item at `key`.
    pub fn get(&self, key: &ItemKey) -> Option<&Item> {
        self.items.get(key)
    }

    /// Set `key` to `value` (`None` removes); the delta, if anything changed.
    pub fn set(&mut self, key: ItemKey, value: Option<Item>) -> Option<Delta> {
        let old = match &value {
            Some(v) => {
                if self.items.get(&key) == Some(v) {
                    return None;
                }
                self.items.insert(key.clone(), v.clone())
            }
            None => self.items.remove(&key),
        };
        (old.is_some() || value.is_some()).then_some(Delta {
            key,
            old,
            new: value,
        })
    }

    /// Replace everything with `items` (a re-list); the deltas that turn
    /// the old content into the new: only keys whose value differs.
    pub fn replace(&mut self, items: BTreeMap<ItemKey, Item>) -> Vec<Delta> {
        let old = std::mem::replace(&mut self.items, items);
        diff(&old, &self.items)
    }

    /// The deltas from `self` to `other`.
    pub fn diff(&self, other: &Snapshot) -> Vec<Delta> {
        diff(&self.items, &other.items)
    }

    typed_iter!(
        /// IPPools by name.
        pools, IpPool, IpPool
    );
    typed_iter!(
        /// BGPPeers by name.
        peers, BgpPeer, BgpPeer
    );
    typed_iter!(
        /// BGPFilters by name.
        filters, BgpFilter, BgpFilter
    );
    typed_iter!(
        /// Nodes by name.
        nodes, Node, Node
    );

    /// The global BGPConfiguration.
    pub fn global_bgp_config(&self) -> Option<&BgpConfiguration> {
        self.bgp_config(GLOBAL_NAME)
    }

    /// `node`'s own BGPConfiguration (`node.<node>`).
    pub fn node_bgp_config(&self, node: &str) -> Option<&BgpConfiguration> {
        self.bgp_config(&node_config_name(node))
    }

    fn bgp_config(&self, name: &str) -> Option<&BgpConfiguration> {
        match self.items.get(&ItemKey::BgpConfig(name.to_owned())) {
            Some(Item::BgpConfig(c)) => Some(c),
            _ => None,
        }
    }

    /// A Node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        match self.items.get(&ItemKey::Node(name.to_owned())) {
            Some(Item::Node(n)) => Some(n),
            _ => None,
        }
    }

    /// A BGPPeer by name.
    pub fn bgp_peer(&self, name: &str) -> Option<&BgpPeer> {
        match self.items.get(&ItemKey::BgpPeer(name.to_owned())) {
            Some(Item::BgpPeer(p)) => Some(p),
            _ => None,
        }
    }

    /// A BGPFilter by name.
    pub fn filter(&self, name: &str) -> Option<&BgpFilter> {
        match self.items.get(&ItemKey::BgpFilter(name.to_owned())) {
            Some(Item::BgpFilter(f)) => Some(f),
            _ => None,
        }
    }

    /// This node's block affinities and their states (deleted ones left out).
    pub fn affinities(&self) -> impl Iterator<Item = (IpNet, &AffinityState)> + '_ {
        self.items
            .range(from(ItemKey::Affinity(IpNet::default())))
            .map_while(|(k, v)| match (k, v) {
                (ItemKey::Affinity(cidr), Item::Affinity(state)) => Some((*cidr, state)),
                _ => None,
            })
            .filter_map(|(cidr, state)| state.as_ref().map(|s| (cidr, s)))
    }

    /// This node's confirmed blocks: what it owns, blackholes and advertises.
    pub fn confirmed_blocks(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.affinities()
            .filter(|(_, s)| **s == AffinityState::Confirmed)
            .map(|(c, _)| c)
    }

    /// Every IPAM block (any node's) and who owns what in it.
    pub fn blocks(&self) -> impl Iterator<Item = (IpNet, &BlockOwners)> + '_ {
        self.items
            .range(from(ItemKey::Block(IpNet::default())))
            .map_while(|(k, v)| match (k, v) {
                (ItemKey::Block(cidr), Item::Block(b)) => Some((*cidr, &**b)),
                _ => None,
            })
    }

    /// Blocks of other nodes node `me` borrows from, with the addresses it
    /// uses (the snapshot's own node: the one its confd runs for).
    pub fn borrowed<'a>(
        &'a self,
        me: &'a str,
    ) -> impl Iterator<Item = (IpNet, BTreeSet<IpAddr>)> + 'a {
        self.blocks()
            .map(move |(cidr, b)| (cidr, b.borrowed_by(me)))
            .filter(|(_, addrs)| !addrs.is_empty())
    }

    /// This node's WorkloadEndpoints.
    pub fn workloads(&self) -> impl Iterator<Item = &WorkloadEndpoint> + '_ {
        self.items
            .range(from(ItemKey::Workload {
                namespace: String::new(),
                name: String::new(),
            }))
            .filter_map(|(_, v)| match v {
                Item::Workload(w) => Some(&**w),
                _ => None,
            })
    }
}

fn diff(old: &BTreeMap<ItemKey, Item>, new: &BTreeMap<ItemKey, Item>) -> Vec<Delta> {
    let mut out = Vec::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (k, v) = a.next().expect("peeked");
                out.push(Delta {
                    key: k.clone(),
                    old: Some(v.clone()),
                    new: None,
                });
            }
            std::cmp::Ordering::Greater => {
                let (k, v) = b.next().expect("peeked");
                out.push(Delta {
                    key: k.clone(),
                    old: None,
                    new: Some(v.clone()),
                });
            }
            std::cmp::Ordering::Equal => {
                let ((k, va), (_, vb)) = (a.next().expect("peeked"), b.next().expect("peeked"));
                if va != vb {
                    out.push(Delta {
                        key: k.clone(),
                        old: Some(va.clone()),
                        new: Some(vb.clone()),
                    });
                }
            }
        }
    }
}

/// Shared handle on a snapshot version.
pub type SharedSnapshot = Arc<Snapshot>;

#[cfg(test)]
mod tests {
    use super::*;

    fn aff(s: &str) -> (ItemKey, Item) {
        (
            ItemKey::Affinity(s.parse().unwrap()),
            Item::Affinity(Some(AffinityState::Confirmed)),
        )
    }

    #[test]
    fn identical_put_is_no_delta() {
        let mut snap = Snapshot::new();
        let (k, v) = aff("10.65.0.0/26");
        assert!(snap.set(k.clone(), Some(v.clone())).is_some());
        assert!(snap.set(k.clone(), Some(v)).is_none());
        assert!(snap.set(k.clone(), None).is_some());
        assert!(snap.set(k, None).is_none());
    }

    #[test]
    fn replace_emits_only_the_true_difference() {
        let mut snap = Snapshot::new();
        for s in ["10.65.0.0/26", "10.65.0.64/26", "10.65.0.128/26"] {
            let (k, v) = aff(s);
            snap.set(k, Some(v));
        }
        let mut next: BTreeMap<ItemKey, Item> =
            ["10.65.0.0/26", "10.65.0.128/26", "10.65.0.192/26"]
                .into_iter()
                .map(aff)
                .collect();
        next.insert(
            ItemKey::Affinity("10.65.0.128/26".parse().unwrap()),
            Item::Affinity(Some(AffinityState::Pending)),
        );
        let deltas = snap.replace(next);
        let summary: Vec<(String, bool, bool)> = deltas
            .iter()
            .map(|d| match &d.key {
                ItemKey::Affinity(c) => (c.to_string(), d.old.is_some(), d.new.is_some()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("10.65.0.64/26".into(), true, false),
                ("10.65.0.128/26".into(), true, true),
                ("10.65.0.192/26".into(), false, true),
            ]
        );
        assert_eq!(snap.confirmed_blocks().count(), 2);
    }
}
