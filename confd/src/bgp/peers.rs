//! Which peers each source gives this node (pure): the mesh to one other
//! Node, or one BGPPeer. The deriver ([`super::deriver`]) recomputes only
//! the sources a change touches and merges by address.
//!
//! Calico's rules (its confd BIRD templates):
//! - **Mesh**: when the global `nodeToNodeMeshEnabled` is on (the default)
//!   every pair of nodes with BGP addresses peers over iBGP, per address
//!   family both have. Route reflectors (a `routeReflectorClusterID`) take
//!   no part in the mesh, neither as this node nor as the other.
//! - **One side passive**: between two Calico nodes only one side
//!   connects. The template does `if gt $peer_ip $node_ip then passive`,
//!   comparing the address *strings*; the same string comparison is used
//!   here, so exactly one side of each pair is passive and a manul node
//!   agrees with a calico-node on which. It applies to mesh peerings and
//!   to `peerSelector` peerings (both ends are nodes).
//! - **BGPPeer scope**: `node` = that node only; `nodeSelector` = the nodes
//!   it selects; neither = every node. **Targets**: `peerIP` (`ip`,
//!   `ip:port`, `[v6]:port`) with the peer's `asNumber`, or every Node
//!   `peerSelector` selects (not this one), at its addresses, with that
//!   node's AS.
//! - **Route reflection**: a node with a cluster ID treats each iBGP peer
//!   as a reflector client unless the peer is a node of the same cluster
//!   (`peerIP` peers carry no cluster ID, so they are clients).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use manul_datastore::Selector;
use manul_datastore::resources::{BgpConfigurationSpec, BgpPeer, NextHopMode, Node, SourceAddress};

use super::duration::parse_go_duration;
use super::globals::{cluster_id, node_addresses, node_asn};
use super::view::{FilterRef, Globals, PeerSource, PeerView};
use crate::snapshot::Snapshot;

/// The peers one source gives, by address.
pub type Contribution = BTreeMap<IpAddr, PeerView>;

/// Addresses of this node per family.
fn my_address(globals: &Globals, family_of: &IpAddr) -> Option<IpAddr> {
    match family_of {
        IpAddr::V4(_) => globals.ipv4.map(|n| IpAddr::V4(n.addr())),
        IpAddr::V6(_) => globals.ipv6.map(|n| IpAddr::V6(n.addr())),
    }
}

/// Calico's passive rule: passive when the peer's address string compares
/// greater than ours.
pub fn passive_towards(mine: &IpAddr, peer: &IpAddr) -> bool {
    peer.to_string() > mine.to_string()
}

fn base(address: IpAddr, asn: u32, source: PeerSource, globals: &Globals) -> PeerView {
    PeerView {
        address,
        port: 179,
        asn,
        local_asn: None,
        source,
        passive: false,
        password: None,
        source_address: my_address(globals, &address),
        route_reflector_client: false,
        next_hop: NextHopMode::Auto,
        ttl_security: None,
        max_restart_time: None,
        keepalive: None,
        allow_own_as: 0,
        reachable_by: None,
        filters: Vec::new(),
    }
}

/// The mesh peerings with `other` (not this node).
pub fn mesh(
    globals: &Globals,
    global_config: Option<&BgpConfigurationSpec>,
    name: &str,
    other: &Node,
) -> Contribution {
    let mut out = Contribution::new();
    if !globals.mesh || globals.cluster_id.is_some() || cluster_id(other).is_some() {
        return out;
    }
    let asn = node_asn(Some(other), global_config);
    let (v4, v6) = node_addresses(other);
    for peer in [v4, v6].into_iter().flatten() {
        let Some(mine) = my_address(globals, &peer) else {
            continue;
        };
        if mine == peer {
            continue;
        }
        let mut view = base(
            peer,
            asn,
            PeerSource::Mesh {
                node: name.to_owned(),
            },
            globals,
        );
        view.port = globals.listen_port;
        view.passive = passive_towards(&mine, &peer);
        view.password = globals.mesh_password.clone();
        view.max_restart_time = globals.mesh_max_restart_time;
        out.insert(peer, view);
    }
    out
}

/// How a BGPPeer applies to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Node,
    NodeSelector,
    Global,
}

impl Scope {
    fn source(self, peer: String, node: Option<String>) -> PeerSource {
        match self {
            Scope::Node => PeerSource::Node { peer, node },
            Scope::NodeSelector => PeerSource::NodeSelector { peer, node },
            Scope::Global => PeerSource::Global { peer, node },
        }
    }
}

/// How BGPPeer `peer` applies to node `me`, or `None`.
fn scope(me: &str, my_node: Option<&Node>, peer: &BgpPeer) -> Option<Scope> {
    let spec = &peer.spec;
    if !spec.node.is_empty() {
        return (spec.node == me).then_some(Scope::Node);
    }
    if !spec.node_selector.is_empty() {
        let selector = Selector::parse(&spec.node_selector).ok()?;
        let node = my_node?;
        return selector
            .matches(&node.metadata.labels)
            .then_some(Scope::NodeSelector);
    }
    Some(Scope::Global)
}

