//! How this node's pods reach other nodes' pods: the networking backend
//! (Calico's `CALICO_NETWORKING_BACKEND`), this node's VXLAN tunnel ends
//! (address and VTEP MAC as its Node records them, the device and its
//! MTU), and the MTUs felix computed from the uplink.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// BGP.
    #[default]
    Bird,
    /// VXLAN only, no BGP.
    Vxlan,
    /// No BGP.
    None,
}

impl Backend {
    /// The name as the variable takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Bird => "bird",
            Backend::Vxlan => "vxlan",
            Backend::None => "none",
        }
    }
}

/// The network part of the node's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The backend this agent runs.
    pub backend: Backend,
    /// `vxlan.calico`'s end, when an IPv4 VXLAN pool applies to this node.
    pub vxlan_v4: Option<Vtep>,
    /// `vxlan-v6.calico`'s end, when an IPv6 VXLAN pool applies.
    pub vxlan_v6: Option<Vtep>,
    /// Why the tunnel addresses could not be reconciled, until they are.
    pub tunnel_error: Option<String>,
    /// The MTUs in force (`None` until felix has looked).
    pub mtu: Option<Mtus>,
}

/// One VXLAN tunnel end of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vtep {
    /// The device (`vxlan.calico`, `vxlan-v6.calico`).
    pub device: String,
    /// Its tunnel address (the Node's `ipv4VXLANTunnelAddr` /
    /// `ipv6VXLANTunnelAddr`, from IPAM).
    pub address: IpAddr,
    /// Its VTEP MAC (`aa:bb:cc:dd:ee:ff`).
    pub mac: String,
}

/// The MTUs felix computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mtus {
    /// The uplink's MTU (the interface holding the node's address), or
    /// Calico's fallback (1460) when none was found.
    pub host: u32,
    /// Whether `host` was read from the uplink.
    pub host_detected: bool,
    /// `vxlan.calico`'s (`FELIX_VXLANMTU`, else host − 50).
    pub vxlan: u32,
    /// `vxlan-v6.calico`'s (`FELIX_VXLANMTUV6`, else host − 70).
    pub vxlan_v6: u32,
    /// The pods' (written to the MTU file for the CNI plugin).
    pub pod: u32,
}
