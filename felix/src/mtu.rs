//! MTUs as Calico's felix computes them (pure; the task that detects the
//! uplink's MTU and applies the result is [`crate::mtu_driver`]):
//!
//! - the **host MTU**: the MTU of the uplink, the interface carrying this
//!   node's address (its Node's `bgp.ipv4Address`, else `ipv6Address`).
//!   Calico takes the smallest MTU of the up interfaces matching its
//!   `mtuIfacePattern`; manul takes the interface the node's address is on,
//!   which is the one VXLAN packets leave by. With no such interface,
//!   Calico's fallback, [`FALLBACK_HOST_MTU`];
//! - the **VXLAN MTUs**: `FELIX_VXLANMTU` (`FELIX_VXLANMTUV6`) when set
//!   (non-zero), else FelixConfiguration's `vxlanMTU` (`vxlanMTUV6`) when
//!   set (non-zero), else the host MTU less the encapsulation, 50 octets over
//!   IPv4 and 70 over IPv6 (outer IP, UDP, VXLAN and inner Ethernet
//!   headers). They are the MTUs of `vxlan.calico` and `vxlan-v6.calico`;
//! - the **pod MTU**: the smallest MTU of the encapsulations in use (a
//!   VXLAN pool of that family exists, as Calico's felix sees it), else the
//!   host MTU. Written where the CNI plugin reads it (Calico's
//!   `/var/lib/calico/mtu`) so pods' interfaces get it; a CNI
//!   configuration's own `mtu` wins there.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use manul_confd::Snapshot;
use manul_datastore::resources::VxlanMode;

/// Octets VXLAN adds over IPv4: outer IPv4 (20), UDP (8), VXLAN (8),
/// inner Ethernet (14).
pub const VXLAN_OVERHEAD_V4: u32 = 50;
/// Octets VXLAN adds over IPv6 (outer IPv6 is 40).
pub const VXLAN_OVERHEAD_V6: u32 = 70;
/// The host MTU when no uplink is found (Calico's: the smallest among
/// common cloud providers).
pub const FALLBACK_HOST_MTU: u32 = 1460;
/// Where calico-node writes the pod MTU for the CNI plugin.
pub const DEFAULT_MTU_FILE: &str = "/var/lib/calico/mtu";

/// What the operator sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtuConfig {
    /// `FELIX_VXLANMTU`: `vxlan.calico`'s MTU; `None` (or 0): host − 50.
    pub vxlan: Option<u32>,
    /// `FELIX_VXLANMTUV6`: `vxlan-v6.calico`'s; `None` (or 0): host − 70.
    pub vxlan_v6: Option<u32>,
    /// Where to write the pod MTU; `None`: nowhere.
    pub file: Option<PathBuf>,
}

/// What the MTUs depend on in the cluster's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtuInputs {
    /// This node's address: its interface is the uplink.
    pub uplink: Option<IpAddr>,
    /// A VXLAN pool of IPv4 exists.
    pub vxlan_v4: bool,
    /// A VXLAN pool of IPv6 exists.
    pub vxlan_v6: bool,
    /// FelixConfiguration's `vxlanMTU` for this node (`node.<name>` over
    /// `default`); the agent's own setting ([`MtuConfig::vxlan`]) wins.
    pub felix_vxlan: Option<u32>,
    /// FelixConfiguration's `vxlanMTUV6`.
    pub felix_vxlan_v6: Option<u32>,
}

impl MtuInputs {
    /// Node `me`'s inputs from confd's snapshot.
    pub fn from_snapshot(snap: &Snapshot, me: &str) -> MtuInputs {
        let bgp = snap.node(me).and_then(|n| n.spec.bgp.as_ref());
        let v4 = bgp.and_then(|b| b.ipv4_net().ok().flatten());
        let v6 = bgp.and_then(|b| b.ipv6_net().ok().flatten());
        let vxlan = |v6: bool| {
            snap.pools().any(|(_, p)| {
                matches!(p.spec.cidr, IpNet::V6(_)) == v6
                    && matches!(
                        p.spec.vxlan_mode(),
                        VxlanMode::Always | VxlanMode::CrossSubnet
                    )
                    && !p.spec.disabled
            })
        };
        let felix = snap.effective_felix_config(me);
        // A refused value is left out (the agent reports it on /status).
        let felix_mtu = |field| manul_confd::felix_config::mtu(&felix, field)?.ok();
        MtuInputs {
            felix_vxlan: felix_mtu("vxlanMTU"),
            felix_vxlan_v6: felix_mtu("vxlanMTUV6"),
            uplink: v4
                .map(|n| IpAddr::V4(n.addr()))
                .or(v6.map(|n| IpAddr::V6(n.addr()))),
            vxlan_v4: vxlan(false),
            vxlan_v6: vxlan(true),
        }
    }
}

