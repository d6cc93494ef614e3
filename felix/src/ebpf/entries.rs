//! What the eBPF maps should hold, from felix's desired state (pure), and
//! the difference to what they hold.
//!
//! Routes come from the same [`DesiredRoutes`] as the kernel routes:
//!
//! | desired route | [`RouteValue::kind`] | also |
//! |---|---|---|
//! | blackhole (local block) | `BLACKHOLE` | `IN_POOL` when in a pool |
//! | device (workload host route) | `LOCAL_WORKLOAD` | `ifindex` of the device; left out while the device does not exist |
//! | via next hops, in a pool | `REMOTE_WORKLOAD` | the first next hop; `TUNNELED` when onlink/through a device (VXLAN); `SAME_SUBNET` when it is on one of this node's subnets |
//! | via next hops, outside every pool | `REMOTE_HOST` | as above |
//! | this node's address (Node `bgp.ipv4Address`, `ipv6Address`, VXLAN tunnel addresses) | `LOCAL_HOST` | a /32 or /128 |
//! | another node's address | `REMOTE_HOST` | next hop: the address itself; `SAME_SUBNET` as above |
//!
//! Every entry inside a pool gets `IN_POOL`, and `NAT_OUTGOING` when that
//! pool has `natOutgoing`. A desired route for the same prefix as a host
//! address wins over the host entry.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use manul_ebpf_common::{EndpointValue, MAX_V4, MAX_V6, RouteValue, flags, kind};

use crate::desired::Pool;
use crate::route::{DesiredRoutes, Target};

/// Route map contents, both families, by prefix.
pub type RouteEntries = BTreeMap<IpNet, RouteValue>;
/// Endpoint map contents, by host-side interface index.
pub type EndpointEntries = BTreeMap<u32, EndpointValue>;

/// A local workload endpoint as the programs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host-side interface name.
    pub interface: String,
    /// The workload's addresses (its allowed sources).
    pub addresses: Vec<IpAddr>,
    /// The workload's MAC (Calico's WorkloadEndpoint `mac`).
    pub mac: [u8; 6],
}

/// Host addresses: this node's and the other nodes'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    /// This node's addresses.
    pub local: Vec<IpAddr>,
    /// The other nodes' addresses.
    pub remote: Vec<IpAddr>,
}

/// What the kernel says about an interface: its index and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// `aa:bb:cc:dd:ee:ff` (or `-`-separated, any case) as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn next_hop_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// The route map entries for `routes`; `link` resolves an interface name.
pub fn route_entries(
    routes: &DesiredRoutes,
    hosts: &Hosts,
    pools: &[Pool],
    local_subnets: &[IpNet],
    link: impl Fn(&str) -> Option<Link>,
) -> RouteEntries {
    let pool_flags = |prefix: &IpNet| {
        pools
            .iter()
            .filter(|p| p.cidr.contains(prefix))
            .fold(0, |f, p| {
                f | flags::IN_POOL
                    | if p.nat_outgoing {
                        flags::NAT_OUTGOING
                    } else {
                        0
                    }
            })
    };
    let same_subnet = |ip: &IpAddr| {
        if local_subnets.iter().any(|s| s.contains(ip)) {
            flags::SAME_SUBNET
        } else {
            0
        }
    };
    let mut out = RouteEntries::new();
    for (addrs, kind) in [
        (&hosts.local, kind::LOCAL_HOST),
        (&hosts.remote, kind::REMOTE_HOST),
    ] {
        for a in addrs {
            let prefix = IpNet::from(*a);
            let remote = kind == kind::REMOTE_HOST;
            out.insert(
                prefix,
                RouteValue {
                    kind,
                    flags: pool_flags(&prefix) | if remote { same_subnet(a) } else { 0 },
                    next_hop: if remote { next_hop_bytes(*a) } else { [0; 16] },
                    ..RouteValue::default()
                },
            );
        }
    }
    for (prefix, target) in routes {
        let in_pool = pools.iter().any(|p| p.cidr.contains(prefix));
        let pool_flag = pool_flags(prefix);
        let value = match target {
            Target::Blackhole => RouteValue {
                kind: kind::BLACKHOLE,
                flags: pool_flag,
                ..RouteValue::default()
            },
            Target::Device(name) => match link(name) {
                Some(l) => RouteValue {
                    kind: kind::LOCAL_WORKLOAD,
                    flags: pool_flag,
                    ifindex: l.ifindex,
                    ..RouteValue::default()
                },
                None => continue,
            },
            Target::Via(hops) => {
                let Some(hop) = hops.first() else { continue };
                let mut f = pool_flag;
                if hop.onlink || hop.device.is_some() {
                    f |= flags::TUNNELED;
                }
                f |= same_subnet(&hop.gateway);
                RouteValue {
                    kind: if in_pool {
                        kind::REMOTE_WORKLOAD
                    } else {
                        kind::REMOTE_HOST
                    },
                    flags: f,
                    next_hop: next_hop_bytes(hop.gateway),
                    ..RouteValue::default()
                }
            }
        };
        out.insert(prefix.trunc(), value);
    }
    out
}

