//! From confd's snapshot to felix's [`Inputs`]: this node's confirmed
//! blocks and workloads, the pools' encapsulation modes, this node's
//! subnets (for `CrossSubnet`) and every node's VXLAN tunnel address.
//! Also the eBPF dataplane's endpoints ([`endpoints`]) and host addresses
//! ([`hosts`]).
//!
//! Remote prefixes come from two places, as in Calico:
//!
//! - in a **VXLAN pool** (`vxlanMode` `Always` or `CrossSubnet`) felix
//!   computes them itself from the IPAM blocks ([`vxlan_remote`], Calico's
//!   `L3RouteResolver`): each remote block via the node it is affine to,
//!   each address another node holds in a block (borrowed) via that node.
//!   Prefixes BGP learned in such a pool are dropped, as Calico's BIRD
//!   never programs them ("VXLAN routes are handled by Felix"). This works
//!   with or without BGP: a VXLAN-only cluster has no BGP at all;
//! - in any other pool, from the BGP speaker, passed in by the caller.
//!
//! Prefixes BGP learned inside a **Service address range** of the global
//! BGPConfiguration (`serviceClusterIPs`, `serviceExternalIPs`,
//! `serviceLoadBalancerIPs`) are dropped too, the ranges themselves and
//! anything inside them: every node advertises them, and Calico's
//! `calico_kernel_programming` filter rejects them (its `/rejectcidrs`),
//! so kube-proxy on the node that receives the traffic handles it instead
//! of a route sending it to another node.
//!
//! Either way the next hops are node addresses; [`crate::desired`] turns
//! them into VXLAN routes via the node's tunnel address (or, for
//! `CrossSubnet` within this node's subnet, plain routes via the node).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_confd::Snapshot;
use manul_confd::bgp::prefixes::service_ranges;
use manul_datastore::resources::{IpipMode, VxlanMode};

use crate::desired::{Encap, Inputs, Pool, Workload};
use crate::ebpf::entries::{Endpoint, Hosts, parse_mac};

fn ipip(mode: IpipMode) -> Encap {
    match mode {
        IpipMode::Never => Encap::Never,
        IpipMode::Always => Encap::Always,
        IpipMode::CrossSubnet => Encap::CrossSubnet,
        // Validation refuses other values; route such a pool plainly.
        IpipMode::Other(_) => Encap::Never,
    }
}

fn vxlan(mode: VxlanMode) -> Encap {
    match mode {
        VxlanMode::Never => Encap::Never,
        VxlanMode::Always => Encap::Always,
        VxlanMode::CrossSubnet => Encap::CrossSubnet,
        VxlanMode::Other(_) => Encap::Never,
    }
}

/// Whether this kernel can make IPIP tunnels (the `ipip` module is loaded
/// or built in).
pub fn ipip_available() -> bool {
    std::path::Path::new("/sys/module/ipip").exists()
}

/// Whether `mode` makes a pool a VXLAN pool.
fn is_vxlan(mode: VxlanMode) -> bool {
    matches!(mode, VxlanMode::Always | VxlanMode::CrossSubnet)
}

/// The pool holding `prefix` (the longest match) is a VXLAN pool.
fn in_vxlan_pool(snap: &Snapshot, prefix: &IpNet) -> bool {
    snap.pools()
        .map(|(_, p)| &p.spec)
        .filter(|p| p.cidr.contains(prefix))
        .max_by_key(|p| p.cidr.prefix_len())
        .is_some_and(|p| is_vxlan(p.vxlan_mode()))
}

/// Node `name`'s address of `prefix`'s family (its Node's BGP address).
fn node_address(snap: &Snapshot, name: &str, prefix: &IpNet) -> Option<IpAddr> {
    let bgp = snap.node(name)?.spec.bgp.as_ref()?;
    match prefix {
        IpNet::V4(_) => Some(IpAddr::V4(bgp.ipv4_net().ok()??.addr())),
        IpNet::V6(_) => Some(IpAddr::V6(bgp.ipv6_net().ok()??.addr())),
    }
}

/// The remote prefixes of VXLAN pools, from the IPAM blocks, with the
/// address of the node holding each (Calico's felix `routesFromBlock`):
/// a block via its affine node, an address another node holds in a block
/// via that node (a /32 or /128). This node's own are left out, and so
/// are those of nodes whose address is not known.
pub fn vxlan_remote(snap: &Snapshot, me: &str) -> BTreeMap<IpNet, Vec<IpAddr>> {
    let mut out = BTreeMap::new();
    for (cidr, owners) in snap.blocks() {
        if !in_vxlan_pool(snap, &cidr) {
            continue;
        }
        let host = owners.host.as_deref().map(|h| (cidr, h));
        let others = owners
            .others
            .iter()
            .map(|(ip, node)| (IpNet::from(*ip), node.as_str()));
        for (prefix, node) in host.into_iter().chain(others) {
            if node == me {
                continue;
            }
            if let Some(ip) = node_address(snap, node, &prefix) {
                out.insert(prefix, vec![ip]);
            }
        }
    }
    out
}

