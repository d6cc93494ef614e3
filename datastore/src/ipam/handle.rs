//! IPAM handle: which blocks hold how many addresses of one owner (a pod's
//! `k8s-pod-network.<containerID>`, or `ipip-tunnel-addr-<node>`...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::null_default;

/// `IPAMHandle`. The handle ID is the key, not part of the value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamHandle {
    /// Block CIDR (`10.0.0.0/26`) -> number of addresses held there.
    #[serde(default, deserialize_with = "null_default")]
    pub block: BTreeMap<String, u64>,
    /// Marked before deletion.
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The handle ID of a pod's addresses.
pub fn pod_handle_id(container_id: &str) -> String {
    format!("k8s-pod-network.{container_id}")
}

/// The handle ID of a node's IPIP tunnel address.
pub fn ipip_tunnel_handle_id(node: &str) -> String {
    format!("ipip-tunnel-addr-{node}")
}

/// The handle ID of a node's IPv4 VXLAN tunnel address.
pub fn vxlan_tunnel_handle_id(node: &str) -> String {
    format!("vxlan-tunnel-addr-{node}")
}

/// The handle ID of a node's IPv6 VXLAN tunnel address (calico-node's
/// `vxlan-v6-tunnel-addr-<node>`).
pub fn vxlan_v6_tunnel_handle_id(node: &str) -> String {
    format!("vxlan-v6-tunnel-addr-{node}")
}
