//! The VXLAN overlay as Calico builds it, one device per family:
//!
//! | family | device | VNI | UDP port | tunnel address | Node fields |
//! |---|---|---|---|---|---|
//! | IPv4 | `vxlan.calico` | 4096 | 4789 | /32 | `ipv4VXLANTunnelAddr`, `vxlanTunnelMACAddr`, `bgp.ipv4Address` |
//! | IPv6 | `vxlan-v6.calico` | 6096 | 4789 | /128 | `ipv6VXLANTunnelAddr`, `vxlanTunnelMACAddrV6`, `bgp.ipv6Address` |
//!
//! The device (learning off, source = this node's address of that family,
//! MTU from [`crate::mtu`]) carries this node's tunnel address and its
//! VTEP MAC; for every remote
//! VTEP a permanent neighbour entry (tunnel address → its MAC: ARP or NDP)
//! and a permanent FDB entry (its MAC → its node address). Routes to
//! remote blocks go via the remote tunnel address, onlink on the device
//! ([`crate::desired`]).
//!
//! [`overlay_from_snapshot`] reads one family's overlay from Calico's Node
//! objects; [`VxlanManager::apply`] makes the kernel match — creating,
//! fixing or removing the device, its address, and exactly the neighbour
//! and FDB entries wanted (stale ones are deleted). It is level-triggered:
//! [`crate::overlay`] calls it on every change, on notifications about the
//! devices and their entries, and on a timer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

use crate::desired::{VXLAN_DEVICE, VXLAN_DEVICE_V6, VXLAN_PORT, VXLAN_VNI, VXLAN_VNI_V6};
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

/// Which overlay: IPv4 (`vxlan.calico`) or IPv6 (`vxlan-v6.calico`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Both, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The device's name.
    pub fn device(self) -> &'static str {
        match self {
            Family::V4 => VXLAN_DEVICE,
            Family::V6 => VXLAN_DEVICE_V6,
        }
    }

    /// The device's VNI.
    pub fn vni(self) -> u32 {
        match self {
            Family::V4 => VXLAN_VNI,
            Family::V6 => VXLAN_VNI_V6,
        }
    }

    fn address_family(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }

    fn host_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// One node's end of the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vtep {
    /// The node's own address (the outer source/destination).
    pub node_ip: IpAddr,
    /// Its tunnel address (on the device).
    pub tunnel: IpAddr,
    /// Its VTEP MAC.
    pub mac: Mac,
}

/// The overlay this node wants, one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// This node's VTEP.
    pub local: Vtep,
    /// Every other node's.
    pub remotes: Vec<Vtep>,
}

fn vtep_of(node: &manul_datastore::resources::Node, family: Family) -> Option<Vtep> {
    let bgp = node.spec.bgp.as_ref()?;
    Some(match family {
        Family::V4 => Vtep {
            node_ip: IpAddr::V4(bgp.ipv4_net().ok()??.addr()),
            tunnel: IpAddr::V4(node.spec.ipv4_vxlan_tunnel_addr.parse().ok()?),
            mac: node.vtep_mac(false),
        },
        Family::V6 => Vtep {
            node_ip: IpAddr::V6(bgp.ipv6_net().ok()??.addr()),
            tunnel: IpAddr::V6(node.spec.ipv6_vxlan_tunnel_addr.parse().ok()?),
            mac: node.vtep_mac(true),
        },
    })
}

/// Node `me`'s overlay of `family`: `None` when it has no VTEP of that
/// family (no VXLAN pool, or its tunnel address not assigned yet). A Node
/// without a VTEP MAC has the one Calico's felix derives from its name
/// ([`manul_datastore::resources::calico_vtep_mac`]).
pub fn overlay_from_snapshot(snap: &Snapshot, me: &str, family: Family) -> Option<Overlay> {
    let local = vtep_of(snap.node(me)?, family)?;
    let remotes = snap
        .nodes()
        .filter(|(n, _)| *n != me)
        .filter_map(|(_, n)| vtep_of(n, family))
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
    local: Option<IpAddr>,
    mac: Option<Vec<u8>>,
    mtu: Option<u32>,
    up: bool,
}

