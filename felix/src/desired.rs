//! The routes this node wants (pure), as Calico's felix programs them
//! (`../shared/calico-datastore.md`, "What a node advertises and
//! programs"):
//!
//! - a **blackhole** for each confirmed block affine to this node, so an
//!   unassigned address in it is dropped here instead of looping back to
//!   the fabric;
//! - a **host route** (/32, /128) to each local workload address via its
//!   host-side interface;
//! - for each **remote prefix** learned over BGP, a route via its next hops
//!   (ECMP when several). A prefix this node owns (a local block or
//!   workload address) is never routed away. In a VXLAN pool (`Always`, or
//!   `CrossSubnet` when the next hop is outside this node's subnet) the
//!   route goes via the remote node's VXLAN tunnel address, onlink on
//!   `vxlan.calico` (IPv6: `vxlan-v6.calico`), as Calico does.
//!
//! - for each **BGP peer with a gateway** (BGPPeer `reachableBy`), a host
//!   route (/32, /128) to the peer via that gateway, as Calico's
//!   `bird_aggr.cfg.template` renders `route <peer>/32 via <gateway>` in
//!   its static protocol (`bird6_aggr`: `/128`). It wins over a route BGP
//!   learned for the same destination (BIRD's static preference is
//!   higher), never over a local one. A gateway the kernel cannot reach
//!   (not on a connected network) is refused by the kernel: the route is
//!   then among felix's failed routes, retried and logged.
//!
//! IPIP is refused, honestly: manul builds no IPIP tunnels (yet), so a
//! pool with `ipipMode` other than `Never` gets a [`PoolError`] naming the
//! reason (this kernel has no IPIP at all, or manul does not build IPIP
//! tunnels) and its remote routes are left out — never programmed
//! without the encapsulation the pool asks for, which would send its
//! traffic out bare and lose it. Everything else is programmed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::route::{DesiredRoutes, NextHop, Target};

/// Calico's VXLAN device.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// Calico's VXLAN network identifier.
pub const VXLAN_VNI: u32 = 4096;
/// Calico's IPv6 VXLAN device.
pub const VXLAN_DEVICE_V6: &str = "vxlan-v6.calico";
/// Calico's IPv6 VXLAN network identifier.
pub const VXLAN_VNI_V6: u32 = 6096;
/// Calico's VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;

/// When a pool encapsulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encap {
    /// Plain routing.
    #[default]
    Never,
    /// Always.
    Always,
    /// Only towards next hops outside this node's subnet.
    CrossSubnet,
}

/// A pool, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name (for errors).
    pub name: String,
    /// Its range.
    pub cidr: IpNet,
    /// IPIP mode.
    pub ipip: Encap,
    /// VXLAN mode.
    pub vxlan: Encap,
    /// Traffic from the pool to outside every pool is NATed to the host
    /// (the eBPF route entries carry it as a flag).
    pub nat_outgoing: bool,
}

/// A local workload interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Host-side interface name.
    pub interface: String,
    /// Its addresses (/32 or /128 each).
    pub addresses: Vec<IpNet>,
}

/// Everything the routes depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Confirmed blocks affine to this node.
    pub local_blocks: Vec<IpNet>,
    /// This node's workloads.
    pub workloads: Vec<Workload>,
    /// Remote prefixes from BGP and their next hops (node addresses).
    pub remote: BTreeMap<IpNet, Vec<IpAddr>>,
    /// The IP pools.
    pub pools: Vec<Pool>,
    /// This node's own subnets (its BGP address with prefix), for CrossSubnet.
    pub local_subnets: Vec<IpNet>,
    /// Remote node address → its VXLAN tunnel address (IPv4 → IPv4 for
    /// `vxlan.calico`, IPv6 → IPv6 for `vxlan-v6.calico`).
    pub vxlan_tunnels: BTreeMap<IpAddr, IpAddr>,
    /// Whether the kernel can do IPIP.
    pub ipip_available: bool,
    /// BGP peers reached through a gateway (BGPPeer `reachableBy`): peer
    /// address → gateway.
    pub peer_routes: BTreeMap<IpAddr, IpAddr>,
}

/// A pool whose routes cannot be programmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IP pool {pool}: {reason}")]
pub struct PoolError {
    /// The pool.
    pub pool: String,
    /// Why.
    pub reason: String,
}

/// The routes, and the pools that could not be served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The routes.
    pub routes: DesiredRoutes,
    /// Pools left out, once each.
    pub errors: Vec<PoolError>,
}

fn pool_of<'a>(pools: &'a [Pool], prefix: &IpNet) -> Option<&'a Pool> {
    pools
        .iter()
        .filter(|p| p.cidr.contains(prefix))
        .max_by_key(|p| p.cidr.prefix_len())
}

fn encapsulate(mode: Encap, next_hop: &IpAddr, local_subnets: &[IpNet]) -> bool {
    match mode {
        Encap::Never => false,
        Encap::Always => true,
        Encap::CrossSubnet => !local_subnets.iter().any(|s| s.contains(next_hop)),
    }
}

