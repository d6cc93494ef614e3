//! The allocation block: one slice of a pool, with its per-address state.
//!
//! Normalisation on rewrite (Calico reads both forms the same): a `null`
//! list or map is read as empty and written as `[]` / `{}`. Older Calico
//! versions wrote `"strictAffinity":false` in blocks; it is kept in `extra`.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::null_default;

/// Well-known keys of [`AllocationAttribute::secondary`].
pub mod attr {
    /// The pod's name.
    pub const POD: &str = "pod";
    /// The pod's namespace.
    pub const NAMESPACE: &str = "namespace";
    /// The node that allocated the address.
    pub const NODE: &str = "node";
    /// The allocation's type (tunnel addresses).
    pub const TYPE: &str = "type";
    /// When the address was allocated.
    pub const TIMESTAMP: &str = "timestamp";
    /// `type` of an IPIP tunnel address.
    pub const TYPE_IPIP: &str = "ipipTunnelAddress";
    /// `type` of an IPv4 VXLAN tunnel address.
    pub const TYPE_VXLAN: &str = "vxlanTunnelAddress";
    /// `type` of an IPv6 VXLAN tunnel address.
    pub const TYPE_VXLAN_V6: &str = "vxlanV6TunnelAddress";
}

/// The prefix of [`AllocationBlock::affinity`] before the node name.
pub const AFFINITY_HOST_PREFIX: &str = "host:";

/// Metadata shared by one or more allocations of a block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    /// The handle that owns the allocations (always written, `null` if none).
    #[serde(default)]
    pub handle_id: Option<String>,
    /// Free-form attributes (`namespace`, `pod`, `node`, `timestamp`...).
    #[serde(default, deserialize_with = "null_default")]
    pub secondary: BTreeMap<String, String>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `AllocationBlock`. Every field but `hostAffinity` is always written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationBlock {
    /// The block's range.
    pub cidr: IpNet,
    /// `host:<node>`, or `null` for a block with no affinity.
    #[serde(default)]
    pub affinity: Option<String>,
    /// One entry per address: `null` if free, else an index into
    /// `attributes`.
    #[serde(default, deserialize_with = "null_default")]
    pub allocations: Vec<Option<u32>>,
    /// Free ordinals, handed out first-in-first-out.
    #[serde(default, deserialize_with = "null_default")]
    pub unallocated: Vec<u32>,
    /// Attribute records referenced from `allocations`.
    #[serde(default, deserialize_with = "null_default")]
    pub attributes: Vec<AllocationAttribute>,
    /// Bumped on every write of the block.
    #[serde(rename = "sequenceNumber", default, deserialize_with = "null_default")]
    pub sequence_number: u64,
    /// Ordinal (as a decimal string) -> `sequence_number` when allocated.
    #[serde(
        rename = "sequenceNumberForAllocation",
        default,
        deserialize_with = "null_default"
    )]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
    /// Marked before deletion (a Kubernetes-backend workaround).
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
    /// Deprecated form of `affinity` (a bare node name), read-only.
    #[serde(
        rename = "hostAffinity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_affinity: Option<String>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AllocationBlock {
    /// The node this block is affine to, from `affinity` (`host:<node>`)
    /// or the deprecated `hostAffinity`.
    pub fn host(&self) -> Option<&str> {
        match &self.affinity {
            Some(a) => a.strip_prefix(AFFINITY_HOST_PREFIX),
            None => self.host_affinity.as_deref(),
        }
    }

    /// The `affinity` value for a node.
    pub fn affinity_for(node: &str) -> String {
        format!("{AFFINITY_HOST_PREFIX}{node}")
    }

    /// The sequence number recorded for an ordinal's allocation.
    pub fn sequence_number_for(&self, ordinal: u32) -> Option<u64> {
        self.sequence_number_for_allocation
            .get(&ordinal.to_string())
            .copied()
    }
}