/// Parse `peerIP`: `ip`, `ip:port` or `[v6]:port`.
pub fn parse_peer_ip(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    s.parse::<SocketAddr>()
        .ok()
        .map(|sa| (sa.ip(), Some(sa.port())))
}

/// One address a BGPPeer points at: address, port, AS, and for a
/// `peerSelector` peering the selected node and its cluster ID.
type Target = (
    IpAddr,
    Option<u16>,
    u32,
    Option<String>,
    Option<std::net::Ipv4Addr>,
);

/// The peerings BGPPeer `name` gives node `me`; problems are appended.
pub fn bgp_peer(
    snap: &Snapshot,
    me: &str,
    globals: &Globals,
    name: &str,
    peer: &BgpPeer,
    problems: &mut Vec<String>,
) -> Contribution {
    let mut out = Contribution::new();
    let global_config = snap.global_bgp_config().map(|c| &c.spec);
    let Some(scope) = scope(me, snap.node(me), peer) else {
        return out;
    };
    let spec = &peer.spec;
    let mut targets: Vec<Target> = Vec::new();
    if !spec.peer_ip.is_empty() {
        let Some((ip, port)) = parse_peer_ip(&spec.peer_ip) else {
            problems.push(format!("BGPPeer {name}: bad peerIP {:?}", spec.peer_ip));
            return out;
        };
        let Some(asn) = spec.as_number else {
            problems.push(format!("BGPPeer {name}: peerIP without asNumber"));
            return out;
        };
        targets.push((ip, port, asn.0, None, None));
    } else if !spec.peer_selector.is_empty() {
        let selector = match Selector::parse(&spec.peer_selector) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("BGPPeer {name}: bad peerSelector: {e}"));
                return out;
            }
        };
        for (node_name, node) in snap.nodes() {
            if node_name == me || !selector.matches(&node.metadata.labels) {
                continue;
            }
            let asn = node_asn(Some(node), global_config);
            let (v4, v6) = node_addresses(node);
            for ip in [v4, v6].into_iter().flatten() {
                targets.push((ip, None, asn, Some(node_name.to_owned()), cluster_id(node)));
            }
        }
    } else {
        problems.push(format!("BGPPeer {name}: neither peerIP nor peerSelector"));
        return out;
    }
    for (ip, port, asn, node, peer_cluster) in targets {
        let mine = my_address(globals, &ip);
        if mine == Some(ip) {
            continue; // never peer with ourselves
        }
        let selected = node.is_some();
        let mut view = base(ip, asn, scope.source(name.to_owned(), node), globals);
        view.port = port.unwrap_or(179);
        view.local_asn = spec.local_as_number.map(|a| a.0);
        if selected {
            view.passive = mine.is_some_and(|m| passive_towards(&m, &ip));
        }
        view.password = spec
            .password
            .as_ref()
            .and_then(|p| p.secret_key_ref.clone());
        if spec.source_address() == SourceAddress::None {
            view.source_address = None;
        }
        view.next_hop = if spec.keep_original_next_hop {
            NextHopMode::Keep
        } else {
            spec.next_hop_mode()
        };
        view.ttl_security = spec.ttl_security;
        view.max_restart_time = duration(name, "maxRestartTime", &spec.max_restart_time, problems);
        view.keepalive = duration(name, "keepaliveTime", &spec.keepalive_time, problems);
        view.allow_own_as = spec
            .num_allowed_local_as_numbers
            .map(|n| n.clamp(0, 10) as u8)
            .unwrap_or(0);
        view.reachable_by = (!spec.reachable_by.is_empty())
            .then(|| spec.reachable_by.parse().ok())
            .flatten();
        view.filters = spec
            .filters
            .iter()
            .map(|f| FilterRef {
                name: f.clone(),
                spec: snap.filter(f).map(|r| r.spec.clone()),
            })
            .collect();
        for f in view.filters.iter().filter(|f| f.spec.is_none()) {
            problems.push(format!("BGPPeer {name}: no BGPFilter named {:?}", f.name));
        }
        view.route_reflector_client = match globals.cluster_id {
            Some(ours) => view.is_ibgp(globals) && peer_cluster != Some(ours),
            None => false,
        };
        out.insert(ip, view);
    }
    out
}

fn duration(
    peer: &str,
    field: &str,
    value: &Option<String>,
    problems: &mut Vec<String>,
) -> Option<std::time::Duration> {
    let s = value.as_deref()?;
    let d = parse_go_duration(s);
    if d.is_none() {
        problems.push(format!("BGPPeer {peer}: bad {field} {s:?}"));
    }
    d
}
