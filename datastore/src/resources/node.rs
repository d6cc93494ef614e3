//! Node (`nodes`): a host's BGP identity and tunnel addresses. The Node's
//! `status` and other fields not modelled here stay in the `extra` maps.

use std::net::{AddrParseError, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::asn::AsNumber;
use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::null_default;

/// A Node object.
pub type Node = Resource<NodeSpec>;

/// `NodeBGPSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeBgpSpec {
    /// This node's AS; absent means the global one.
    #[serde(rename = "asNumber", default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Address with its subnet, e.g. `10.0.0.1/24` (a bare address is
    /// accepted, as Calico does).
    #[serde(
        rename = "ipv4Address",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    /// IPv6 address with its subnet.
    #[serde(
        rename = "ipv6Address",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    /// The IPIP tunnel address.
    #[serde(
        rename = "ipv4IPIPTunnelAddr",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_ipip_tunnel_addr: String,
    /// Dotted-quad cluster ID; set means this node is a route reflector.
    #[serde(
        rename = "routeReflectorClusterID",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub route_reflector_cluster_id: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn parse_v4(s: &str) -> Result<Option<Ipv4Net>, AddrParseError> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<Ipv4Net>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => s.parse::<Ipv4Addr>().map(|a| Some(Ipv4Net::from(a))),
    }
}

fn parse_v6(s: &str) -> Result<Option<Ipv6Net>, AddrParseError> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<Ipv6Net>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => s.parse::<Ipv6Addr>().map(|a| Some(Ipv6Net::from(a))),
    }
}

impl NodeBgpSpec {
    /// The IPv4 address and subnet (a bare address reads as /32).
    pub fn ipv4_net(&self) -> Result<Option<Ipv4Net>, AddrParseError> {
        parse_v4(&self.ipv4_address)
    }

    /// The IPv6 address and subnet (a bare address reads as /128).
    pub fn ipv6_net(&self) -> Result<Option<Ipv6Net>, AddrParseError> {
        parse_v6(&self.ipv6_address)
    }

    /// The route reflector cluster ID, if this node is a reflector.
    pub fn route_reflector_cluster_id(&self) -> Result<Option<Ipv4Addr>, AddrParseError> {
        if self.route_reflector_cluster_id.is_empty() {
            return Ok(None);
        }
        self.route_reflector_cluster_id.parse().map(Some)
    }

    /// The BGP router ID: the node's IPv4 address.
    pub fn router_id(&self) -> Result<Option<Ipv4Addr>, AddrParseError> {
        Ok(self.ipv4_net()?.map(|n| n.addr()))
    }
}

/// `OrchRef`: the node's name in an orchestrator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrchRef {
    /// The name there.
    #[serde(
        rename = "nodeName",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_name: String,
    /// The orchestrator, e.g. `k8s` (always written).
    #[serde(default, deserialize_with = "null_default")]
    pub orchestrator: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `NodeAddress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// The address (always written).
    #[serde(default, deserialize_with = "null_default")]
    pub address: String,
    /// `CalicoNodeIP`, `InternalIP` or `ExternalIP`.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub type_: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `NodeSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// BGP settings; absent on nodes that do not run BGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    /// The IPv4 VXLAN tunnel address.
    #[serde(
        rename = "ipv4VXLANTunnelAddr",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_vxlan_tunnel_addr: String,
    /// The IPv4 VXLAN tunnel MAC.
    #[serde(
        rename = "vxlanTunnelMACAddr",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr: String,
    /// The IPv6 VXLAN tunnel address.
    #[serde(
        rename = "ipv6VXLANTunnelAddr",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_vxlan_tunnel_addr: String,
    /// The IPv6 VXLAN tunnel MAC.
    #[serde(
        rename = "vxlanTunnelMACAddrV6",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr_v6: String,
    /// Names of this node in orchestrators.
    #[serde(
        rename = "orchRefs",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub orch_refs: Vec<OrchRef>,
    /// Addresses the node is reachable at.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<NodeAddress>,
    /// Fields not modelled here (e.g. `wireguard`, `interfaces`), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for NodeSpec {
    const KIND: ResourceKind = ResourceKind::Node;
}

/// A MAC address.
pub type Mac = [u8; 6];

/// Parse `aa:bb:cc:dd:ee:ff` (hex, either case).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// `aa:bb:cc:dd:ee:ff`, lower case, as Go's `net.HardwareAddr` prints it.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The VTEP MAC Calico's felix gives node `name`'s VXLAN device when its
/// Node carries none (`vxlanTunnelMACAddr`, `vxlanTunnelMACAddrV6`
/// empty): `0x66` (`'f'`, a locally administered unicast first octet)
/// then the first five octets of SHA-1 of the node name (of
/// `<name>-v6` for `vxlan-v6.calico`). Every node computes the same
/// value for a peer, so a Node without the field still has one MAC.
pub fn calico_vtep_mac(name: &str, v6: bool) -> Mac {
    let input = if v6 {
        format!("{name}-v6")
    } else {
        name.to_owned()
    };
    let sha = sha1_smol::Sha1::from(input).digest().bytes();
    [b'f', sha[0], sha[1], sha[2], sha[3], sha[4]]
}

impl Resource<NodeSpec> {
    /// This node's VTEP MAC of one family: the Node's field when it holds
    /// a MAC, else [`calico_vtep_mac`].
    pub fn vtep_mac(&self, v6: bool) -> Mac {
        let field = if v6 {
            &self.spec.vxlan_tunnel_mac_addr_v6
        } else {
            &self.spec.vxlan_tunnel_mac_addr
        };
        parse_mac(field).unwrap_or_else(|| calico_vtep_mac(&self.metadata.name, v6))
    }
}

#[cfg(test)]
mod mac_tests {
    use super::*;

    #[test]
    fn macs_parse_and_print_as_go_does() {
        assert_eq!(
            parse_mac("66:1A:00:ff:0b:02"),
            Some([0x66, 0x1a, 0, 0xff, 0x0b, 2])
        );
        assert_eq!(parse_mac("66:1a:00:ff:0b"), None);
        assert_eq!(parse_mac("6:1a:00:ff:0b:02:"), None);
        assert_eq!(
            format_mac(&[0x66, 0x1a, 0, 0xff, 0x0b, 2]),
            "66:1a:00:ff:0b:02"
        );
    }

    #[test]
    fn calico_derives_the_mac_from_the_node_name() {
        let v4 = calico_vtep_mac("node1", false);
        let v6 = calico_vtep_mac("node1", true);
        assert_eq!(v4[0], 0x66);
        assert_eq!(
            &v4[1..],
            &sha1_smol::Sha1::from("node1").digest().bytes()[..5]
        );
        assert_eq!(
            &v6[1..],
            &sha1_smol::Sha1::from("node1-v6").digest().bytes()[..5]
        );
        let mut node = Node::new("node1", NodeSpec::default());
        assert_eq!(node.vtep_mac(false), v4);
        node.spec.vxlan_tunnel_mac_addr = "66:00:00:00:00:01".into();
        assert_eq!(node.vtep_mac(false), [0x66, 0, 0, 0, 0, 1]);
        assert_eq!(node.vtep_mac(true), v6);
    }
}
