//! The node's BGP view: plain data, shaped so the node agent can turn it
//! into the speaker's configuration (`manul_bgp::speaker::SpeakerConfig`
//! and one `PeerConfig` per [`PeerView`]) without knowing Calico: router
//! ID, AS, listen port, bind mode and cluster ID map to the speaker;
//! address, port, AS, local AS, passive, source address, TTL security,
//! keepalive, restart time, allowed own-AS count, reflector client and
//! next-hop mode map to a peer. What the
//! speaker cannot take from here — passwords (Kubernetes secret references,
//! resolved by the agent) and BGPFilter rules (compiled to the speaker's
//! policy) — is carried as references.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use manul_datastore::resources::{BgpFilterSpec, NextHopMode, SecretKeySelector};

/// A BGP community (RFC 1997) or large community (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// `aa:nn`.
    Standard(u16, u16),
    /// `aa:nn:mm`.
    Large(u32, u32, u32),
}

impl Community {
    /// Parse Calico's `aa:nn` / `aa:nn:mm` form.
    pub fn parse(s: &str) -> Option<Community> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        match parts.as_slice() {
            [a, b] => Some(Community::Standard(a.parse().ok()?, b.parse().ok()?)),
            [a, b, c] => Some(Community::Large(
                a.parse().ok()?,
                b.parse().ok()?,
                c.parse().ok()?,
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

/// Node-wide settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Globals {
    /// Effective AS: the Node's, else the global BGPConfiguration's, else 64512.
    pub asn: u32,
    /// The router ID: the node's IPv4 address (none: no BGP on this node).
    pub router_id: Option<Ipv4Addr>,
    /// The node's IPv4 address and subnet.
    pub ipv4: Option<Ipv4Net>,
    /// The node's IPv6 address and subnet.
    pub ipv6: Option<Ipv6Net>,
    /// The BGP port (node config, else global, else 179).
    pub listen_port: u16,
    /// `bindMode: NodeIP` (node config, else global): listen on the node's
    /// addresses only, not the wildcard.
    pub bind_node_ip: bool,
    /// Whether the node-to-node mesh is on (global config; default true).
    /// A route reflector never meshes, whatever this says.
    pub mesh: bool,
    /// Set: this node is a route reflector with this cluster ID.
    pub cluster_id: Option<Ipv4Addr>,
    /// Password of mesh sessions (a secret reference).
    pub mesh_password: Option<SecretKeySelector>,
    /// Graceful-restart time of mesh sessions.
    pub mesh_max_restart_time: Option<Duration>,
    /// Problems found while deriving (bad addresses, unknown community names…).
    pub problems: Vec<String>,
}

/// Where a peering comes from; the order is the precedence when two
/// sources name the same peer address (the greater wins).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerSource {
    /// The node-to-node mesh, to this Node.
    Mesh {
        /// The other node.
        node: String,
    },
    /// The reverse of a BGPPeer that selects this node as a *peer* (its
    /// `peerSelector` matches this node, or its `peerIP` and `asNumber`
    /// are this node's): this node peers back with the nodes the BGPPeer
    /// applies to, as Calico does for symmetry. Any forward peering to
    /// the same address wins.
    Reverse {
        /// The BGPPeer's name.
        peer: String,
        /// The node peered back with.
        node: String,
    },
    /// A BGPPeer that applies to every node (no `node`, no `nodeSelector`).
    Global {
        /// The BGPPeer's name.
        peer: String,
        /// The selected node, for a `peerSelector` peering.
        node: Option<String>,
    },
    /// A BGPPeer whose `nodeSelector` selects this node.
    NodeSelector {
        /// The BGPPeer's name.
        peer: String,
        /// The selected node, for a `peerSelector` peering.
        node: Option<String>,
    },
    /// A BGPPeer naming this node (`node`).
    Node {
        /// The BGPPeer's name.
        peer: String,
        /// The selected node, for a `peerSelector` peering.
        node: Option<String>,
    },
}

impl PeerSource {
    /// The BGPPeer's name, unless this is the mesh.
    pub fn bgp_peer(&self) -> Option<&str> {
        match self {
            PeerSource::Mesh { .. } => None,
            PeerSource::Reverse { peer, .. }
            | PeerSource::Global { peer, .. }
            | PeerSource::NodeSelector { peer, .. }
            | PeerSource::Node { peer, .. } => Some(peer),
        }
    }
}

/// A BGPFilter a peer uses; `spec` is `None` while no such filter exists.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterRef {
    /// The filter's name.
    pub name: String,
    /// Its rules.
    pub spec: Option<BgpFilterSpec>,
}

/// One peer of this node.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    /// The peer's address.
    pub address: IpAddr,
    /// Its BGP port.
    pub port: u16,
    /// Its AS.
    pub asn: u32,
    /// Our AS towards it, if not [`Globals::asn`].
    pub local_asn: Option<u32>,
    /// Where the peering comes from.
    pub source: PeerSource,
    /// Wait for the peer to connect (one side of a Calico node pair).
    pub passive: bool,
    /// TCP-MD5 password, as a secret reference.
    pub password: Option<SecretKeySelector>,
    /// Bind this address (the node's own, of the peer's family).
    pub source_address: Option<IpAddr>,
    /// We reflect to it (RFC 4456): we are a reflector and it is an iBGP
    /// peer outside our cluster.
    pub route_reflector_client: bool,
    /// `nextHopMode` (`keepOriginalNextHop` reads as Keep).
    pub next_hop: NextHopMode,
    /// GTSM hop count (RFC 5082).
    pub ttl_security: Option<u8>,
    /// Graceful-restart time we announce (BGPPeer `maxRestartTime`, the
    /// mesh's `nodeMeshMaxRestartTime`); `None`: BIRD's 120 s.
    pub max_restart_time: Option<Duration>,
    /// Keepalive interval.
    pub keepalive: Option<Duration>,
    /// Times our AS may appear in received paths.
    pub allow_own_as: u8,
    /// Gateway the peer is reached by.
    pub reachable_by: Option<IpAddr>,
    /// BGPFilters, in order.
    pub filters: Vec<FilterRef>,
}

impl PeerView {
    /// Whether this is an iBGP session (same AS on both ends).
    pub fn is_ibgp(&self, globals: &Globals) -> bool {
        self.asn == self.local_asn.unwrap_or(globals.asn)
    }
}

/// Why a prefix is advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixOrigin {
    /// A confirmed block affine to this node.
    Block,
    /// An address this node uses from another node's block (a /32 or /128).
    Borrowed,
    /// A Service address range of the global BGPConfiguration
    /// (`serviceClusterIPs`, `serviceExternalIPs`,
    /// `serviceLoadBalancerIPs`), advertised by every node.
    Service,
}

/// A prefix to advertise.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixView {
    /// Why.
    pub origin: PrefixOrigin,
    /// Communities to attach (from `prefixAdvertisements`).
    pub communities: Vec<Community>,
}

/// Everything the speaker needs to know about this node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeBgpView {
    /// Node-wide settings.
    pub globals: Globals,
    /// Peers by address.
    pub peers: BTreeMap<IpAddr, PeerView>,
    /// Prefixes to advertise.
    pub prefixes: BTreeMap<IpNet, PrefixView>,
}
