//! What confd keeps of an etcd key: [`ItemKey`] (which thing, from the key
//! alone) and [`Item`] (its typed value, reduced to what this node needs).
//!
//! The mapping is per node: of the cluster-wide keys confd watches, a node
//! keeps every IPPool, BGPPeer, BGPFilter and Node; the global
//! BGPConfiguration and its own (`node.<name>`); its own block affinities;
//! every IPAM block, reduced to who owns what in it ([`BlockOwners`]: the
//! affine node, and the addresses other nodes hold in it — how Calico's
//! felix routes VXLAN pools, and which addresses this node borrows); and
//! its own WorkloadEndpoints (`spec.node`); the global FelixConfiguration
//! and its own (`node.<name>`). Everything else under
//! `/calico/` (handles, other nodes' affinities, the IPAM config) is not
//! kept. A block's reduction changes only when its affinity or a
//! borrowed address changes, not with each pod its own node adds.
//!
//! A value that does not decode is treated as absent, with a warning naming
//! the key — as libcalico-go's watcher cache treats a parse error as a
//! deletion. So a later re-list, which skips the same value, agrees with
//! what the watch did, and nothing stale stays behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use manul_datastore::ipam::{AffinityState, AllocationBlock, BlockAffinity};
use manul_datastore::resources::{
    BgpConfiguration, BgpFilter, BgpPeer, GLOBAL_NAME, IpPool, Node, RawResource, WorkloadEndpoint,
    decode_raw, node_config_name,
};
use manul_datastore::{Key, ResourceKind, ResourceSpec};

/// Which thing a key is, as far as this node is concerned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKey {
    /// An IPPool, by name.
    IpPool(String),
    /// The global (`default`) or this node's (`node.<name>`) BGPConfiguration.
    BgpConfig(String),
    /// A BGPPeer, by name.
    BgpPeer(String),
    /// A BGPFilter, by name.
    BgpFilter(String),
    /// A Node, by name.
    Node(String),
    /// This node's affinity to a block.
    Affinity(IpNet),
    /// An IPAM block (any node's).
    Block(IpNet),
    /// One of this node's WorkloadEndpoints.
    Workload {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The global (`default`) or this node's (`node.<name>`)
    /// FelixConfiguration.
    FelixConfig(String),
}

/// A kept value. Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An IPPool.
    IpPool(Arc<IpPool>),
    /// A BGPConfiguration.
    BgpConfig(Arc<BgpConfiguration>),
    /// A BGPPeer.
    BgpPeer(Arc<BgpPeer>),
    /// A BGPFilter.
    BgpFilter(Arc<BgpFilter>),
    /// A Node.
    Node(Arc<Node>),
    /// This node's affinity: its state, `None` when marked deleted.
    Affinity(Option<AffinityState>),
    /// Who owns what in a block.
    Block(Arc<BlockOwners>),
    /// A WorkloadEndpoint of this node.
    Workload(Arc<WorkloadEndpoint>),
    /// A FelixConfiguration (its spec kept as JSON: manul-node decides,
    /// field by field, what it honours and reports the rest).
    FelixConfig(Arc<RawResource>),
}

/// An IPAM block reduced to who owns what in it (Calico's felix reads the
/// same: the block's `affinity`, and its `NonAffineAllocations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockOwners {
    /// The node the block is affine to (`affinity: host:<node>`), if any.
    pub host: Option<String>,
    /// Addresses in the block allocated to another node than `host`, by
    /// their `node` attribute (allocations without one are left out, as
    /// Calico's felix leaves them: their node is not known).
    pub others: BTreeMap<IpAddr, String>,
}

impl BlockOwners {
    /// The reduction of `block`.
    pub fn of(block: &AllocationBlock) -> BlockOwners {
        let host = block.host().map(str::to_owned);
        let others = block
            .allocations
            .iter()
            .enumerate()
            .filter_map(|(ordinal, a)| {
                let attr = block.attributes.get(usize::try_from((*a)?).ok()?)?;
                let node = attr.secondary.get(manul_datastore::ipam::attr::NODE)?;
                (!node.is_empty() && Some(node.as_str()) != host.as_deref())
                    .then(|| Some((nth_address(&block.cidr, ordinal)?, node.clone())))?
            })
            .collect();
        BlockOwners { host, others }
    }

    /// The addresses node `me` holds in this block while the block is not
    /// its own (borrowed addresses).
    pub fn borrowed_by(&self, me: &str) -> BTreeSet<IpAddr> {
        if self.host.as_deref() == Some(me) {
            return BTreeSet::new();
        }
        self.others
            .iter()
            .filter(|(_, n)| *n == me)
            .map(|(a, _)| *a)
            .collect()
    }
}

/// What a key's value says for this node.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Not a key this node keeps.
    Ignored,
    /// The key maps to `key`; `None`: absent for this node (e.g. a block
    /// this node no longer borrows from, or a malformed value).
    Item(ItemKey, Option<Item>),
}