/// Felix's inputs for node `me`; `remote`: the prefixes BGP learned (only
/// those outside VXLAN pools and outside the Service ranges are used).
pub fn inputs(
    snap: &Snapshot,
    me: &str,
    mut remote: BTreeMap<IpNet, Vec<IpAddr>>,
    ipip_available: bool,
) -> Inputs {
    let services = service_ranges(snap, None);
    remote.retain(|prefix, _| {
        !in_vxlan_pool(snap, prefix) && !services.iter().any(|s| s.contains(prefix))
    });
    remote.extend(vxlan_remote(snap, me));
    let mut local_subnets = Vec::new();
    if let Some(bgp) = snap.node(me).and_then(|n| n.spec.bgp.as_ref()) {
        if let Ok(Some(v4)) = bgp.ipv4_net() {
            local_subnets.push(IpNet::V4(v4.trunc()));
        }
        if let Ok(Some(v6)) = bgp.ipv6_net() {
            local_subnets.push(IpNet::V6(v6.trunc()));
        }
    }
    let vxlan_tunnels = snap
        .nodes()
        .flat_map(|(_, n)| {
            let bgp = n.spec.bgp.as_ref();
            let v4 = bgp
                .and_then(|b| b.ipv4_net().ok().flatten())
                .and_then(|ip| {
                    let t: std::net::Ipv4Addr = n.spec.ipv4_vxlan_tunnel_addr.parse().ok()?;
                    Some((IpAddr::V4(ip.addr()), IpAddr::V4(t)))
                });
            let v6 = bgp
                .and_then(|b| b.ipv6_net().ok().flatten())
                .and_then(|ip| {
                    let t: std::net::Ipv6Addr = n.spec.ipv6_vxlan_tunnel_addr.parse().ok()?;
                    Some((IpAddr::V6(ip.addr()), IpAddr::V6(t)))
                });
            [v4, v6].into_iter().flatten()
        })
        .collect();
    Inputs {
        local_blocks: snap.confirmed_blocks().collect(),
        workloads: snap
            .workloads()
            .filter(|w| !w.spec.interface_name.is_empty())
            .map(|w| Workload {
                interface: w.spec.interface_name.clone(),
                addresses: w.spec.ip_networks.clone(),
            })
            .collect(),
        remote,
        pools: snap
            .pools()
            .map(|(name, p)| Pool {
                name: name.to_owned(),
                cidr: p.spec.cidr,
                ipip: ipip(p.spec.ipip_mode()),
                vxlan: vxlan(p.spec.vxlan_mode()),
                nat_outgoing: p.spec.nat_outgoing,
            })
            .collect(),
        local_subnets,
        vxlan_tunnels,
        ipip_available,
        peer_routes: BTreeMap::new(),
    }
}

/// The eBPF dataplane's endpoints: the workloads with a host-side
/// interface and a MAC (one without a valid `mac` is left out: the
/// programs could not address packets to it; its traffic takes the
/// kernel's path).
pub fn endpoints(snap: &Snapshot) -> Vec<Endpoint> {
    snap.workloads()
        .filter(|w| !w.spec.interface_name.is_empty())
        .filter_map(|w| {
            Some(Endpoint {
                interface: w.spec.interface_name.clone(),
                addresses: w.spec.ip_networks.iter().map(|n| n.addr()).collect(),
                mac: parse_mac(&w.spec.mac)?,
            })
        })
        .collect()
}