/// The MTUs in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mtus {
    /// The uplink's (or [`FALLBACK_HOST_MTU`]).
    pub host: u32,
    /// Whether `host` was read from the uplink (false: the fallback).
    pub detected: bool,
    /// `vxlan.calico`'s.
    pub vxlan: u32,
    /// `vxlan-v6.calico`'s.
    pub vxlan_v6: u32,
    /// The pods'.
    pub pod: u32,
}

fn set(v: Option<u32>) -> Option<u32> {
    v.filter(|m| *m != 0)
}

/// The MTUs from the uplink's MTU (`None`: not found), the settings and
/// which encapsulations are in use (Calico's `ConfigureDefaultMTUs` and
/// `determinePodMTU`).
pub fn compute(uplink_mtu: Option<u32>, cfg: &MtuConfig, inputs: &MtuInputs) -> Mtus {
    let host = uplink_mtu.unwrap_or(FALLBACK_HOST_MTU);
    // Calico's order: environment, then FelixConfiguration, then computed.
    let vxlan = set(cfg.vxlan)
        .or(set(inputs.felix_vxlan))
        .unwrap_or(host.saturating_sub(VXLAN_OVERHEAD_V4));
    let vxlan_v6 = set(cfg.vxlan_v6)
        .or(set(inputs.felix_vxlan_v6))
        .unwrap_or(host.saturating_sub(VXLAN_OVERHEAD_V6));
    let pod = [(vxlan, inputs.vxlan_v4), (vxlan_v6, inputs.vxlan_v6)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(m, _)| m)
        .min()
        .unwrap_or(host);
    if pod > host {
        tracing::warn!(
            pod,
            host,
            "the configured VXLAN MTU is larger than the uplink's"
        );
    }
    Mtus {
        host,
        detected: uplink_mtu.is_some(),
        vxlan,
        vxlan_v6,
        pod,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(v4: bool, v6: bool) -> MtuInputs {
        MtuInputs {
            uplink: Some("10.0.0.1".parse().unwrap()),
            vxlan_v4: v4,
            vxlan_v6: v6,
            ..Default::default()
        }
    }

    #[test]
    fn felix_configuration_between_the_environment_and_the_uplink() {
        let felix = MtuInputs {
            felix_vxlan: Some(1300),
            felix_vxlan_v6: Some(1280),
            ..inputs(true, false)
        };
        let m = compute(Some(1500), &MtuConfig::default(), &felix);
        assert_eq!((m.vxlan, m.vxlan_v6, m.pod), (1300, 1280, 1300));
        // The environment wins; its 0 is unset and lets FelixConfiguration in.
        let env = MtuConfig {
            vxlan: Some(1400),
            vxlan_v6: Some(0),
            file: None,
        };
        let m = compute(Some(1500), &env, &felix);
        assert_eq!((m.vxlan, m.vxlan_v6), (1400, 1280));
        // FelixConfiguration's 0: computed from the uplink.
        let zero = MtuInputs {
            felix_vxlan: Some(0),
            ..inputs(true, false)
        };
        assert_eq!(
            compute(Some(1500), &MtuConfig::default(), &zero).vxlan,
            1450
        );
    }

    #[test]
    fn vxlan_takes_its_headers_off_the_uplink() {
        let m = compute(Some(1500), &MtuConfig::default(), &inputs(true, false));
        assert_eq!(
            (m.host, m.vxlan, m.vxlan_v6, m.pod),
            (1500, 1450, 1430, 1450)
        );
        assert!(m.detected);
        // Both families: the smaller.
        let m = compute(Some(9000), &MtuConfig::default(), &inputs(true, true));
        assert_eq!(m.pod, 8930);
        // No encapsulation: the pods get the uplink's.
        let m = compute(Some(9000), &MtuConfig::default(), &inputs(false, false));
        assert_eq!(m.pod, 9000);
    }

    #[test]
    fn overrides_win_and_zero_means_unset() {
        let cfg = MtuConfig {
            vxlan: Some(1400),
            vxlan_v6: Some(0),
            file: None,
        };
        let m = compute(Some(1500), &cfg, &inputs(true, true));
        assert_eq!((m.vxlan, m.vxlan_v6, m.pod), (1400, 1430, 1400));
    }

    #[test]
    fn no_uplink_falls_back_as_calico() {
        let m = compute(None, &MtuConfig::default(), &inputs(true, false));
        assert_eq!((m.host, m.vxlan, m.detected), (1460, 1410, false));
    }
}