/// Compute the routes from `inputs`.
pub fn desired_routes(inputs: &Inputs) -> Desired {
    let mut out = Desired::default();
    for block in &inputs.local_blocks {
        out.routes.insert(block.trunc(), Target::Blackhole);
    }
    for w in &inputs.workloads {
        for a in &w.addresses {
            let host = IpNet::from(a.addr());
            out.routes.insert(host, Target::Device(w.interface.clone()));
        }
    }
    // Before the remote routes: Calico's static protocol (preference 200)
    // wins over BGP (100) for the same destination.
    for (peer, gateway) in &inputs.peer_routes {
        let host = IpNet::from(*peer);
        if gateway.is_ipv4() != peer.is_ipv4() || out.routes.contains_key(&host) {
            continue; // confd refuses the other family; a local address stays local
        }
        out.routes.insert(
            host,
            Target::Via(vec![NextHop {
                gateway: *gateway,
                device: None,
                onlink: false,
            }]),
        );
    }
    for (prefix, next_hops) in &inputs.remote {
        if next_hops.is_empty() || out.routes.contains_key(prefix) {
            continue;
        }
        let pool = pool_of(&inputs.pools, prefix);
        if pool.is_some_and(|p| p.ipip != Encap::Never) {
            continue; // refused below, with the reason
        }
        let mut hops: Vec<NextHop> = Vec::new();
        for nh in next_hops {
            let hop = match pool {
                Some(p) if encapsulate(p.vxlan, nh, &inputs.local_subnets) => {
                    match inputs.vxlan_tunnels.get(nh) {
                        Some(tunnel) if tunnel.is_ipv4() == prefix.addr().is_ipv4() => NextHop {
                            gateway: *tunnel,
                            device: Some(
                                if tunnel.is_ipv4() {
                                    VXLAN_DEVICE
                                } else {
                                    VXLAN_DEVICE_V6
                                }
                                .into(),
                            ),
                            onlink: true,
                        },
                        // A tunnel of the other family cannot carry it.
                        Some(_) => continue,
                        None => continue, // the remote VTEP is not known yet
                    }
                }
                _ => NextHop {
                    gateway: *nh,
                    device: None,
                    onlink: false,
                },
            };
            if !hops.contains(&hop) {
                hops.push(hop);
            }
        }
        if !hops.is_empty() {
            hops.sort();
            out.routes.insert(*prefix, Target::Via(hops));
        }
    }
    out.errors = ipip_refusals(inputs);
    out
}

