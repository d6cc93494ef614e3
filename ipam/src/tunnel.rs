//! A node's VXLAN tunnel addresses, kept as calico-node's `allocateip`
//! keeps them (`node/pkg/allocateip`), one family at a time:
//!
//! | family | handle | attribute `type` | Node fields |
//! |---|---|---|---|
//! | IPv4 | `vxlan-tunnel-addr-<node>` | `vxlanTunnelAddress` | `ipv4VXLANTunnelAddr`, `vxlanTunnelMACAddr` |
//! | IPv6 | `vxlan-v6-tunnel-addr-<node>` | `vxlanV6TunnelAddress` | `ipv6VXLANTunnelAddr`, `vxlanTunnelMACAddrV6` |
//!
//! The pools a node's tunnel may use ([`tunnel_pools`]): of the family,
//! `vxlanMode` `Always` or `CrossSubnet`, not disabled, `allowedUses`
//! holding `Tunnel`, `nodeSelector` selecting the Node. With such pools:
//!
//! - the Node's address is kept when IPAM has it assigned with this
//!   family's `type` and `node` attributes and it lies in one of them;
//! - an address with no attributes and no handle (written before Calico
//!   used handles) is ours: it is released and assigned again with the
//!   handle and attributes;
//! - otherwise (none, not assigned, someone else's, or in a pool that no
//!   longer applies) a new one is assigned from the pools (intended use
//!   `Tunnel`), first releasing what the handle still holds. (calico-node
//!   skips that release when the Node names someone else's address, and
//!   so leaves its old tunnel address under the handle; the release is by
//!   handle, so it never frees the other holder's address.)
//!
//! With none, the handle's addresses are released and the Node's fields
//! cleared. The VTEP MAC written with an address is the Node's own when it
//! has a valid one, else the one Calico's felix derives from the node
//! name ([`calico_vtep_mac`]), so calico-node and manul-node hosts agree
//! on it. The Node is written once, compare-and-swap; on a conflict the
//! whole reconciliation runs again from the Node as it is now; on a
//! failure the addresses this call assigned are released (as calico-node
//! does).
//!
//! [`decide`] is the pure core; [`ensure_vxlan_tunnels`] reads and writes
//! etcd through [`Ipam`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::etcd::Error as EtcdError;
use manul_datastore::ipam::{attr, vxlan_tunnel_handle_id, vxlan_v6_tunnel_handle_id};
use manul_datastore::resources::{
    AllowedUse, IpPool, Mac, Node, VxlanMode, calico_vtep_mac, format_mac, parse_mac,
};
use manul_datastore::{Key, ResourceKind, Selector};

use crate::assign::AutoAssignArgs;
use crate::error::IpamError;
use crate::ipam::Ipam;
use crate::query::IpInfo;

/// Reconciliations started again after a conflicting Node write.
const ATTEMPTS: usize = 10;

/// Which tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `vxlan.calico`.
    V4,
    /// `vxlan-v6.calico`.
    V6,
}

impl Family {
    /// Both, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The IPAM handle of node `node`'s tunnel address.
    pub fn handle(self, node: &str) -> String {
        match self {
            Family::V4 => vxlan_tunnel_handle_id(node),
            Family::V6 => vxlan_v6_tunnel_handle_id(node),
        }
    }

    /// The allocation's `type` attribute.
    pub fn attr_type(self) -> &'static str {
        match self {
            Family::V4 => attr::TYPE_VXLAN,
            Family::V6 => attr::TYPE_VXLAN_V6,
        }
    }

    fn v6(self) -> bool {
        self == Family::V6
    }

    fn of(self, ip: &IpAddr) -> bool {
        ip.is_ipv6() == self.v6()
    }

    /// The Node's address and MAC fields.
    fn fields(self, node: &mut Node) -> (&mut String, &mut String) {
        let s = &mut node.spec;
        match self {
            Family::V4 => (&mut s.ipv4_vxlan_tunnel_addr, &mut s.vxlan_tunnel_mac_addr),
            Family::V6 => (
                &mut s.ipv6_vxlan_tunnel_addr,
                &mut s.vxlan_tunnel_mac_addr_v6,
            ),
        }
    }

    /// The Node's tunnel address of this family, when it holds one.
    pub fn address(self, node: &Node) -> Option<IpAddr> {
        let s = match self {
            Family::V4 => &node.spec.ipv4_vxlan_tunnel_addr,
            Family::V6 => &node.spec.ipv6_vxlan_tunnel_addr,
        };
        s.parse().ok().filter(|ip| self.of(ip))
    }
}

