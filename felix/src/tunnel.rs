//! This node's VXLAN tunnel address and VTEP MAC, as calico-node's
//! `allocateip` keeps them: while a VXLAN pool (`vxlanMode` not `Never`,
//! enabled, allowing `Tunnel` use, selecting this node) exists, the node
//! holds one IPv4 address from such a pool under the handle
//! `vxlan-tunnel-addr-<node>` (attribute `type: vxlanTunnelAddress`),
//! recorded on its Node as `ipv4VXLANTunnelAddr`, with a VTEP MAC in
//! `vxlanTunnelMACAddr` (a random locally administered unicast MAC, kept
//! once chosen). With no such pool left, the address is released and both
//! fields are cleared. Every write is compare-and-swap; a Node changed
//! meanwhile is read again.
//!
//! This runs at agent start and when pools change; it belongs with the
//! node agent's wiring once that exists (it writes etcd, which the
//! dataplane code proper does not).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use manul_datastore::etcd::Error as EtcdError;
use manul_datastore::ipam::{attr, vxlan_tunnel_handle_id};
use manul_datastore::keys::prefix;
use manul_datastore::resources::{AllowedUse, IpPool, Node, VxlanMode};
use manul_datastore::{Key, ResourceKind, Selector};
use manul_ipam::{AutoAssignArgs, Ipam, IpamError};

use crate::vxlan::{Mac, parse_mac};

/// Compare-and-swap attempts on the Node before giving up.
const ATTEMPTS: usize = 10;

/// Why the tunnel address could not be ensured.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// No Node object for this node.
    #[error("no Node named {0}")]
    NoNode(String),
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// IPAM failed (pool exhausted…).
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The Node kept changing under us.
    #[error("node {0} changed {ATTEMPTS} times while its tunnel address was being written")]
    Contended(String),
}

fn random_mac() -> Mac {
    let mut mac = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut mac))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        mac.copy_from_slice(&t[..6]);
    }
    mac[0] = (mac[0] | 0x02) & !0x01; // locally administered, unicast
    mac
}

fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The VXLAN pools that serve node `node` (IPv4).
async fn vxlan_pools(ipam: &Ipam, node: &Node) -> Result<Vec<IpNet>, TunnelError> {
    let (kvs, _) = ipam
        .datastore()
        .list(&prefix::kind(ResourceKind::IpPool), None)
        .await?;
    Ok(kvs
        .iter()
        .filter_map(|kv| IpPool::from_json(&kv.value).ok())
        .filter(|p| {
            let s = &p.spec;
            matches!(s.cidr, IpNet::V4(_))
                && s.vxlan_mode() != VxlanMode::Never
                && !s.disabled
                && s.allows(&AllowedUse::Tunnel)
                && Selector::parse(s.node_selector())
                    .is_ok_and(|sel| sel.matches(&node.metadata.labels))
        })
        .map(|p| p.spec.cidr)
        .collect())
}

/// Ensure node `name`'s VXLAN tunnel address and MAC; returns them, or
/// `None` when no VXLAN pool serves the node (any old address released).
pub async fn ensure_vxlan_tunnel(
    ipam: &Ipam,
    name: &str,
) -> Result<Option<(Ipv4Addr, Mac)>, TunnelError> {
    let ds = ipam.datastore();
    let key = Key::resource(ResourceKind::Node, name)
        .path()
        .map_err(|_| TunnelError::NoNode(name.to_owned()))?;
    let handle = vxlan_tunnel_handle_id(name);
    for _ in 0..ATTEMPTS {
        let Some(kv) = ds.get(&key).await? else {
            return Err(TunnelError::NoNode(name.to_owned()));
        };
        let mut node = Node::from_json(&kv.value).map_err(|e| {
            TunnelError::Etcd(EtcdError::Malformed {
                key: key.clone(),
                error: e.to_string(),
            })
        })?;
        let pools = vxlan_pools(ipam, &node).await?;
        let current: Option<Ipv4Addr> = node.spec.ipv4_vxlan_tunnel_addr.parse().ok();
        let handle_exists = ds
            .get(
                &Key::Handle { id: handle.clone() }
                    .path()
                    .unwrap_or_default(),
            )
            .await?
            .is_some();
        let result = if pools.is_empty() {
            if current.is_none() && node.spec.vxlan_tunnel_mac_addr.is_empty() && !handle_exists {
                return Ok(None);
            }
            ipam.release_by_handle(&handle).await?;
            node.spec.ipv4_vxlan_tunnel_addr.clear();
            node.spec.vxlan_tunnel_mac_addr.clear();
            None
        } else {
            let valid = current
                .filter(|a| handle_exists && pools.iter().any(|p| p.contains(&IpAddr::V4(*a))));
            let addr = match valid {
                Some(a) => a,
                None => {
                    ipam.release_by_handle(&handle).await?;
                    let args = AutoAssignArgs {
                        handle_id: handle.clone(),
                        num_v4: 1,
                        num_v6: 0,
                        host: name.to_owned(),
                        attrs: BTreeMap::from([(
                            attr::TYPE.to_owned(),
                            attr::TYPE_VXLAN.to_owned(),
                        )]),
                        pools: pools.clone(),
                        // Calico: a tunnel address comes only from pools
                        // that allow the Tunnel use.
                        intended_use: Some(AllowedUse::Tunnel),
                    };
                    match ipam.auto_assign(&args).await?.first() {
                        Some(IpAddr::V4(a)) => *a,
                        _ => {
                            return Err(TunnelError::Ipam(IpamError::NoPools {
                                host: name.to_owned(),
                                family: "IPv4",
                                reason: "no IPv4 address assigned for the VXLAN tunnel".into(),
                            }));
                        }
                    }
                }
            };
            let mac = parse_mac(&node.spec.vxlan_tunnel_mac_addr).unwrap_or_else(random_mac);
            if valid == Some(addr) && parse_mac(&node.spec.vxlan_tunnel_mac_addr) == Some(mac) {
                return Ok(Some((addr, mac)));
            }
            node.spec.ipv4_vxlan_tunnel_addr = addr.to_string();
            node.spec.vxlan_tunnel_mac_addr = format_mac(&mac);
            Some((addr, mac))
        };
        match ds.update(&key, node.to_json(), kv.mod_revision).await {
            Ok(_) => {
                tracing::info!(node = name, tunnel = ?result, "VXLAN tunnel address recorded on the Node");
                return Ok(result);
            }
            Err(EtcdError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TunnelError::Contended(name.to_owned()))
}
