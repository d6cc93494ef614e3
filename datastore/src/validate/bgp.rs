//! BGPConfiguration, BGPPeer and Node rules.

use super::community::parse_community;
use super::peer_ip::parse_peer_ip;
use super::{Problem, Report, ValidationErrors};
use crate::resources::{BgpConfiguration, BgpPeer, BindMode, NextHopMode, Node, SourceAddress};

/// Checks a BGPConfiguration: AS number, communities (defined values and
/// the names prefix advertisements use), CIDRs and enumerations.
pub fn validate_bgp_configuration(c: &BgpConfiguration) -> Result<(), ValidationErrors> {
    let mut r = Report::new("BGPConfiguration", c.name());
    let spec = &c.spec;
    r.as_number("spec.asNumber", spec.as_number);
    for (i, com) in spec.communities.iter().enumerate() {
        if com.name.is_empty() {
            r.push(format!("spec.communities[{i}].name"), Problem::Required);
        }
        if let Err(e) = parse_community(&com.value) {
            r.push(
                format!("spec.communities[{i}].value"),
                Problem::Community(e),
            );
        }
    }
    for (i, adv) in spec.prefix_advertisements.iter().enumerate() {
        if adv.cidr.parse::<ipnet::IpNet>().is_err() {
            r.push(
                format!("spec.prefixAdvertisements[{i}].cidr"),
                Problem::Malformed {
                    value: adv.cidr.clone(),
                    expected: "a CIDR",
                },
            );
        }
        for (j, v) in adv.communities.iter().enumerate() {
            let field = format!("spec.prefixAdvertisements[{i}].communities[{j}]");
            if v.contains(':') {
                if let Err(e) = parse_community(v) {
                    r.push(field, Problem::Community(e));
                }
            } else if !spec.communities.iter().any(|c| &c.name == v) {
                r.push(field, Problem::UnknownCommunity(v.clone()));
            }
        }
    }
    let lists = [
        ("serviceClusterIPs", &spec.service_cluster_ips),
        ("serviceExternalIPs", &spec.service_external_ips),
        ("serviceLoadBalancerIPs", &spec.service_load_balancer_ips),
    ];
    for (name, list) in lists {
        for (i, b) in list.iter().enumerate() {
            if b.cidr.parse::<ipnet::IpNet>().is_err() {
                r.push(
                    format!("spec.{name}[{i}].cidr"),
                    Problem::Malformed {
                        value: b.cidr.clone(),
                        expected: "a CIDR",
                    },
                );
            }
        }
    }
    if let Some(m) = &spec.bind_mode {
        r.known("spec.bindMode", m.as_str(), m.is_known(), BindMode::KNOWN);
    }
    r.finish()
}

/// Checks a BGPPeer: `node` xor `nodeSelector`, `peerIP` xor
/// `peerSelector`, the address form, AS numbers, selectors, enumerations.
pub fn validate_bgp_peer(p: &BgpPeer) -> Result<(), ValidationErrors> {
    let mut r = Report::new("BGPPeer", p.name());
    let spec = &p.spec;
    if !spec.node.is_empty() && !spec.node_selector.is_empty() {
        r.push(
            "spec.nodeSelector",
            Problem::Exclusive { other: "spec.node" },
        );
    }
    if !spec.peer_ip.is_empty() && !spec.peer_selector.is_empty() {
        r.push(
            "spec.peerSelector",
            Problem::Exclusive {
                other: "spec.peerIP",
            },
        );
    }
    if !spec.peer_selector.is_empty() && spec.as_number.is_some() {
        // With a selector the remote AS comes from the selected nodes.
        r.push(
            "spec.asNumber",
            Problem::Exclusive {
                other: "spec.peerSelector",
            },
        );
    }
    if !spec.peer_ip.is_empty() && parse_peer_ip(&spec.peer_ip).is_none() {
        r.push(
            "spec.peerIP",
            Problem::Malformed {
                value: spec.peer_ip.clone(),
                expected: "an address, address:port or [IPv6]:port",
            },
        );
    }
    if spec.peer_ip.is_empty() && spec.peer_selector.is_empty() {
        r.push("spec.peerIP", Problem::Required);
    }
    r.as_number("spec.asNumber", spec.as_number);
    r.as_number("spec.localASNumber", spec.local_as_number);
    if !spec.node_selector.is_empty() {
        r.selector("spec.nodeSelector", &spec.node_selector);
    }
    if !spec.peer_selector.is_empty() {
        r.selector("spec.peerSelector", &spec.peer_selector);
    }
    if let Some(s) = &spec.source_address {
        r.known(
            "spec.sourceAddress",
            s.as_str(),
            s.is_known(),
            SourceAddress::KNOWN,
        );
    }
    if let Some(m) = &spec.next_hop_mode {
        r.known(
            "spec.nextHopMode",
            m.as_str(),
            m.is_known(),
            NextHopMode::KNOWN,
        );
    }
    reachable_by(&mut r, spec);
    r.finish()
}

/// `reachableBy`, as Calico's validator (`validateBGPPeerSpec` and the
/// CRD's rules): an address, only with `peerIP`, of the peer's family.
fn reachable_by(r: &mut Report, spec: &crate::resources::BgpPeerSpec) {
    if spec.reachable_by.is_empty() {
        return;
    }
    let Ok(gateway) = spec.reachable_by.parse::<std::net::IpAddr>() else {
        r.push(
            "spec.reachableBy",
            Problem::Malformed {
                value: spec.reachable_by.clone(),
                expected: "an IP address",
            },
        );
        return;
    };
    if spec.peer_ip.is_empty() {
        r.push(
            "spec.reachableBy",
            Problem::Unsupported("reachableBy needs spec.peerIP (a route to one address)".into()),
        );
        return;
    }
    if let Some(peer) = parse_peer_ip(&spec.peer_ip).map(|p| p.ip)
        && peer.is_ipv4() != gateway.is_ipv4()
    {
        r.push(
            "spec.reachableBy",
            Problem::Unsupported(format!(
                "gateway {gateway} is not of peerIP {peer}'s address family"
            )),
        );
    }
}

/// Checks a Node's BGP part: AS number, addresses, cluster ID.
pub fn validate_node(n: &Node) -> Result<(), ValidationErrors> {
    let mut r = Report::new("Node", n.name());
    if let Some(bgp) = &n.spec.bgp {
        r.as_number("spec.bgp.asNumber", bgp.as_number);
        if bgp.ipv4_net().is_err() {
            r.push(
                "spec.bgp.ipv4Address",
                Problem::Malformed {
                    value: bgp.ipv4_address.clone(),
                    expected: "an IPv4 address/prefix",
                },
            );
        }
        if bgp.ipv6_net().is_err() {
            r.push(
                "spec.bgp.ipv6Address",
                Problem::Malformed {
                    value: bgp.ipv6_address.clone(),
                    expected: "an IPv6 address/prefix",
                },
            );
        }
        if bgp.route_reflector_cluster_id().is_err() {
            r.push(
                "spec.bgp.routeReflectorClusterID",
                Problem::Malformed {
                    value: bgp.route_reflector_cluster_id.clone(),
                    expected: "a dotted-quad cluster ID",
                },
            );
        }
    }
    r.finish()
}