/// One family's tunnel end, as recorded on the Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// The tunnel address.
    pub address: IpAddr,
    /// The VTEP MAC.
    pub mac: Mac,
}

/// Both families' tunnels of a node (`None`: no VXLAN pool of that family
/// applies to it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tunnels {
    /// `vxlan.calico`'s.
    pub v4: Option<Tunnel>,
    /// `vxlan-v6.calico`'s.
    pub v6: Option<Tunnel>,
}

impl Tunnels {
    fn set(&mut self, family: Family, t: Option<Tunnel>) {
        match family {
            Family::V4 => self.v4 = t,
            Family::V6 => self.v6 = t,
        }
    }
}

/// Why a node's tunnels could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// No Node object for this node (it registers first).
    #[error("no Node named {0}")]
    NoNode(String),
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// IPAM failed (pool exhausted...).
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The Node kept changing under us.
    #[error("node {0} changed {ATTEMPTS} times while its tunnel addresses were being written")]
    Contended(String),
}

/// The pools node `node`'s tunnel of `family` may take its address from
/// (calico-node's `determineEnabledPoolCIDRs`).
pub fn tunnel_pools<'a>(
    pools: impl IntoIterator<Item = &'a IpPool>,
    node: &Node,
    family: Family,
) -> Vec<IpNet> {
    pools
        .into_iter()
        .filter(|p| {
            let s = &p.spec;
            family.of(&s.cidr.addr())
                && matches!(s.vxlan_mode(), VxlanMode::Always | VxlanMode::CrossSubnet)
                && !s.disabled
                && s.allows(&AllowedUse::Tunnel)
                && Selector::parse(s.node_selector())
                    .is_ok_and(|sel| sel.matches(&node.metadata.labels))
        })
        .map(|p| p.spec.cidr.trunc())
        .collect()
}

/// Who holds the Node's current address in IPAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Not assigned.
    Nobody,
    /// Assigned with this family's `type` and this node as `node`.
    Us,
    /// Assigned with no attributes and no handle (before handles).
    Legacy,
    /// Assigned to something else (a pod, another node).
    Other,
}

impl Holder {
    /// Who holds an address, from what IPAM says of it.
    pub fn of(info: &IpInfo, node: &str, family: Family) -> Holder {
        if !info.assigned {
            return Holder::Nobody;
        }
        let a = &info.attributes;
        if a.get(attr::TYPE).map(String::as_str) == Some(family.attr_type())
            && a.get(attr::NODE).map(String::as_str) == Some(node)
        {
            Holder::Us
        } else if a.is_empty() && info.handle.is_none() {
            Holder::Legacy
        } else {
            Holder::Other
        }
    }
}

/// What to do for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep the Node's address.
    Keep(IpAddr),
    /// Release what the handle holds, then assign a new address from the
    /// pools.
    Assign,
    /// Release the pre-handle address and assign it again under the handle.
    Adopt(IpAddr),
    /// No pool applies: release the handle's addresses, clear the fields.
    Remove,
}

/// What to do for one family, given the pools that apply, the Node's
/// address and who holds it (pure; calico-node's `ensureHostTunnelAddress`
/// and `removeHostTunnelAddr`).
pub fn decide(pools: &[IpNet], current: Option<IpAddr>, holder: &Holder) -> Decision {
    if pools.is_empty() {
        return Decision::Remove;
    }
    let Some(addr) = current else {
        return Decision::Assign;
    };
    match holder {
        Holder::Us if pools.iter().any(|p| p.contains(&addr)) => Decision::Keep(addr),
        Holder::Legacy => Decision::Adopt(addr),
        Holder::Us | Holder::Nobody | Holder::Other => Decision::Assign,
    }
}

fn attrs(node: &str, family: Family) -> BTreeMap<String, String> {
    BTreeMap::from([
        (attr::NODE.to_owned(), node.to_owned()),
        (attr::TYPE.to_owned(), family.attr_type().to_owned()),
    ])
}