fn device_of(msg: &LinkMessage) -> Device {
    let mut d = Device {
        index: msg.header.index,
        vni: None,
        port: None,
        local: None,
        mac: None,
        mtu: None,
        up: msg.header.flags.contains(LinkFlags::Up),
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::Address(m) => d.mac = Some(m.clone()),
            LinkAttribute::Mtu(m) => d.mtu = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(v)) = i {
                        for x in v {
                            match x {
                                InfoVxlan::Id(id) => d.vni = Some(*id),
                                InfoVxlan::Port(p) => d.port = Some(*p),
                                InfoVxlan::Local(l) => d.local = Some(IpAddr::V4(*l)),
                                InfoVxlan::Local6(l) => d.local = Some(IpAddr::V6(*l)),
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

    async fn device(&self, family: Family) -> Result<Option<Device>, VxlanError> {
        let mut links = self.handle.link().get().execute();
        while let Some(l) = links.try_next().await.map_err(err("listing links"))? {
            if crate::netlink::link_name(&l) == Some(family.device()) {
                return Ok(Some(device_of(&l)));
            }
        }
        Ok(None)
    }

    /// The index of `family`'s device, if it exists.
    pub async fn device_index(&self, family: Family) -> Result<Option<u32>, VxlanError> {
        Ok(self.device(family).await?.map(|d| d.index))
    }

    /// Make `family`'s device match `overlay` (`None`: no device at all),
    /// with MTU `mtu` (`None`: as the kernel made it). An overlay whose
    /// addresses are not of `family` counts as none.
    pub async fn apply(
        &self,
        family: Family,
        overlay: Option<&Overlay>,
        mtu: Option<u32>,
    ) -> Result<VxlanWrites, VxlanError> {
        let mut w = VxlanWrites::default();
        let of_family = |ip: &IpAddr| ip.is_ipv4() == (family == Family::V4);
        let overlay = overlay.filter(|o| of_family(&o.local.node_ip) && of_family(&o.local.tunnel));
        let existing = self.device(family).await?;
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
            d.vni == Some(family.vni())
                && d.port == Some(VXLAN_PORT)
                && d.local == Some(o.local.node_ip)
        };
        let device = match existing {
            Some(d) if right(&d) => d,
            other => {
                if let Some(d) = other {
                    tracing::info!(
                        device = family.device(),
                        "VXLAN device has the wrong VNI, port or source; recreating it"
                    );
                    self.handle
                        .link()
                        .del(d.index)
                        .execute()
                        .await
                        .map_err(err("deleting"))?;
                }
                let builder = LinkVxlan::new(family.device(), family.vni()).port(VXLAN_PORT);
                let builder = match o.local.node_ip {
                    IpAddr::V4(a) => builder.local(a),
                    IpAddr::V6(a) => builder.local6(a),
                };
                let builder = builder.learning(false).address(o.local.mac.to_vec());
                let builder = match mtu {
                    Some(m) => builder.mtu(m),
                    None => builder,
                };
                let msg = builder.up().build();
                self.handle
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(err("creating"))?;
                w.device += 1;
                self.device(family)
                    .await?
                    .ok_or_else(|| err("creating")(rtnetlink::Error::RequestFailed))?
            }
        };
        let wrong_mtu = mtu.is_some_and(|m| device.mtu != Some(m));
        if device.mac.as_deref() != Some(&o.local.mac[..]) || !device.up || wrong_mtu {
            let msg = LinkUnspec::new_with_index(device.index).address(o.local.mac.to_vec());
            let msg = match mtu {
                Some(m) => msg.mtu(m),
                None => msg,
            };
            self.handle
                .link()
                .set(msg.up().build())
                .execute()
                .await
                .map_err(err("setting MAC / MTU / up"))?;
            w.device += 1;
        }
        w.addresses = self.addresses(family, device.index, o.local.tunnel).await?;
        w.neighbours = self.neighbours(family, device.index, o).await?;
        w.fdb = self.fdb(device.index, o).await?;
        Ok(w)
    }

    /// Exactly the tunnel address as a host address (/32, /128) on the
    /// device (link-local IPv6 addresses are the kernel's and stay).
    async fn addresses(
        &self,
        family: Family,
        index: u32,
        tunnel: IpAddr,
    ) -> Result<u32, VxlanError> {
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
            if a.header.family != family.address_family() {
                continue;
            }
            let ip = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(IpAddr::V6(v6)) = ip
                && v6.is_unicast_link_local()
            {
                continue;
            }
            if ip == Some(tunnel) && a.header.prefix_len == family.host_len() {
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
                .add(index, tunnel, family.host_len())
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

    /// ARP (NDP): remote tunnel address → remote MAC, exactly.
    async fn neighbours(&self, family: Family, index: u32, o: &Overlay) -> Result<u32, VxlanError> {
        let want: BTreeMap<IpAddr, Mac> = o.remotes.iter().map(|v| (v.tunnel, v.mac)).collect();
        let mut have = BTreeMap::new();
        let mut writes = 0;
        for m in self.dump_neighbours(index, family.address_family()).await? {
            let ip = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    Some(IpAddr::V4(*v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    Some(IpAddr::V6(*v6))
                }
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
                .add(index, *ip)
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
        let want: BTreeMap<Mac, IpAddr> = o.remotes.iter().map(|v| (v.mac, v.node_ip)).collect();
        let mut right = BTreeSet::new();
        let mut writes = 0;
        for m in self.dump_neighbours(index, AddressFamily::Bridge).await? {
            let mac: Option<Mac> = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(l) => l.clone().try_into().ok(),
                _ => None,
            });
            // In bridge-family messages the kernel's NDA_DST may be parsed
            // as raw bytes, not as an address.
            let dst = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    Some(IpAddr::V4(*v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    Some(IpAddr::V6(*v6))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => match b.len() {
                    4 => <[u8; 4]>::try_from(b.as_slice())
                        .ok()
                        .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                    16 => <[u8; 16]>::try_from(b.as_slice())
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                    _ => None,
                },
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
                .destination(*dst)
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