/// Every IPIP pool, refused with the reason (see the module docs).
pub fn ipip_refusals(inputs: &Inputs) -> Vec<PoolError> {
    inputs
        .pools
        .iter()
        .filter(|p| p.ipip != Encap::Never)
        .map(|p| PoolError {
            pool: p.name.clone(),
            reason: format!(
                "ipipMode {}: {}; its remote routes are not programmed (use vxlanMode instead)",
                if p.ipip == Encap::Always {
                    "Always"
                } else {
                    "CrossSubnet"
                },
                if inputs.ipip_available {
                    "manul-node does not build IPIP tunnels yet"
                } else {
                    "this kernel has no IPIP support (no ipip module), and manul-node does not \
                     build IPIP tunnels yet"
                }
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn base() -> Inputs {
        Inputs {
            local_blocks: vec![net("10.65.0.0/26")],
            workloads: vec![Workload {
                interface: "cali12345678901".into(),
                addresses: vec![net("10.65.0.2/32"), net("fd00:65::2/128")],
            }],
            pools: vec![Pool {
                name: "default".into(),
                cidr: net("10.65.0.0/16"),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: false,
            }],
            local_subnets: vec![net("192.168.1.0/24")],
            ..Inputs::default()
        }
    }

    #[test]
    fn blackholes_workloads_and_ecmp_remote_routes() {
        let mut i = base();
        i.remote.insert(
            net("10.65.1.0/26"),
            vec![ip("192.168.1.3"), ip("192.168.1.2")],
        );
        i.remote
            .insert(net("10.65.0.0/26"), vec![ip("192.168.1.9")]); // ours: never routed away
        let d = desired_routes(&i);
        assert!(d.errors.is_empty());
        assert_eq!(d.routes[&net("10.65.0.0/26")], Target::Blackhole);
        assert_eq!(
            d.routes[&net("10.65.0.2/32")],
            Target::Device("cali12345678901".into())
        );
        assert_eq!(
            d.routes[&net("fd00:65::2/128")],
            Target::Device("cali12345678901".into())
        );
        let Target::Via(hops) = &d.routes[&net("10.65.1.0/26")] else {
            panic!()
        };
        assert_eq!(
            hops.iter().map(|h| h.gateway).collect::<Vec<_>>(),
            vec![ip("192.168.1.2"), ip("192.168.1.3")]
        );
        assert_eq!(d.routes.len(), 4);
    }

    #[test]
    fn peers_reachable_by_a_gateway_get_a_host_route_through_it() {
        let mut i = base();
        i.peer_routes.insert(ip("10.9.0.2"), ip("192.168.1.254"));
        i.peer_routes.insert(ip("fd00:9::2"), ip("fd00:88::fe"));
        // The other family, and a local workload's address: left out.
        i.peer_routes.insert(ip("10.9.0.3"), ip("fd00:88::fe"));
        i.peer_routes.insert(ip("10.65.0.2"), ip("192.168.1.254"));
        // BGP's route to the same destination loses to it.
        i.remote.insert(net("10.9.0.2/32"), vec![ip("192.168.1.7")]);
        let d = desired_routes(&i);
        assert_eq!(
            d.routes[&net("10.9.0.2/32")].to_string(),
            "via 192.168.1.254"
        );
        assert_eq!(
            d.routes[&net("fd00:9::2/128")].to_string(),
            "via fd00:88::fe"
        );
        assert!(!d.routes.contains_key(&net("10.9.0.3/32")));
        assert_eq!(
            d.routes[&net("10.65.0.2/32")],
            Target::Device("cali12345678901".into())
        );
    }

    #[test]
    fn vxlan_cross_subnet_encapsulates_only_off_subnet() {
        let mut i = base();
        i.pools[0].vxlan = Encap::CrossSubnet;
        i.vxlan_tunnels.insert(ip("192.168.2.5"), ip("10.65.9.0"));
        i.remote
            .insert(net("10.65.1.0/26"), vec![ip("192.168.1.3")]);
        i.remote
            .insert(net("10.65.2.0/26"), vec![ip("192.168.2.5")]);
        i.remote
            .insert(net("10.65.3.0/26"), vec![ip("192.168.3.7")]); // VTEP unknown yet
        let d = desired_routes(&i);
        assert_eq!(
            d.routes[&net("10.65.1.0/26")].to_string(),
            "via 192.168.1.3"
        );
        assert_eq!(
            d.routes[&net("10.65.2.0/26")].to_string(),
            "via 10.65.9.0 dev vxlan.calico onlink"
        );
        assert!(!d.routes.contains_key(&net("10.65.3.0/26")));
    }

    #[test]
    fn ipv6_vxlan_goes_through_its_own_device_and_only_over_v6_tunnels() {
        let mut i = base();
        i.pools.push(Pool {
            name: "v6".into(),
            cidr: net("fd00:65::/32"),
            ipip: Encap::Never,
            vxlan: Encap::Always,
            nat_outgoing: false,
        });
        i.vxlan_tunnels.insert(ip("fd00:88::2"), ip("fd00:65:1::1"));
        i.vxlan_tunnels.insert(ip("192.168.1.2"), ip("10.65.1.1"));
        i.remote
            .insert(net("fd00:65:1::/122"), vec![ip("fd00:88::2")]);
        // A v6 block whose next hop is an IPv4 node address: that tunnel
        // cannot carry it.
        i.remote
            .insert(net("fd00:65:2::/122"), vec![ip("192.168.1.2")]);
        let d = desired_routes(&i);
        assert_eq!(
            d.routes[&net("fd00:65:1::/122")].to_string(),
            "via fd00:65:1::1 dev vxlan-v6.calico onlink"
        );
        assert!(!d.routes.contains_key(&net("fd00:65:2::/122")));
    }

    #[test]
    fn ipip_is_refused_even_where_the_kernel_has_it() {
        let mut i = base();
        i.pools[0].ipip = Encap::CrossSubnet;
        i.ipip_available = true;
        i.remote
            .insert(net("10.65.1.0/26"), vec![ip("192.168.2.3")]);
        let d = desired_routes(&i);
        assert!(
            !d.routes.contains_key(&net("10.65.1.0/26")),
            "{:?}",
            d.routes
        );
        // Local routes stay.
        assert_eq!(d.routes[&net("10.65.0.0/26")], Target::Blackhole);
        assert_eq!(d.errors.len(), 1);
        let e = d.errors[0].to_string();
        assert!(e.contains("ipipMode CrossSubnet"), "{e}");
        assert!(e.contains("does not build IPIP tunnels"), "{e}");
        assert!(!e.contains("no ipip module"), "{e}");
    }

    #[test]
    fn ipip_without_kernel_support_fails_that_pool_only() {
        let mut i = base();
        i.pools.push(Pool {
            name: "tunnelled".into(),
            cidr: net("10.70.0.0/16"),
            ipip: Encap::Always,
            vxlan: Encap::Never,
            nat_outgoing: false,
        });
        i.remote
            .insert(net("10.70.1.0/26"), vec![ip("192.168.1.3")]);
        i.remote
            .insert(net("10.70.2.0/26"), vec![ip("192.168.1.4")]);
        i.remote
            .insert(net("10.65.1.0/26"), vec![ip("192.168.1.3")]);
        let d = desired_routes(&i);
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].pool, "tunnelled");
        assert!(d.errors[0].to_string().contains("no IPIP support"));
        assert!(d.routes.contains_key(&net("10.65.1.0/26")));
        assert!(!d.routes.contains_key(&net("10.70.1.0/26")));
    }
}