/// The endpoint map entries; an endpoint whose interface does not exist
/// (yet) is left out. Addresses beyond [`MAX_V4`]/[`MAX_V6`] per family are
/// not allowed as sources (their packets are dropped as spoofed).
pub fn endpoint_entries(
    endpoints: &[Endpoint],
    link: impl Fn(&str) -> Option<Link>,
) -> EndpointEntries {
    let mut out = EndpointEntries::new();
    for ep in endpoints {
        let Some(l) = link(&ep.interface) else {
            continue;
        };
        let mut v = EndpointValue {
            ifindex: l.ifindex,
            mac: ep.mac,
            host_mac: l.mac,
            ..EndpointValue::default()
        };
        let mut v4: Vec<Ipv4Addr> = Vec::new();
        let mut v6: Vec<Ipv6Addr> = Vec::new();
        for a in &ep.addresses {
            match a {
                IpAddr::V4(a) if !v4.contains(a) => v4.push(*a),
                IpAddr::V6(a) if !v6.contains(a) => v6.push(*a),
                _ => {}
            }
        }
        v4.sort();
        v6.sort();
        for (i, a) in v4.iter().take(MAX_V4).enumerate() {
            v.v4[i] = a.octets();
            v.n_v4 += 1;
        }
        for (i, a) in v6.iter().take(MAX_V6).enumerate() {
            v.v6[i] = a.octets();
            v.n_v6 += 1;
        }
        out.insert(l.ifindex, v);
    }
    out
}

/// Writes that turn `current` into `desired`: entries to put (new or
/// changed) and keys to delete. Unchanged entries are not touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta<K, V> {
    pub put: Vec<(K, V)>,
    pub delete: Vec<K>,
}

impl<K, V> Delta<K, V> {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.delete.is_empty()
    }
}

