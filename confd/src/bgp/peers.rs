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
//!   agrees with a calico-node on which. It applies to every peering
//!   whose both ends are nodes: mesh, `peerSelector`, reverse, and a
//!   `peerIP` that is a node's address.
//! - **BGPPeer scope**: `node` = that node only; `nodeSelector` = the nodes
//!   it selects; neither = every node. **Targets**: `peerIP` (`ip`,
//!   `ip:port`, `[v6]:port`) with the peer's `asNumber`, or every Node
//!   `peerSelector` selects (not this one), at its addresses, with that
//!   node's AS.
//! - **Reverse peerings**: a node that a BGPPeer selects as a *peer*
//!   (by `peerSelector`, or by `peerIP` + `asNumber`) peers back with the
//!   nodes the BGPPeer applies to, so one BGPPeer makes both ends of each
//!   session (see `reverse`). A forward peering to the same address wins.
//! - **Route reflection**: a node with a cluster ID treats each iBGP peer
//!   as a reflector client unless the peer is a node of the same cluster
//!   (`peerIP` peers carry no cluster ID, so they are clients).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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

/// One address a BGPPeer points at.
#[derive(Debug, Clone)]
struct Target {
    ip: IpAddr,
    port: Option<u16>,
    asn: u32,
    /// The node at that address (a `peerSelector` or reverse peering).
    node: Option<String>,
    /// That node's route-reflector cluster ID.
    cluster: Option<Ipv4Addr>,
    /// The address is a node's (Calico's `calico_node`): one side passive.
    calico_node: bool,
}

/// Node `name`'s addresses of the wanted families as targets.
fn node_targets(
    name: &str,
    node: &Node,
    global_config: Option<&BgpConfigurationSpec>,
    v4: bool,
    v6: bool,
) -> impl Iterator<Item = Target> {
    let asn = node_asn(Some(node), global_config);
    let cluster = cluster_id(node);
    let (a4, a6) = node_addresses(node);
    [a4.filter(|_| v4), a6.filter(|_| v6)]
        .into_iter()
        .flatten()
        .map(move |ip| Target {
            ip,
            port: None,
            asn,
            node: Some(name.to_owned()),
            cluster,
            calico_node: true,
        })
}

/// The peerings BGPPeer `name` gives node `me`: the forward ones (the
/// BGPPeer applies to `me`) and the reverse ones (it selects `me` as a
/// peer), forward first per address. Problems are appended.
pub fn bgp_peer(
    snap: &Snapshot,
    me: &str,
    globals: &Globals,
    name: &str,
    peer: &BgpPeer,
    problems: &mut Vec<String>,
) -> Contribution {
    let mut out = forward(snap, me, globals, name, peer, problems);
    let mut more = Vec::new();
    for (ip, view) in reverse(snap, me, globals, name, peer, &mut more) {
        out.entry(ip).or_insert(view);
    }
    for p in more {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    out
}

/// The peerings of node `me` to the targets of a BGPPeer that applies to it.
fn forward(
    snap: &Snapshot,
    me: &str,
    globals: &Globals,
    name: &str,
    peer: &BgpPeer,
    problems: &mut Vec<String>,
) -> Contribution {
    let global_config = snap.global_bgp_config().map(|c| &c.spec);
    let Some(scope) = scope(me, snap.node(me), peer) else {
        return Contribution::new();
    };
    let spec = &peer.spec;
    let mut targets: Vec<Target> = Vec::new();
    if !spec.peer_ip.is_empty() {
        let Some((ip, port)) = parse_peer_ip(&spec.peer_ip) else {
            problems.push(format!("BGPPeer {name}: bad peerIP {:?}", spec.peer_ip));
            return Contribution::new();
        };
        let Some(asn) = spec.as_number else {
            problems.push(format!("BGPPeer {name}: peerIP without asNumber"));
            return Contribution::new();
        };
        let calico_node = snap.nodes().any(|(_, n)| {
            let (a4, a6) = node_addresses(n);
            a4 == Some(ip) || a6 == Some(ip)
        });
        targets.push(Target {
            ip,
            port,
            asn: asn.0,
            node: None,
            cluster: None,
            calico_node,
        });
    } else if !spec.peer_selector.is_empty() {
        let selector = match Selector::parse(&spec.peer_selector) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("BGPPeer {name}: bad peerSelector: {e}"));
                return Contribution::new();
            }
        };
        for (node_name, node) in snap.nodes() {
            if node_name != me && selector.matches(&node.metadata.labels) {
                targets.extend(node_targets(node_name, node, global_config, true, true));
            }
        }
    } else {
        problems.push(format!("BGPPeer {name}: neither peerIP nor peerSelector"));
        return Contribution::new();
    }
    let mut out = Contribution::new();
    for t in targets {
        let source = scope.source(name.to_owned(), t.node.clone());
        let local_asn = spec.local_as_number.map(|a| a.0);
        if let Some(view) = peering(snap, globals, (name, peer), source, local_asn, &t, problems) {
            out.insert(t.ip, view);
        }
    }
    out
}

