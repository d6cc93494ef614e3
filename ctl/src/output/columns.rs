//! The table columns of each kind (`wide` adds more). Values are the
//! effective ones (defaults applied), so a pool stored without `blockSize`
//! shows 26.

use manul_datastore::resources::{
    BgpConfiguration, BgpFilter, BgpPeer, IpPool, Node, RawResource, WorkloadEndpoint,
};
use manul_datastore::{AsNumber, ResourceKind};
use serde_json::Value;

use crate::object::Object;

/// What some columns need beyond the object.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// The global AS number (nodes without their own show it in brackets).
    pub global_as: Option<AsNumber>,
    /// Show a NAMESPACE column (namespaced kinds across namespaces).
    pub namespace_column: bool,
}

/// A table of objects (all of one kind): headers and rows.
pub type Table = (Vec<&'static str>, Vec<Vec<String>>);

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn ip_pool(p: &IpPool, wide: bool) -> Vec<String> {
    let s = &p.spec;
    let mut row = vec![
        p.name().to_owned(),
        s.cidr.to_string(),
        s.block_size().to_string(),
        s.ipip_mode().to_string(),
        s.vxlan_mode().to_string(),
        s.nat_outgoing.to_string(),
        s.disabled.to_string(),
        s.node_selector().to_owned(),
    ];
    if wide {
        let uses: Vec<String> = s.allowed_uses().iter().map(ToString::to_string).collect();
        row.extend([
            s.disable_bgp_export.to_string(),
            uses.join(","),
            s.assignment_mode().to_string(),
        ]);
    }
    row
}

fn bgp_peer(p: &BgpPeer, wide: bool) -> Vec<String> {
    let s = &p.spec;
    let peer = if s.peer_selector.is_empty() {
        s.peer_ip.clone()
    } else {
        format!("selector: {}", s.peer_selector)
    };
    let node = if !s.node.is_empty() {
        s.node.clone()
    } else if !s.node_selector.is_empty() {
        format!("selector: {}", s.node_selector)
    } else {
        "(global)".to_owned()
    };
    let asn = match s.as_number {
        Some(a) => a.to_string(),
        None if !s.peer_selector.is_empty() => "(from nodes)".to_owned(),
        None => String::new(),
    };
    let mut row = vec![p.name().to_owned(), peer, node, asn];
    if wide {
        let password = s
            .password
            .as_ref()
            .and_then(|p| p.secret_key_ref.as_ref())
            .map(|r| format!("{}/{}", r.name, r.key));
        row.extend([
            opt(s.local_as_number),
            s.source_address().to_string(),
            s.next_hop_mode().to_string(),
            s.filters.join(","),
            opt(password),
            opt(s.max_restart_time.clone()),
            opt(s.keepalive_time.clone()),
            opt(s.ttl_security),
        ]);
    }
    row
}

fn bgp_configuration(c: &BgpConfiguration, wide: bool) -> Vec<String> {
    let s = &c.spec;
    let cidrs = |l: &[manul_datastore::resources::ServiceIpBlock]| {
        l.iter()
            .map(|b| b.cidr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut row = vec![
        c.name().to_owned(),
        s.log_severity_screen.clone(),
        s.node_to_node_mesh_enabled().to_string(),
        opt(s.as_number),
    ];
    if wide {
        let communities: Vec<String> = s
            .communities
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        row.extend([
            s.listen_port().to_string(),
            s.bind_mode().to_string(),
            cidrs(&s.service_cluster_ips),
            cidrs(&s.service_external_ips),
            cidrs(&s.service_load_balancer_ips),
            communities.join(","),
        ]);
    }
    row
}

fn bgp_filter(f: &BgpFilter) -> Vec<String> {
    let s = &f.spec;
    vec![
        f.name().to_owned(),
        s.export_v4.len().to_string(),
        s.import_v4.len().to_string(),
        s.export_v6.len().to_string(),
        s.import_v6.len().to_string(),
    ]
}

fn node(n: &Node, wide: bool, extra: &Extra) -> Vec<String> {
    let bgp = n.spec.bgp.clone().unwrap_or_default();
    let asn = match (bgp.as_number, extra.global_as) {
        (Some(a), _) => a.to_string(),
        (None, Some(g)) if n.spec.bgp.is_some() => format!("({g})"),
        _ => String::new(),
    };
    let mut row = vec![
        n.name().to_owned(),
        asn,
        bgp.ipv4_address.clone(),
        bgp.ipv6_address.clone(),
    ];
    if wide {
        row.extend([
            bgp.route_reflector_cluster_id.clone(),
            bgp.ipv4_ipip_tunnel_addr.clone(),
            n.spec.ipv4_vxlan_tunnel_addr.clone(),
        ]);
    }
    row
}

fn workload_endpoint(w: &WorkloadEndpoint, wide: bool, extra: &Extra) -> Vec<String> {
    let s = &w.spec;
    let nets: Vec<String> = s.ip_networks.iter().map(ToString::to_string).collect();
    let mut row = Vec::new();
    if extra.namespace_column {
        row.push(w.metadata.namespace.clone());
    }
    row.extend([
        w.name().to_owned(),
        s.workload.clone(),
        s.node.clone(),
        nets.join(","),
        s.interface_name.clone(),
    ]);
    if wide {
        row.extend([s.container_id.clone(), s.mac.clone(), s.profiles.join(",")]);
    }
    row
}

/// A string field of a raw object's spec.
fn spec_str(r: &RawResource, field: &str) -> String {
    match r.spec.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// A list field of a raw object's spec, comma-separated.
fn spec_list(r: &RawResource, field: &str) -> String {
    match r.spec.get(field) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// A kind stored raw: the columns calicoctl shows for it.
fn raw(kind: ResourceKind, r: &RawResource, wide: bool, extra: &Extra) -> Vec<String> {
    let mut row = Vec::new();
    if extra.namespace_column && kind.namespaced() {
        row.push(r.metadata.namespace.clone());
    }
    row.push(r.metadata.name.clone());
    match kind {
        ResourceKind::NetworkPolicy | ResourceKind::GlobalNetworkPolicy if wide => {
            row.extend([spec_str(r, "order"), spec_str(r, "selector")]);
        }
        ResourceKind::NetworkSet | ResourceKind::GlobalNetworkSet if wide => {
            row.push(spec_list(r, "nets"));
        }
        ResourceKind::HostEndpoint => {
            row.push(spec_str(r, "node"));
            if wide {
                row.extend([
                    spec_str(r, "interfaceName"),
                    spec_list(r, "expectedIPs"),
                    spec_list(r, "profiles"),
                ]);
            }
        }
        _ => {}
    }
    row
}

/// The headers of `kind`'s table.
fn headers(sample: &Object, wide: bool, extra: &Extra) -> Vec<&'static str> {
    let (mut base, more): (Vec<&str>, &[&str]) = match sample {
        Object::IpPool(_) => (
            vec![
                "NAME",
                "CIDR",
                "BLOCKSIZE",
                "IPIP",
                "VXLAN",
                "NAT",
                "DISABLED",
                "SELECTOR",
            ],
            &["DISABLEBGPEXPORT", "ALLOWEDUSES", "ASSIGNMENTMODE"],
        ),
        Object::BgpPeer(_) => (
            vec!["NAME", "PEERIP", "NODE", "ASN"],
            &[
                "LOCALASN",
                "SOURCEADDRESS",
                "NEXTHOPMODE",
                "FILTERS",
                "PASSWORD",
                "MAXRESTARTTIME",
                "KEEPALIVETIME",
                "TTLSECURITY",
            ],
        ),
        Object::BgpConfiguration(_) => (
            vec!["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
            &[
                "LISTENPORT",
                "BINDMODE",
                "CLUSTERIPS",
                "EXTERNALIPS",
                "LOADBALANCERIPS",
                "COMMUNITIES",
            ],
        ),
        Object::BgpFilter(_) => (
            vec!["NAME", "EXPORTV4", "IMPORTV4", "EXPORTV6", "IMPORTV6"],
            &[],
        ),
        Object::Node(_) => (
            vec!["NAME", "ASN", "IPV4", "IPV6"],
            &["RRCLUSTERID", "IPIPTUNNELADDR", "VXLANTUNNELADDR"],
        ),
        Object::WorkloadEndpoint(_) => {
            let mut h = vec!["NAME", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE"];
            if extra.namespace_column {
                h.insert(0, "NAMESPACE");
            }
            (h, &["CONTAINERID", "MAC", "PROFILES"])
        }
        Object::Raw(kind, _) => {
            let (mut h, more): (Vec<&str>, &[&str]) = match kind {
                ResourceKind::NetworkPolicy | ResourceKind::GlobalNetworkPolicy => {
                    (vec!["NAME"], &["ORDER", "SELECTOR"])
                }
                ResourceKind::NetworkSet | ResourceKind::GlobalNetworkSet => {
                    (vec!["NAME"], &["NETS"])
                }
                ResourceKind::HostEndpoint => {
                    (vec!["NAME", "NODE"], &["INTERFACE", "IPS", "PROFILES"])
                }
                _ => (vec!["NAME"], &[]),
            };
            if extra.namespace_column && kind.namespaced() {
                h.insert(0, "NAMESPACE");
            }
            (h, more)
        }
    };
    if wide {
        base.extend_from_slice(more);
    }
    base
}

/// The table of `objects` (all of one kind; empty gives an empty table).
pub fn table(objects: &[&Object], wide: bool, extra: &Extra) -> Table {
    let Some(first) = objects.first() else {
        return (Vec::new(), Vec::new());
    };
    let rows = objects
        .iter()
        .map(|o| match o {
            Object::IpPool(p) => ip_pool(p, wide),
            Object::BgpPeer(p) => bgp_peer(p, wide),
            Object::BgpConfiguration(c) => bgp_configuration(c, wide),
            Object::BgpFilter(f) => bgp_filter(f),
            Object::Node(n) => node(n, wide, extra),
            Object::WorkloadEndpoint(w) => workload_endpoint(w, wide, extra),
            Object::Raw(kind, r) => raw(*kind, r, wide, extra),
        })
        .collect();
    (headers(first, wide, extra), rows)
}