/// The [`Delta`] from `current` to `desired`.
pub fn diff<K: Ord + Clone, V: PartialEq + Clone>(
    current: &BTreeMap<K, V>,
    desired: &BTreeMap<K, V>,
) -> Delta<K, V> {
    let put = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    Delta { put, delete }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Encap;
    use crate::route::NextHop;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn links(name: &str) -> Option<Link> {
        (name == "cali1").then_some(Link {
            ifindex: 7,
            mac: [2, 0, 0, 0, 0, 7],
        })
    }

    #[test]
    fn routes_get_kinds_flags_and_interfaces() {
        let pools = vec![Pool {
            name: "p".into(),
            cidr: net("10.65.0.0/16"),
            ipip: Encap::Never,
            vxlan: Encap::Never,
            nat_outgoing: false,
        }];
        let mut d = DesiredRoutes::new();
        d.insert(net("10.65.0.0/26"), Target::Blackhole);
        d.insert(net("10.65.0.2/32"), Target::Device("cali1".into()));
        d.insert(net("10.65.0.3/32"), Target::Device("gone".into()));
        let hop = |gw: &str, device: Option<&str>| NextHop {
            gateway: gw.parse().unwrap(),
            device: device.map(Into::into),
            onlink: device.is_some(),
        };
        d.insert(
            net("10.65.1.0/26"),
            Target::Via(vec![hop("192.168.1.2", None)]),
        );
        d.insert(
            net("10.65.2.0/26"),
            Target::Via(vec![hop("10.65.9.0", Some("vxlan.calico"))]),
        );
        d.insert(
            net("172.16.0.0/24"),
            Target::Via(vec![hop("192.168.2.2", None)]),
        );
        let e = route_entries(
            &d,
            &Hosts::default(),
            &pools,
            &[net("192.168.1.0/24")],
            links,
        );
        assert_eq!(e.len(), 5);
        assert_eq!(e[&net("10.65.0.0/26")].kind, kind::BLACKHOLE);
        assert_eq!(e[&net("10.65.0.2/32")].ifindex, 7);
        assert_eq!(e[&net("10.65.0.2/32")].kind, kind::LOCAL_WORKLOAD);
        let r = e[&net("10.65.1.0/26")];
        assert_eq!(r.kind, kind::REMOTE_WORKLOAD);
        assert_eq!(r.flags, flags::IN_POOL | flags::SAME_SUBNET);
        assert_eq!(&r.next_hop[..4], &[192, 168, 1, 2]);
        assert_eq!(
            e[&net("10.65.2.0/26")].flags,
            flags::IN_POOL | flags::TUNNELED
        );
        assert_eq!(e[&net("172.16.0.0/24")].kind, kind::REMOTE_HOST);
        assert_eq!(e[&net("172.16.0.0/24")].flags, 0);
    }

    #[test]
    fn host_addresses_and_nat_outgoing_pools_get_their_kinds_and_flags() {
        let pools = vec![
            Pool {
                name: "nat".into(),
                cidr: net("10.65.0.0/16"),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: true,
            },
            Pool {
                name: "plain".into(),
                cidr: net("10.66.0.0/16"),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: false,
            },
        ];
        let hosts = Hosts {
            local: vec!["192.168.1.1".parse().unwrap(), "10.65.0.1".parse().unwrap()],
            remote: vec![
                "192.168.1.2".parse().unwrap(),
                "192.168.9.2".parse().unwrap(),
                "fd00::2".parse().unwrap(),
            ],
        };
        let mut d = DesiredRoutes::new();
        d.insert(net("10.65.0.0/26"), Target::Blackhole);
        d.insert(net("10.66.0.0/26"), Target::Blackhole);
        // A desired route for a host's address wins.
        d.insert(net("192.168.9.2/32"), Target::Blackhole);
        let e = route_entries(&d, &hosts, &pools, &[net("192.168.1.0/24")], links);
        let local = e[&net("192.168.1.1/32")];
        assert_eq!(
            (local.kind, local.flags, local.next_hop),
            (kind::LOCAL_HOST, 0, [0; 16])
        );
        let tunnel = e[&net("10.65.0.1/32")];
        assert_eq!(tunnel.kind, kind::LOCAL_HOST);
        assert_eq!(tunnel.flags, flags::IN_POOL | flags::NAT_OUTGOING);
        let peer = e[&net("192.168.1.2/32")];
        assert_eq!(
            (peer.kind, peer.flags),
            (kind::REMOTE_HOST, flags::SAME_SUBNET)
        );
        assert_eq!(&peer.next_hop[..4], &[192, 168, 1, 2]);
        let v6 = e[&net("fd00::2/128")];
        assert_eq!((v6.kind, v6.flags), (kind::REMOTE_HOST, 0));
        assert_eq!(v6.next_hop, "fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(e[&net("192.168.9.2/32")].kind, kind::BLACKHOLE);
        assert_eq!(
            e[&net("10.65.0.0/26")].flags,
            flags::IN_POOL | flags::NAT_OUTGOING
        );
        assert_eq!(e[&net("10.66.0.0/26")].flags, flags::IN_POOL);
    }

    #[test]
    fn endpoints_carry_sorted_addresses_and_macs() {
        let eps = vec![
            Endpoint {
                interface: "cali1".into(),
                addresses: vec![
                    "10.65.0.3".parse().unwrap(),
                    "fd00::3".parse().unwrap(),
                    "10.65.0.2".parse().unwrap(),
                    "10.65.0.2".parse().unwrap(),
                ],
                mac: [0xee; 6],
            },
            Endpoint {
                interface: "absent".into(),
                addresses: vec![],
                mac: [0; 6],
            },
        ];
        let e = endpoint_entries(&eps, links);
        assert_eq!(e.len(), 1);
        let v = e[&7];
        assert_eq!((v.n_v4, v.n_v6), (2, 1));
        assert_eq!(v.v4[0], [10, 65, 0, 2]);
        assert_eq!(v.v4[1], [10, 65, 0, 3]);
        assert!(v.allows_v4(&[10, 65, 0, 3]) && !v.allows_v4(&[10, 65, 0, 4]));
        assert!(v.allows_v6(&"fd00::3".parse::<Ipv6Addr>().unwrap().octets()));
        assert_eq!((v.mac, v.host_mac), ([0xee; 6], [2, 0, 0, 0, 0, 7]));
    }

    #[test]
    fn macs_parse_in_calicos_spelling_only() {
        assert_eq!(
            parse_mac("ee:EE:01:02:0a:ff"),
            Some([0xee, 0xee, 1, 2, 0x0a, 0xff])
        );
        assert_eq!(
            parse_mac("ee-ee-01-02-0a-ff"),
            Some([0xee, 0xee, 1, 2, 10, 255])
        );
        for bad in [
            "",
            "ee:ee:01:02:0a",
            "ee:ee:01:02:0a:ff:00",
            "e:ee:01:02:0a:ff",
            "zz:ee:01:02:0a:ff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn diff_puts_only_changes_and_deletes_leftovers() {
        let cur: BTreeMap<u32, u8> = [(1, 1), (2, 2), (3, 3)].into();
        let want: BTreeMap<u32, u8> = [(1, 1), (2, 9), (4, 4)].into();
        let d = diff(&cur, &want);
        assert_eq!(d.put, vec![(2, 9), (4, 4)]);
        assert_eq!(d.delete, vec![3]);
        assert!(diff(&want, &want).is_empty());
    }
}