/// The item a key maps to for node `me`, from the key alone; `None` when
/// such keys are not kept. (A Workload key maps to an item whatever its
/// value; the value decides whether it is present.)
pub fn item_key(me: &str, key: &str) -> Option<ItemKey> {
    // Handles are the bulk of IPAM churn: drop them before parsing.
    if key.starts_with("/calico/ipam/v2/handle/") {
        return None;
    }
    match Key::parse(key).ok()? {
        Key::Resource {
            kind,
            namespace,
            name,
            ..
        } => match kind {
            ResourceKind::IpPool => Some(ItemKey::IpPool(name)),
            ResourceKind::BgpConfiguration => (name == GLOBAL_NAME || name == node_config_name(me))
                .then_some(ItemKey::BgpConfig(name)),
            ResourceKind::BgpPeer => Some(ItemKey::BgpPeer(name)),
            ResourceKind::BgpFilter => Some(ItemKey::BgpFilter(name)),
            ResourceKind::Node => Some(ItemKey::Node(name)),
            ResourceKind::WorkloadEndpoint => Some(ItemKey::Workload {
                namespace: namespace.unwrap_or_default(),
                name,
            }),
            ResourceKind::FelixConfiguration => (name == GLOBAL_NAME
                || name == node_config_name(me))
            .then_some(ItemKey::FelixConfig(name)),
            // Kinds confd renders nothing from (policy, sets, endpoints).
            _ => None,
        },
        Key::BlockAffinity { host, cidr } => (host == me).then_some(ItemKey::Affinity(cidr)),
        Key::Block { cidr } => Some(ItemKey::Block(cidr)),
        Key::Handle { .. } | Key::IpamConfig => None,
    }
}

/// Decode `value` stored at `key` for node `me`. Malformed values are
/// logged with their key and read as absent.
pub fn decode(me: &str, key: &str, value: &[u8]) -> Decoded {
    let Some(item_key) = item_key(me, key) else {
        return Decoded::Ignored;
    };
    let item = match decode_value(me, &item_key, value) {
        Ok(item) => item,
        Err(error) => {
            tracing::warn!(key, %error, "skipping malformed etcd value (treated as absent)");
            None
        }
    };
    Decoded::Item(item_key, item)
}

