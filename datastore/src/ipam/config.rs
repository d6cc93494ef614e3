//! The cluster-wide IPAM config at `/calico/ipam/v2/config`.
//!
//! Calico's model marks every field `omitempty`, while older versions wrote
//! all three; each field is an `Option` so both forms are written back
//! exactly as read. A field absent from a stored config reads as Go's zero
//! (false, false, 0); a cluster with no config at all uses
//! [`IpamConfig::default`] (strict affinity off, auto-allocate on).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `IPAMConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// Never borrow addresses from other nodes' blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_affinity: Option<bool>,
    /// Claim new blocks when the node's are full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_allocate_blocks: Option<bool>,
    /// Limit of blocks affine to one node (per family); 0 is no limit.
    #[serde(
        rename = "maxBlocksPerHost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_blocks_per_host: Option<u32>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for IpamConfig {
    /// The config Calico uses when none is stored.
    fn default() -> Self {
        IpamConfig {
            strict_affinity: Some(false),
            auto_allocate_blocks: Some(true),
            max_blocks_per_host: Some(0),
            extra: Map::new(),
        }
    }
}

impl IpamConfig {
    /// Whether borrowing is forbidden.
    pub fn strict_affinity(&self) -> bool {
        self.strict_affinity.unwrap_or(false)
    }

    /// Whether new blocks may be claimed.
    pub fn auto_allocate_blocks(&self) -> bool {
        self.auto_allocate_blocks.unwrap_or(false)
    }

    /// The stored per-node block limit; `None` when 0 or absent. Calico
    /// treats 0 as "no limit"; a caller that wants a default cap (manul's
    /// design uses 20) applies it with `unwrap_or`.
    pub fn max_blocks_per_host(&self) -> Option<u32> {
        self.max_blocks_per_host.filter(|&n| n > 0)
    }
}