/// Calico's reverse peerings: when BGPPeer `peer` selects node `me` as a
/// peer — its `peerSelector` matches `me` (both families), or its `peerIP`
/// is one of `me`'s addresses and its `asNumber` (else the global AS) is
/// `me`'s AS (that family only) — `me` peers back with every node the
/// BGPPeer applies to (`node`, `nodeSelector`, else all nodes). This is
/// how a route reflector, selected by its clients' BGPPeer, peers with
/// them without a second BGPPeer. The BGPPeer's session options apply;
/// its `localASNumber` does not (it is the other end's).
fn reverse(
    snap: &Snapshot,
    me: &str,
    globals: &Globals,
    name: &str,
    peer: &BgpPeer,
    problems: &mut Vec<String>,
) -> Contribution {
    let mut out = Contribution::new();
    let spec = &peer.spec;
    let global_config = snap.global_bgp_config().map(|c| &c.spec);
    let Some(my_node) = snap.node(me) else {
        return out;
    };
    let (v4, v6) = if !spec.peer_selector.is_empty() {
        match Selector::parse(&spec.peer_selector) {
            Ok(s) if s.matches(&my_node.metadata.labels) => (true, true),
            _ => return out,
        }
    } else {
        let Some((ip, port)) = parse_peer_ip(&spec.peer_ip) else {
            return out;
        };
        let asn = spec
            .as_number
            .map(|a| a.0)
            .unwrap_or_else(|| node_asn(None, global_config));
        let mine = my_address(globals, &ip) == Some(ip);
        if !mine || asn != globals.asn || port.is_some_and(|p| p != globals.listen_port) {
            return out;
        }
        (ip.is_ipv4(), ip.is_ipv6())
    };
    // The nodes the BGPPeer applies to: `node`, else `nodeSelector`, else all.
    let selector = if spec.node.is_empty() && !spec.node_selector.is_empty() {
        match Selector::parse(&spec.node_selector) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("BGPPeer {name}: bad nodeSelector: {e}"));
                return out;
            }
        }
    } else {
        None
    };
    let applies_to = |n: &str, node: &Node| {
        if !spec.node.is_empty() {
            n == spec.node
        } else {
            selector
                .as_ref()
                .is_none_or(|s| s.matches(&node.metadata.labels))
        }
    };
    for (node_name, node) in snap.nodes() {
        if node_name == me || !applies_to(node_name, node) {
            continue;
        }
        for t in node_targets(node_name, node, global_config, v4, v6) {
            let source = PeerSource::Reverse {
                peer: name.to_owned(),
                node: node_name.to_owned(),
            };
            if let Some(view) = peering(snap, globals, (name, peer), source, None, &t, problems) {
                out.insert(t.ip, view);
            }
        }
    }
    out
}

/// The peering to target `t` with BGPPeer `name`'s session options;
/// `None` for our own address.
fn peering(
    snap: &Snapshot,
    globals: &Globals,
    (name, peer): (&str, &BgpPeer),
    source: PeerSource,
    local_asn: Option<u32>,
    t: &Target,
    problems: &mut Vec<String>,
) -> Option<PeerView> {
    let spec = &peer.spec;
    let mine = my_address(globals, &t.ip);
    if mine == Some(t.ip) {
        return None; // never peer with ourselves
    }
    let mut view = base(t.ip, t.asn, source, globals);
    view.port = t.port.unwrap_or(179);
    view.local_asn = local_asn;
    if t.calico_node {
        view.passive = mine.is_some_and(|m| passive_towards(&m, &t.ip));
    }
    view.password = spec
        .password
        .as_ref()
        .and_then(|p| p.secret_key_ref.clone());
    if spec.source_address() == SourceAddress::None {
        view.source_address = None;
    }
    // Calico's confd: `nextHopMode` Self / Keep render `next hop self` /
    // `next hop keep`, Auto neither (BIRD's default); the older
    // `keepOriginalNextHop` renders `next hop keep` for eBGP peers only
    // (the peer's AS differs from ours towards it).
    view.next_hop = match spec.next_hop_mode.clone() {
        Some(mode) => mode,
        None if spec.keep_original_next_hop && !view.is_ibgp(globals) => NextHopMode::Keep,
        None => NextHopMode::Auto,
    };
    view.ttl_security = spec.ttl_security;
    view.max_restart_time = duration(name, "maxRestartTime", &spec.max_restart_time, problems);
    view.keepalive = duration(name, "keepaliveTime", &spec.keepalive_time, problems);
    view.allow_own_as = spec
        .num_allowed_local_as_numbers
        .map(|n| n.clamp(0, 10) as u8)
        .unwrap_or(0);
    // The reverse side's route is the other end's business.
    if !matches!(view.source, PeerSource::Reverse { .. }) {
        view.reachable_by = reachable_by(name, &spec.reachable_by, t, problems);
    }
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
        Some(ours) => view.is_ibgp(globals) && t.cluster != Some(ours),
        None => false,
    };
    Some(view)
}

/// The gateway of `reachableBy` for target `t`: only a `peerIP` target
/// (Calico's validator refuses it without `peerIP`), of the peer's family;
/// anything else is a problem and writes no route.
fn reachable_by(peer: &str, value: &str, t: &Target, problems: &mut Vec<String>) -> Option<IpAddr> {
    if value.is_empty() {
        return None;
    }
    let mut refuse = |why: String| {
        let p =
            format!("BGPPeer {peer}: reachableBy {value:?} {why}; no route to the peer is written");
        if !problems.contains(&p) {
            problems.push(p);
        }
        None
    };
    let Ok(gateway) = value.parse::<IpAddr>() else {
        return refuse("is not an IP address".into());
    };
    if t.node.is_some() {
        return refuse("needs peerIP (it routes to one address)".into());
    }
    if gateway.is_ipv4() != t.ip.is_ipv4() {
        return refuse(format!("is not of the peer {}'s address family", t.ip));
    }
    Some(gateway)
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
