//! From confd's snapshot to felix's [`Inputs`]: this node's confirmed
//! blocks and workloads, the pools' encapsulation modes, this node's
//! subnets (for `CrossSubnet`) and every node's VXLAN tunnel address. The
//! remote prefixes come from the BGP speaker, passed in by the caller.
//! Also the eBPF dataplane's endpoints ([`endpoints`]) and host addresses
//! ([`hosts`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_confd::Snapshot;
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

/// Felix's inputs for node `me`.
pub fn inputs(
    snap: &Snapshot,
    me: &str,
    remote: BTreeMap<IpNet, Vec<IpAddr>>,
    ipip_available: bool,
) -> Inputs {
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
