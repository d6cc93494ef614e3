//! The VXLAN overlay as Calico builds it: one device `vxlan.calico` (VNI
//! 4096, UDP 4789, learning off, source = this node's address) carrying
//! this node's tunnel address as a /32 and its VTEP MAC; for every remote
//! VTEP a permanent ARP entry (tunnel address → its MAC) and a permanent
//! FDB entry (its MAC → its node address). Routes to remote blocks go via
//! the remote tunnel address, onlink on the device ([`crate::desired`]).
//!
//! [`overlay_from_snapshot`] reads it from Calico's Node objects
//! (`ipv4VXLANTunnelAddr`, `vxlanTunnelMACAddr`, `bgp.ipv4Address`);
//! [`VxlanManager::apply`] makes the kernel match — creating, fixing or
//! removing the device, its address, and exactly the ARP and FDB entries
//! wanted (stale ones are deleted). It is level-triggered: the agent calls
//! it on every change of the Nodes and on felix's resync timer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use futures_util::TryStreamExt;
use manul_confd::Snapshot;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkUnspec, LinkVxlan};

use crate::desired::{VXLAN_DEVICE, VXLAN_PORT, VXLAN_VNI};
use crate::netns::in_netns;

/// A MAC address.
pub type Mac = [u8; 6];

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// One node's end of the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vtep {
    /// The node's own address (the outer source/destination).
    pub node_ip: Ipv4Addr,
    /// Its tunnel address (on `vxlan.calico`).
    pub tunnel: Ipv4Addr,
    /// Its VTEP MAC.
    pub mac: Mac,
}

/// The overlay this node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// This node's VTEP.
    pub local: Vtep,
    /// Every other node's.
    pub remotes: Vec<Vtep>,
}

fn vtep_of(node: &manul_datastore::resources::Node) -> Option<Vtep> {
    Some(Vtep {
        node_ip: node.spec.bgp.as_ref()?.ipv4_net().ok()??.addr(),
        tunnel: node.spec.ipv4_vxlan_tunnel_addr.parse().ok()?,
        mac: parse_mac(&node.spec.vxlan_tunnel_mac_addr)?,
    })
}

/// The overlay of node `me`: `None` when it has no VTEP (no VXLAN pool,
/// or its tunnel address / MAC not assigned yet).
pub fn overlay_from_snapshot(snap: &Snapshot, me: &str) -> Option<Overlay> {
    let local = vtep_of(snap.node(me)?)?;
    let remotes = snap
        .nodes()
        .filter(|(n, _)| *n != me)
        .filter_map(|(_, n)| vtep_of(n))
        .collect();
    Some(Overlay { local, remotes })
}

/// Writes [`VxlanManager::apply`] made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxlanWrites {
    /// Device created, changed or deleted.
    pub device: u32,
    /// Addresses added or removed.
    pub addresses: u32,
    /// ARP entries added, replaced or removed.
    pub neighbours: u32,
    /// FDB entries added, replaced or removed.
    pub fdb: u32,
}

/// A failure while applying the overlay.
#[derive(Debug, thiserror::Error)]
#[error("vxlan.calico: {what}: {source}")]
pub struct VxlanError {
    what: &'static str,
    #[source]
    source: rtnetlink::Error,
}