/// Every node's addresses (its Node's `bgp.ipv4Address`, `ipv6Address`
/// and VXLAN tunnel addresses), split into node `me`'s and the others'.
pub fn hosts(snap: &Snapshot, me: &str) -> Hosts {
    let mut hosts = Hosts::default();
    for (name, n) in snap.nodes() {
        let bgp = n.spec.bgp.as_ref();
        let addrs = [
            bgp.and_then(|b| b.ipv4_net().ok().flatten())
                .map(|n| IpAddr::V4(n.addr())),
            bgp.and_then(|b| b.ipv6_net().ok().flatten())
                .map(|n| IpAddr::V6(n.addr())),
            n.spec.ipv4_vxlan_tunnel_addr.parse().ok(),
            n.spec.ipv6_vxlan_tunnel_addr.parse().ok(),
        ];
        let list = if name == me {
            &mut hosts.local
        } else {
            &mut hosts.remote
        };
        list.extend(addrs.into_iter().flatten());
    }
    hosts
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use manul_confd::{BlockOwners, Item, ItemKey};
    use manul_datastore::resources::{IpPool, IpPoolSpec, Node, NodeBgpSpec, NodeSpec};

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut snap = Snapshot::new();
        for (name, cidr, mode) in [
            ("vx", "10.65.0.0/16", VxlanMode::Always),
            ("plain", "10.66.0.0/16", VxlanMode::Never),
        ] {
            let mut spec = IpPoolSpec::new(net(cidr));
            spec.vxlan_mode = Some(mode);
            snap.set(
                ItemKey::IpPool(name.into()),
                Some(Item::IpPool(Arc::new(IpPool::new(name, spec)))),
            );
        }
        for (name, addr) in [("a", "192.168.1.1/24"), ("b", "192.168.1.2/24")] {
            let spec = NodeSpec {
                bgp: Some(NodeBgpSpec {
                    ipv4_address: addr.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            snap.set(
                ItemKey::Node(name.into()),
                Some(Item::Node(Arc::new(Node::new(name, spec)))),
            );
        }
        let block = |host: Option<&str>, others: &[(&str, &str)]| {
            Some(Item::Block(Arc::new(BlockOwners {
                host: host.map(str::to_owned),
                others: others
                    .iter()
                    .map(|(a, n)| (ip(a), (*n).to_owned()))
                    .collect(),
            })))
        };
        // a's block, with an address b borrowed; b's block, with one a
        // borrowed; a block of a node with no Node; a block in the
        // plain pool.
        snap.set(
            ItemKey::Block(net("10.65.0.0/26")),
            block(Some("a"), &[("10.65.0.9", "b")]),
        );
        snap.set(
            ItemKey::Block(net("10.65.0.64/26")),
            block(Some("b"), &[("10.65.0.70", "a")]),
        );
        snap.set(
            ItemKey::Block(net("10.65.0.128/26")),
            block(Some("gone"), &[]),
        );
        snap.set(ItemKey::Block(net("10.66.0.0/26")), block(Some("b"), &[]));
        snap
    }

    #[test]
    fn vxlan_routes_come_from_the_blocks_of_vxlan_pools() {
        let snap = snapshot();
        assert_eq!(
            vxlan_remote(&snap, "a"),
            BTreeMap::from([
                (net("10.65.0.9/32"), vec![ip("192.168.1.2")]),
                (net("10.65.0.64/26"), vec![ip("192.168.1.2")]),
            ])
        );
        // BGP's prefixes in the VXLAN pool are dropped, the others kept.
        let bgp = BTreeMap::from([
            (net("10.65.0.64/26"), vec![ip("192.168.1.7")]),
            (net("10.65.1.0/26"), vec![ip("192.168.1.7")]),
            (net("10.66.0.0/26"), vec![ip("192.168.1.2")]),
        ]);
        let i = inputs(&snap, "a", bgp.clone(), false);
        assert_eq!(
            i.remote,
            BTreeMap::from([
                (net("10.65.0.9/32"), vec![ip("192.168.1.2")]),
                (net("10.65.0.64/26"), vec![ip("192.168.1.2")]),
                (net("10.66.0.0/26"), vec![ip("192.168.1.2")]),
            ])
        );
    }

    #[test]
    fn bgp_prefixes_in_service_ranges_never_become_routes() {
        let mut snap = snapshot();
        let config = manul_datastore::resources::BgpConfiguration::new(
            "default",
            serde_json::from_value(serde_json::json!({
                "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}],
                "serviceLoadBalancerIPs": [{"cidr": "192.0.2.0/24"}]
            }))
            .unwrap(),
        );
        snap.set(
            ItemKey::BgpConfig("default".into()),
            Some(Item::BgpConfig(Arc::new(config))),
        );
        let bgp = BTreeMap::from([
            (net("10.96.0.0/12"), vec![ip("192.168.1.2")]),
            (net("10.96.0.10/32"), vec![ip("192.168.1.2")]),
            (net("192.0.2.0/24"), vec![ip("192.168.1.2")]),
            (net("0.0.0.0/0"), vec![ip("192.168.1.254")]),
            (net("10.66.0.0/26"), vec![ip("192.168.1.2")]),
        ]);
        let i = inputs(&snap, "a", bgp, false);
        let kept: Vec<IpNet> = i.remote.keys().copied().collect();
        assert!(kept.contains(&net("0.0.0.0/0")), "{kept:?}");
        assert!(kept.contains(&net("10.66.0.0/26")), "{kept:?}");
        for gone in ["10.96.0.0/12", "10.96.0.10/32", "192.0.2.0/24"] {
            assert!(!kept.contains(&net(gone)), "{gone}: {kept:?}");
        }
    }
}