/// Reconcile node `name`'s VXLAN tunnel addresses (both families) with
/// the pools; returns what the Node records afterwards.
pub async fn ensure_vxlan_tunnels(ipam: &Ipam, name: &str) -> Result<Tunnels, TunnelError> {
    let key = Key::resource(ResourceKind::Node, name)
        .path()
        .map_err(|_| TunnelError::NoNode(name.to_owned()))?;
    for _ in 0..ATTEMPTS {
        let mut assigned: Vec<(Family, IpAddr)> = Vec::new();
        let r = attempt(ipam, name, &key, &mut assigned).await;
        if matches!(r, Ok(Some(_))) {
            return Ok(r?.unwrap_or_default());
        }
        // Undo this attempt's assignments: the Node does not record them.
        for (family, ip) in assigned {
            if let Err(e) = ipam.release_by_handle(&family.handle(name)).await {
                tracing::warn!(node = name, %ip, error = %e, "could not release a tunnel address after a failed Node write; the leak check will report it");
            }
        }
        r?;
    }
    Err(TunnelError::Contended(name.to_owned()))
}

/// One reconciliation: `Ok(None)` when the Node changed meanwhile.
async fn attempt(
    ipam: &Ipam,
    name: &str,
    key: &str,
    assigned: &mut Vec<(Family, IpAddr)>,
) -> Result<Option<Tunnels>, TunnelError> {
    let ds = ipam.datastore();
    let Some(kv) = ds.get(key).await? else {
        return Err(TunnelError::NoNode(name.to_owned()));
    };
    let before = Node::from_json(&kv.value).map_err(|e| {
        TunnelError::Etcd(EtcdError::Malformed {
            key: key.to_owned(),
            error: e.to_string(),
        })
    })?;
    let pools: Vec<IpPool> = ipam
        .pools()
        .await?
        .into_iter()
        .map(|p| p.resource)
        .collect();
    let mut node = before.clone();
    let mut out = Tunnels::default();
    for family in Family::ALL {
        let wanted = tunnel_pools(&pools, &before, family);
        let current = family.address(&before);
        let holder = match current {
            Some(ip) if !wanted.is_empty() => Holder::of(&ipam.ip_info(ip).await?, name, family),
            _ => Holder::Nobody,
        };
        let handle = family.handle(name);
        let address = match decide(&wanted, current, &holder) {
            Decision::Keep(ip) => Some(ip),
            Decision::Remove => {
                ipam.release_by_handle(&handle).await?;
                None
            }
            Decision::Adopt(ip) => {
                ipam.release_ips(&[(ip, None)]).await?;
                match ipam
                    .assign_ip(ip, &handle, &attrs(name, family), name)
                    .await
                {
                    Ok(()) => {
                        assigned.push((family, ip));
                        Some(ip)
                    }
                    // Taken meanwhile: a new one.
                    Err(IpamError::AlreadyAssigned { .. }) => {
                        Some(assign(ipam, name, family, wanted, assigned).await?)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Decision::Assign => {
                ipam.release_by_handle(&handle).await?;
                Some(assign(ipam, name, family, wanted, assigned).await?)
            }
        };
        let (addr_field, mac_field) = family.fields(&mut node);
        match address {
            Some(ip) => {
                let mac =
                    parse_mac(mac_field).unwrap_or_else(|| calico_vtep_mac(name, family.v6()));
                *addr_field = ip.to_string();
                *mac_field = format_mac(&mac);
                out.set(family, Some(Tunnel { address: ip, mac }));
            }
            None => {
                addr_field.clear();
                mac_field.clear();
            }
        }
    }
    if node == before {
        return Ok(Some(out));
    }
    match ds.update(key, node.to_json(), kv.mod_revision).await {
        Ok(_) => {
            tracing::info!(node = name, tunnels = ?out, "VXLAN tunnel addresses recorded on the Node");
            Ok(Some(out))
        }
        Err(EtcdError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Assign one address of `family` from `pools` under the family's handle.
async fn assign(
    ipam: &Ipam,
    name: &str,
    family: Family,
    pools: Vec<IpNet>,
    assigned: &mut Vec<(Family, IpAddr)>,
) -> Result<IpAddr, TunnelError> {
    let args = AutoAssignArgs {
        handle_id: family.handle(name),
        num_v4: usize::from(family == Family::V4),
        num_v6: usize::from(family == Family::V6),
        host: name.to_owned(),
        attrs: attrs(name, family),
        pools,
        // calico-node: a tunnel address comes only from pools that allow
        // the Tunnel use.
        intended_use: Some(AllowedUse::Tunnel),
    };
    let ip = ipam
        .auto_assign(&args)
        .await?
        .into_iter()
        .find(|ip| family.of(ip))
        .ok_or_else(|| IpamError::NoPools {
            host: name.to_owned(),
            family: if family.v6() { "IPv6" } else { "IPv4" },
            reason: "no address assigned for the VXLAN tunnel".into(),
        })?;
    assigned.push((family, ip));
    tracing::info!(node = name, %ip, "assigned a VXLAN tunnel address");
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_datastore::resources::{IpPoolSpec, NodeSpec};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool(cidr: &str, mode: VxlanMode) -> IpPool {
        let mut spec = IpPoolSpec::new(net(cidr));
        spec.vxlan_mode = Some(mode);
        IpPool::new(cidr.replace(['/', ':', '.'], "-"), spec)
    }

    #[test]
    fn only_enabled_vxlan_pools_of_the_family_allowing_tunnels_and_selecting_the_node() {
        let mut node = Node::new("n1", NodeSpec::default());
        node.metadata.labels.insert("rack".into(), "a".into());
        let mut disabled = pool("10.2.0.0/16", VxlanMode::Always);
        disabled.spec.disabled = true;
        let mut no_tunnel = pool("10.3.0.0/16", VxlanMode::Always);
        no_tunnel.spec.allowed_uses = vec![AllowedUse::Workload];
        let mut other_rack = pool("10.4.0.0/16", VxlanMode::Always);
        other_rack.spec.node_selector = "rack == 'b'".into();
        let mut this_rack = pool("10.5.0.0/16", VxlanMode::CrossSubnet);
        this_rack.spec.node_selector = "rack == 'a'".into();
        let pools = [
            pool("10.1.0.0/16", VxlanMode::Always),
            pool("10.6.0.0/16", VxlanMode::Never),
            disabled,
            no_tunnel,
            other_rack,
            this_rack,
            pool("fd00:1::/64", VxlanMode::Always),
        ];
        assert_eq!(
            tunnel_pools(&pools, &node, Family::V4),
            vec![net("10.1.0.0/16"), net("10.5.0.0/16")]
        );
        assert_eq!(
            tunnel_pools(&pools, &node, Family::V6),
            vec![net("fd00:1::/64")]
        );
    }

    #[test]
    fn decisions_follow_calico_node() {
        let pools = [net("10.1.0.0/16")];
        let a = ip("10.1.0.7");
        assert_eq!(decide(&[], Some(a), &Holder::Us), Decision::Remove);
        assert_eq!(decide(&[], None, &Holder::Nobody), Decision::Remove);
        assert_eq!(decide(&pools, None, &Holder::Nobody), Decision::Assign);
        assert_eq!(decide(&pools, Some(a), &Holder::Us), Decision::Keep(a));
        // Ours, but the pool no longer applies to it.
        assert_eq!(
            decide(&pools, Some(ip("10.9.0.1")), &Holder::Us),
            Decision::Assign
        );
        assert_eq!(decide(&pools, Some(a), &Holder::Nobody), Decision::Assign);
        // A pod's address: a new one (the release is by our handle only).
        assert_eq!(decide(&pools, Some(a), &Holder::Other), Decision::Assign);
        assert_eq!(decide(&pools, Some(a), &Holder::Legacy), Decision::Adopt(a));
    }

    #[test]
    fn the_holder_is_read_from_the_attributes() {
        let mut info = IpInfo {
            assigned: true,
            handle: Some("vxlan-tunnel-addr-n1".into()),
            attributes: attrs("n1", Family::V4),
            ..IpInfo::default()
        };
        assert_eq!(Holder::of(&info, "n1", Family::V4), Holder::Us);
        assert_eq!(Holder::of(&info, "n2", Family::V4), Holder::Other);
        assert_eq!(Holder::of(&info, "n1", Family::V6), Holder::Other);
        info.attributes.clear();
        assert_eq!(Holder::of(&info, "n1", Family::V4), Holder::Other);
        info.handle = None;
        assert_eq!(Holder::of(&info, "n1", Family::V4), Holder::Legacy);
        info.assigned = false;
        assert_eq!(Holder::of(&info, "n1", Family::V4), Holder::Nobody);
    }
}
