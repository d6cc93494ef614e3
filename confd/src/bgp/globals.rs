//! Node-wide BGP settings from the snapshot (pure).
//!
//! Precedence, as Calico: AS = the Node's `spec.bgp.asNumber`, else the
//! global BGPConfiguration's, else 64512. Listen port, communities and
//! prefix advertisements, bind mode: this node's BGPConfiguration
//! (`node.<name>`) when it sets them, else the global one. The mesh switch, its password
//! and restart time are global only (Calico ignores them per node).

use std::net::IpAddr;

use manul_datastore::asn::DEFAULT_AS_NUMBER;
use manul_datastore::resources::{BgpConfigurationSpec, BindMode, Node};

use super::duration::parse_go_duration;
use super::view::Globals;
use crate::snapshot::Snapshot;

/// The effective AS of `node` given the global config.
pub fn node_asn(node: Option<&Node>, global: Option<&BgpConfigurationSpec>) -> u32 {
    node.and_then(|n| n.spec.bgp.as_ref())
        .and_then(|b| b.as_number)
        .or_else(|| global.and_then(|g| g.as_number))
        .unwrap_or(DEFAULT_AS_NUMBER)
        .0
}

/// A node's BGP addresses (IPv4, IPv6); unparsable ones are `None`.
pub fn node_addresses(node: &Node) -> (Option<IpAddr>, Option<IpAddr>) {
    let Some(bgp) = node.spec.bgp.as_ref() else {
        return (None, None);
    };
    (
        bgp.ipv4_net().ok().flatten().map(|n| IpAddr::V4(n.addr())),
        bgp.ipv6_net().ok().flatten().map(|n| IpAddr::V6(n.addr())),
    )
}

/// Whether `node` is a route reflector (has a cluster ID).
pub fn cluster_id(node: &Node) -> Option<std::net::Ipv4Addr> {
    node.spec
        .bgp
        .as_ref()
        .and_then(|b| b.route_reflector_cluster_id().ok().flatten())
}

/// The global and node configs, node first, for per-field fallback.
pub fn configs<'a>(snap: &'a Snapshot, me: &str) -> [Option<&'a BgpConfigurationSpec>; 2] {
    [
        snap.node_bgp_config(me).map(|c| &c.spec),
        snap.global_bgp_config().map(|c| &c.spec),
    ]
}

/// Node-wide settings of node `me`.
pub fn derive_globals(snap: &Snapshot, me: &str) -> Globals {
    let global = snap.global_bgp_config().map(|c| &c.spec);
    let node = snap.node(me);
    let mut problems = Vec::new();
    let bgp = node.and_then(|n| n.spec.bgp.as_ref());
    let ipv4 = bgp.and_then(|b| match b.ipv4_net() {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "node {me}: bad ipv4Address {:?}: {e}",
                b.ipv4_address
            ));
            None
        }
    });
    let ipv6 = bgp.and_then(|b| match b.ipv6_net() {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "node {me}: bad ipv6Address {:?}: {e}",
                b.ipv6_address
            ));
            None
        }
    });
    let cluster_id = bgp.and_then(|b| match b.route_reflector_cluster_id() {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "node {me}: bad routeReflectorClusterID {:?}: {e}",
                b.route_reflector_cluster_id
            ));
            None
        }
    });
    let listen_port = configs(snap, me)
        .into_iter()
        .flatten()
        .map(|c| c.listen_port)
        .find(|p| *p != 0)
        .unwrap_or(179);
    // Calico's confd: `bind_mode` of the node, else global; NodeIP renders
    // `listen bgp address <node IP>` per family.
    let bind_node_ip = configs(snap, me)
        .into_iter()
        .flatten()
        .find_map(|c| c.bind_mode.clone())
        .is_some_and(|m| m == BindMode::NodeIp);
    let mesh_max_restart_time = global
        .and_then(|g| g.node_mesh_max_restart_time.as_deref())
        .and_then(|s| {
            let d = parse_go_duration(s);
            if d.is_none() {
                problems.push(format!("bad nodeMeshMaxRestartTime {s:?}"));
            }
            d
        });
    Globals {
        asn: node_asn(node, global),
        router_id: ipv4.map(|n| n.addr()),
        ipv4,
        ipv6,
        listen_port,
        bind_node_ip,
        mesh: global.is_none_or(|g| g.node_to_node_mesh_enabled()),
        cluster_id,
        mesh_password: global
            .and_then(|g| g.node_mesh_password.as_ref())
            .and_then(|p| p.secret_key_ref.clone()),
        mesh_max_restart_time,
        problems,
    }
}