fn err(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> VxlanError {
    move |source| VxlanError { what, source }
}

/// Keeps `vxlan.calico` and its ARP/FDB entries as wanted.
#[derive(Debug)]
pub struct VxlanManager {
    handle: Handle,
}

/// What the device has.
struct Device {
    index: u32,
    vni: Option<u32>,
    port: Option<u16>,
    local: Option<Ipv4Addr>,
    mac: Option<Vec<u8>>,
    up: bool,
}

fn device_of(msg: &LinkMessage) -> Device {
    let mut d = Device {
        index: msg.header.index,
        vni: None,
        port: None,
        local: None,
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::Address(m) => d.mac = Some(m.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(v)) = i {
                        for x in v {
                            match x {
                                InfoVxlan::Id(id) => d.vni = Some(*id),
                                InfoVxlan::Port(p) => d.port = Some(*p),
                                InfoVxlan::Local(l) => d.local = Some(*l),
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    d
}

impl VxlanManager {
    /// Open a netlink socket in `netns` (or here).
    pub async fn open(netns: Option<PathBuf>) -> std::io::Result<Self> {
        let handle = in_netns(netns.as_deref(), || {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok(handle)
        })?;
        Ok(VxlanManager { handle })
    }

    async fn device(&self) -> Result<Option<Device>, VxlanError> {
        let mut links = self.handle.link().get().execute();
        while let Some(l) = links.try_next().await.map_err(err("listing links"))? {
            if crate::netlink::link_name(&l) == Some(VXLAN_DEVICE) {
                return Ok(Some(device_of(&l)));
            }
        }
        Ok(None)
    }

    /// Make the kernel match `overlay` (`None`: no device at all).
    pub async fn apply(&self, overlay: Option<&Overlay>) -> Result<VxlanWrites, VxlanError> {
        let mut w = VxlanWrites::default();
        let existing = self.device().await?;
        let Some(o) = overlay else {
            if let Some(d) = existing {
                self.handle
                    .link()
                    .del(d.index)
                    .execute()
                    .await
                    .map_err(err("deleting"))?;
                w.device += 1;
            }
            return Ok(w);
        };
        let right = |d: &Device| {
            d.vni == Some(VXLAN_VNI)
                && d.port == Some(VXLAN_PORT)
                && d.local == Some(o.local.node_ip)
        };
        let device = match existing {
            Some(d) if right(&d) => d,
            other => {
                if let Some(d) = other {
                    tracing::info!("vxlan.calico has the wrong VNI, port or source; recreating it");
                    self.handle
                        .link()
                        .del(d.index)
                        .execute()
                        .await
                        .map_err(err("deleting"))?;
                }
                let msg = LinkVxlan::new(VXLAN_DEVICE, VXLAN_VNI)
                    .port(VXLAN_PORT)
                    .local(o.local.node_ip)
                    .learning(false)
                    .address(o.local.mac.to_vec())
                    .up()
                    .build();
                self.handle
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(err("creating"))?;
                w.device += 1;
                self.device()
                    .await?
                    .ok_or_else(|| err("creating")(rtnetlink::Error::RequestFailed))?
            }
        };
        if device.mac.as_deref() != Some(&o.local.mac[..]) || !device.up {
            let msg = LinkUnspec::new_with_index(device.index)
                .address(o.local.mac.to_vec())
                .up()
                .build();
            self.handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(err("setting MAC / up"))?;
            w.device += 1;
        }
        w.addresses = self.addresses(device.index, o.local.tunnel).await?;
        w.neighbours = self.neighbours(device.index, o).await?;
        w.fdb = self.fdb(device.index, o).await?;
        Ok(w)
    }

    /// Exactly `tunnel/32` as the device's IPv4 address.
    async fn addresses(&self, index: u32, tunnel: Ipv4Addr) -> Result<u32, VxlanError> {
        let mut writes = 0;
        let mut have = false;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut stale = Vec::new();
        while let Some(a) = addrs.try_next().await.map_err(err("listing addresses"))? {
            if a.header.family != AddressFamily::Inet {
                continue;
            }
            let ip = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(IpAddr::V4(v4))
                | AddressAttribute::Address(IpAddr::V4(v4)) => Some(*v4),
                _ => None,
            });
            if ip == Some(tunnel) && a.header.prefix_len == 32 {
                have = true;
            } else {
                stale.push(a);
            }
        }
        for a in stale {
            self.handle
                .address()
                .del(a)
                .execute()
                .await
                .map_err(err("removing an address"))?;
            writes += 1;
        }
        if !have {
            self.handle
                .address()
                .add(index, IpAddr::V4(tunnel), 32)
                .execute()
                .await
                .map_err(err("adding the tunnel address"))?;
            writes += 1;
        }
        Ok(writes)
    }

    async fn dump_neighbours(
        &self,
        index: u32,
        family: AddressFamily,
    ) -> Result<Vec<NeighbourMessage>, VxlanError> {
        let mut out = Vec::new();
        let mut n = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        while let Some(m) = n.try_next().await.map_err(err("listing neighbours"))? {
            if m.header.ifindex == index && m.header.state == NeighbourState::Permanent {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// ARP: remote tunnel address → remote MAC, exactly.
    async fn neighbours(&self, index: u32, o: &Overlay) -> Result<u32, VxlanError> {
        let want: BTreeMap<Ipv4Addr, Mac> = o.remotes.iter().map(|v| (v.tunnel, v.mac)).collect();
        let mut have = BTreeMap::new();
        let mut writes = 0;
        for m in self.dump_neighbours(index, AddressFamily::Inet).await? {
            let ip = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(*v4),
                _ => None,
            });
            let mac = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(l) => Some(l.clone()),
                _ => None,
            });
            match ip {
                Some(ip) if want.contains_key(&ip) => {
                    have.insert(ip, mac);
                }
                _ => {
                    self.handle
                        .neighbours()
                        .del(m)
                        .execute()
                        .await
                        .map_err(err("removing an ARP entry"))?;
                    writes += 1;
                }
            }
        }
        for (ip, mac) in &want {
            if have.get(ip).and_then(|m| m.as_deref()) == Some(&mac[..]) {
                continue;
            }
            self.handle
                .neighbours()
                .add(index, IpAddr::V4(*ip))
                .link_layer_address(mac)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(err("writing an ARP entry"))?;
            writes += 1;
        }
        Ok(writes)
    }

    /// FDB: remote MAC → remote node address, exactly.
    async fn fdb(&self, index: u32, o: &Overlay) -> Result<u32, VxlanError> {
        let want: BTreeMap<Mac, Ipv4Addr> = o.remotes.iter().map(|v| (v.mac, v.node_ip)).collect();
        let mut right = BTreeSet::new();
        let mut writes = 0;
        for m in self.dump_neighbours(index, AddressFamily::Bridge).await? {
            let mac: Option<Mac> = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(l) => l.clone().try_into().ok(),
                _ => None,
            });
            // In bridge-family messages the kernel's NDA_DST is parsed as
            // raw bytes, not as an IPv4 address.
            let dst = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(*v4),
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                    <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
                }
                _ => None,
            });
            match mac {
                Some(mac) if want.get(&mac) == dst.as_ref() => {
                    right.insert(mac);
                }
                // The device's own permanent entries carry no destination.
                _ if dst.is_none() => {}
                _ => {
                    self.handle
                        .neighbours()
                        .del(m)
                        .execute()
                        .await
                        .map_err(err("removing an FDB entry"))?;
                    writes += 1;
                }
            }
        }
        for (mac, dst) in &want {
            if right.contains(mac) {
                continue;
            }
            self.handle
                .neighbours()
                .add_bridge(index, mac)
                // NTF_SELF: the entry is the VXLAN device's own, not a bridge's.
                .flags(NeighbourFlags::Own)
                .destination(IpAddr::V4(*dst))
                .replace()
                .execute()
                .await
                .map_err(err("writing an FDB entry"))?;
            writes += 1;
        }
        Ok(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("66:1a:00:ff:0b:02"),
            Some([0x66, 0x1a, 0, 0xff, 0x0b, 2])
        );
        assert_eq!(parse_mac("66:1a:00:ff:0b"), None);
        assert_eq!(parse_mac("zz:1a:00:ff:0b:02"), None);
    }
}
