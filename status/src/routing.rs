//! The BGP side of `/status`: the speaker, its peers (their state is the
//! FSM's own [`State`]), the prefixes this node originates, and the
//! kernel routes felix keeps from all of it ([`KernelRoutes`]).

use std::net::IpAddr;

use ipnet::IpNet;
use manul_bgp::fsm::State;
pub use manul_bgp::speaker::MalformedCounts;
use serde::{Deserialize, Serialize};

use crate::kernel::KernelRoutes;

/// The routing part of the node's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingStatus {
    /// A BGP speaker runs on this node (false: no IPv4 address in its
    /// Node and no CALICO_ROUTER_ID, or the speaker could not start; see
    /// the log).
    pub bgp: bool,
    /// The speaker's BGP router ID (`CALICO_ROUTER_ID`, else the node's
    /// IPv4 address).
    #[serde(default)]
    pub router_id: Option<std::net::Ipv4Addr>,
    /// Speaker restarts since the agent started (this node's AS, router
    /// ID, cluster ID or listen port changed).
    pub bgp_restarts: u64,
    /// Every peer confd configures, and dynamic ones, by address.
    pub peers: Vec<PeerStatus>,
    /// The prefixes this node originates (its blocks, service ranges).
    pub originated: Vec<IpNet>,
    /// felix's kernel routes.
    pub routes: KernelRoutes,
}

impl RoutingStatus {
    /// Peers whose session is Established.
    pub fn established(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| p.state == State::Established)
            .count()
    }
}

/// Where a peering comes from, as calicoctl names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerType {
    /// The node-to-node mesh.
    Mesh,
    /// A BGPPeer for every node.
    Global,
    /// A BGPPeer for this node (by name or selector), or the reverse of
    /// one that selects this node as the peer.
    NodeSpecific,
    /// Accepted from a listen range, not configured.
    #[default]
    Dynamic,
}

impl PeerType {
    /// The name shown in tables and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Mesh => "mesh",
            PeerType::Global => "global",
            PeerType::NodeSpecific => "node-specific",
            PeerType::Dynamic => "dynamic",
        }
    }
}

/// One BGP peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's address.
    pub address: IpAddr,
    /// Its AS (configured, or announced by a dynamic peer); `None` when
    /// not known.
    pub asn: Option<u32>,
    /// Where the peering comes from.
    #[serde(rename = "type")]
    pub kind: PeerType,
    /// The session's RFC 4271 state. A peer held back (its password
    /// cannot be read) is `Idle`, with the reason in `info`.
    pub state: State,
    /// When the session reached Established (Unix seconds), while it is.
    pub since: Option<u64>,
    /// Prefixes accepted from the peer (its Adj-RIB-In).
    pub prefixes_received: usize,
    /// Prefixes advertised to it (its Adj-RIB-Out).
    pub prefixes_advertised: usize,
    /// The last error of the session, or why the peer is held back.
    pub info: Option<String>,
    /// Times the session has reached Established since the peer was
    /// configured: more than 1 means it was reset or flapped.
    #[serde(default)]
    pub established_count: u64,
    /// What of the peer's configuration does not take effect as written:
    /// BGPFilter rules that never match here (a rule on `interface`:
    /// manul exports no interface routes), filters that do not exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Prefixes the export would advertise that cannot be encoded for
    /// this session (not sent, not in `prefixes_advertised`).
    #[serde(default)]
    pub prefixes_unsendable: usize,
    /// Why, for the last one found (with its prefix).
    #[serde(default)]
    pub unsendable_reason: Option<String>,
    /// Malformed UPDATEs received from the peer, by RFC 7606 action.
    #[serde(default)]
    pub malformed: MalformedCounts,
}