fn resource<S: ResourceSpec>(value: &[u8]) -> Result<Arc<manul_datastore::Resource<S>>, String> {
    manul_datastore::Resource::<S>::from_json(value)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn decode_value(me: &str, key: &ItemKey, value: &[u8]) -> Result<Option<Item>, String> {
    Ok(Some(match key {
        ItemKey::IpPool(_) => Item::IpPool(resource(value)?),
        ItemKey::BgpConfig(_) => Item::BgpConfig(resource(value)?),
        ItemKey::BgpPeer(_) => Item::BgpPeer(resource(value)?),
        ItemKey::BgpFilter(_) => Item::BgpFilter(resource(value)?),
        ItemKey::Node(_) => Item::Node(resource(value)?),
        ItemKey::Workload { .. } => {
            let wep: Arc<WorkloadEndpoint> = resource(value)?;
            if wep.spec.node != me {
                return Ok(None);
            }
            Item::Workload(wep)
        }
        ItemKey::FelixConfig(_) => Item::FelixConfig(Arc::new(
            decode_raw(ResourceKind::FelixConfiguration, value).map_err(|e| e.to_string())?,
        )),
        ItemKey::Affinity(_) => {
            let a: BlockAffinity = serde_json::from_slice(value).map_err(|e| e.to_string())?;
            Item::Affinity((!a.deleted).then_some(a.state))
        }
        ItemKey::Block(_) => {
            let block: AllocationBlock =
                serde_json::from_slice(value).map_err(|e| e.to_string())?;
            if block.deleted {
                return Ok(None);
            }
            Item::Block(Arc::new(BlockOwners::of(&block)))
        }
    }))
}

/// The addresses of `block` that node `me` uses although the block is
/// another node's (or no node's): allocations whose attribute says
/// `node: me`. Empty for this node's own blocks.
pub fn borrowed_addresses(me: &str, block: &AllocationBlock) -> BTreeSet<IpAddr> {
    if block.deleted {
        return BTreeSet::new();
    }
    BlockOwners::of(block).borrowed_by(me)
}

fn nth_address(cidr: &IpNet, n: usize) -> Option<IpAddr> {
    let n = u128::try_from(n).ok()?;
    match cidr {
        IpNet::V4(net) => {
            let base = u32::from(net.network());
            let n = u32::try_from(n).ok()?;
            base.checked_add(n).map(|a| IpAddr::V4(a.into()))
        }
        IpNet::V6(net) => {
            let base = u128::from(net.network());
            base.checked_add(n).map(|a| IpAddr::V6(a.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "node-a";

    #[test]
    fn keys_this_node_keeps() {
        let r = "/calico/resources/v3/projectcalico.org";
        assert_eq!(
            item_key(ME, &format!("{r}/ippools/p1")),
            Some(ItemKey::IpPool("p1".into()))
        );
        assert_eq!(
            item_key(ME, &format!("{r}/bgpconfigurations/default")),
            Some(ItemKey::BgpConfig("default".into()))
        );
        assert_eq!(
            item_key(ME, &format!("{r}/bgpconfigurations/node.node-a")),
            Some(ItemKey::BgpConfig("node.node-a".into()))
        );
        assert_eq!(
            item_key(ME, &format!("{r}/bgpconfigurations/node.node-b")),
            None
        );
        assert_eq!(
            item_key(ME, "/calico/ipam/v2/host/node-a/ipv4/block/10.65.0.0-26"),
            Some(ItemKey::Affinity("10.65.0.0/26".parse().unwrap()))
        );
        assert_eq!(
            item_key(ME, "/calico/ipam/v2/host/node-b/ipv4/block/10.65.0.0-26"),
            None
        );
        assert_eq!(
            item_key(ME, "/calico/ipam/v2/handle/k8s-pod-network.x"),
            None
        );
        assert_eq!(item_key(ME, "/calico/ipam/v2/config"), None);
        assert_eq!(item_key(ME, "/calico/felix/v1/whatever"), None);
        assert_eq!(
            item_key(ME, &format!("{r}/felixconfigurations/default")),
            Some(ItemKey::FelixConfig("default".into()))
        );
        assert_eq!(
            item_key(ME, &format!("{r}/felixconfigurations/node.{ME}")),
            Some(ItemKey::FelixConfig(format!("node.{ME}")))
        );
        assert_eq!(
            item_key(ME, &format!("{r}/felixconfigurations/node.other")),
            None
        );
    }

    #[test]
    fn malformed_is_absent() {
        let key = "/calico/resources/v3/projectcalico.org/ippools/p1";
        assert_eq!(
            decode(ME, key, b"{not json"),
            Decoded::Item(ItemKey::IpPool("p1".into()), None)
        );
    }

    #[test]
    fn borrowed_addresses_are_this_nodes_allocations_in_another_nodes_block() {
        let block: AllocationBlock = serde_json::from_value(serde_json::json!({
            "cidr": "10.65.1.0/30",
            "affinity": "host:node-b",
            "allocations": [0, null, 1, 0],
            "unallocated": [1],
            "attributes": [
                {"handle_id": "h1", "secondary": {"node": "node-b"}},
                {"handle_id": "h2", "secondary": {"node": "node-a"}}
            ],
            "deleted": false,
            "sequenceNumber": 3,
            "sequenceNumberForAllocation": {}
        }))
        .unwrap();
        let got = borrowed_addresses(ME, &block);
        assert_eq!(got, ["10.65.1.2".parse::<IpAddr>().unwrap()].into());
        assert!(borrowed_addresses("node-b", &block).is_empty());
    }

    #[test]
    fn a_block_reduces_to_its_host_and_the_addresses_other_nodes_hold() {
        let block: AllocationBlock = serde_json::from_value(serde_json::json!({
            "cidr": "10.65.1.0/29",
            "affinity": "host:node-b",
            "allocations": [0, 1, 2, null, 3, 0, null, null],
            "unallocated": [3, 6, 7],
            "attributes": [
                {"handle_id": "h1", "secondary": {"node": "node-b"}},
                {"handle_id": "h2", "secondary": {"node": "node-a"}},
                {"handle_id": "h3", "secondary": {"node": "node-c"}},
                {"handle_id": "h4", "secondary": {}}
            ],
            "deleted": false,
            "sequenceNumber": 3,
            "sequenceNumberForAllocation": {}
        }))
        .unwrap();
        let owners = BlockOwners::of(&block);
        assert_eq!(owners.host.as_deref(), Some("node-b"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The host's own allocations (0, 5) and one with no node (4) are
        // not listed.
        assert_eq!(
            owners.others,
            BTreeMap::from([
                (ip("10.65.1.1"), "node-a".to_string()),
                (ip("10.65.1.2"), "node-c".to_string())
            ])
        );
        assert_eq!(owners.borrowed_by("node-a"), [ip("10.65.1.1")].into());
        assert!(owners.borrowed_by("node-b").is_empty());
        // A block no node is affine to: every attributed allocation is another node's.
        let mut free = block.clone();
        free.affinity = None;
        assert_eq!(BlockOwners::of(&free).others.len(), 4);
        // Only the reduction matters: the host adding a pod changes nothing.
        let mut more = block.clone();
        more.allocations[6] = Some(0);
        assert_eq!(BlockOwners::of(&more), owners);
    }
}
