//! BGPPeer (`bgppeers`): who peers with whom, beyond the mesh.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::asn::AsNumber;
use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::{is_false, null_default, opt_string_enum, string_enum};

/// A BGPPeer object.
pub type BgpPeer = Resource<BgpPeerSpec>;

string_enum! {
    /// `sourceAddress`: whether sessions bind the node IP as source.
    SourceAddress { UseNodeIp = "UseNodeIP", None = "None" }
}

string_enum! {
    /// `nextHopMode`: how next hops are set towards the peer.
    NextHopMode { Auto = "Auto", SelfHop = "Self", Keep = "Keep" }
}

/// Kubernetes `SecretKeySelector`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretKeySelector {
    /// The secret's name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The key within the secret (always written, as Go does).
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    /// Whether the secret may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A BGP password source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpPassword {
    /// The secret holding the password.
    #[serde(
        rename = "secretKeyRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_key_ref: Option<SecretKeySelector>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `BGPPeerSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpPeerSpec {
    /// The one node this peering applies to (exclusive with `node_selector`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// The nodes this peering applies to (exclusive with `node`); neither
    /// means every node.
    #[serde(
        rename = "nodeSelector",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_selector: String,
    /// `ip`, `ip:port` or `[v6]:port` (exclusive with `peer_selector`).
    #[serde(
        rename = "peerIP",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub peer_ip: String,
    /// The peer's AS.
    #[serde(rename = "asNumber", default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Peer with the nodes this selects (exclusive with `peer_ip`).
    #[serde(
        rename = "peerSelector",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub peer_selector: String,
    /// Keep the original next hop instead of next-hop-self.
    #[serde(
        rename = "keepOriginalNextHop",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub keep_original_next_hop: bool,
    /// TCP-MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BgpPassword>,
    /// Source address mode; absent means UseNodeIP.
    #[serde(
        rename = "sourceAddress",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_address: Option<SourceAddress>,
    /// Graceful-restart time (Go duration); absent means BIRD's 120 s.
    #[serde(
        rename = "maxRestartTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_restart_time: Option<String>,
    /// Allowed occurrences of the local AS in received paths.
    #[serde(
        rename = "numAllowedLocalASNumbers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<i32>,
    /// GTSM: the peer is at most this many hops away.
    #[serde(
        rename = "ttlSecurity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<u8>,
    /// Gateway the peer is reachable by.
    #[serde(
        rename = "reachableBy",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub reachable_by: String,
    /// BGPFilter names, applied in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filters: Vec<String>,
    /// The AS this node presents to the peer, instead of its own.
    #[serde(
        rename = "localASNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<AsNumber>,
    /// Keepalive interval (Go duration).
    #[serde(
        rename = "keepaliveTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive_time: Option<String>,
    /// Next-hop mode; absent means Auto.
    #[serde(
        rename = "nextHopMode",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_hop_mode: Option<NextHopMode>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for BgpPeerSpec {
    const KIND: ResourceKind = ResourceKind::BgpPeer;
}

impl BgpPeerSpec {
    /// The effective source address mode (default UseNodeIP).
    pub fn source_address(&self) -> SourceAddress {
        self.source_address
            .clone()
            .unwrap_or(SourceAddress::UseNodeIp)
    }

    /// The effective next-hop mode (default Auto).
    pub fn next_hop_mode(&self) -> NextHopMode {
        self.next_hop_mode.clone().unwrap_or(NextHopMode::Auto)
    }

    /// True when the peering applies to every node (no node, no selector).
    pub fn applies_to_all_nodes(&self) -> bool {
        self.node.is_empty() && self.node_selector.is_empty()
    }
}
