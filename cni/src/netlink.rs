//! The pod's network over rtnetlink, as Calico wires it:
//!
//! - a veth pair: the host end `cali…` in this (the host's) namespace with
//!   MAC `ee:ee:ee:ee:ee:ee`, the pod end created directly inside
//!   `CNI_NETNS` under `CNI_IFNAME`;
//! - host end: proxy ARP (answer for the pod's gateway at once), forwarding,
//!   and for IPv6 proxy NDP; a host route per pod address to the host end,
//!   marked with felix's protocol 80 so felix owns it like its own;
//! - pod end: the /32 (/128) addresses, and default routes via the
//!   link-local gateways `169.254.1.1` (onlink) and `fe80::ecee:eeff:feee:eeee`
//!   (the host end's link-local address, derived from its MAC).
//!
//! A netlink socket belongs to the namespace of the thread that opens it,
//! so the pod's socket is opened on a thread that entered `CNI_NETNS` with
//! `setns(2)`; the process itself never leaves the host's namespace.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};
use nix::sched::{CloneFlags, setns};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{CniError, Result, io as io_err};

/// The host end's MAC (Calico's).
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The pod's IPv4 gateway.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the host end's link-local address.
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);
/// felix's routing protocol number.
pub const FELIX_PROTOCOL: u8 = 80;

/// What [`setup`] made.
#[derive(Debug, Clone)]
pub struct Wired {
    /// The pod end's MAC, `aa:bb:...`.
    pub pod_mac: String,
}

/// A netlink handle in `netns` (`None`: here).
pub async fn connect(netns: Option<&Path>) -> Result<Handle> {
    let open = || -> io::Result<Handle> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(handle)
    };
    let Some(path) = netns else {
        return open().map_err(|e| io_err("opening a netlink socket", e));
    };
    let file = File::open(path).map_err(|e| {
        io_err(
            &format!("opening the network namespace {}", path.display()),
            e,
        )
    })?;
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            let _guard = runtime.enter();
            open()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
    .map_err(|e| io_err(&format!("netlink in {}", path.display()), e))
}

/// The link called `name`, if any.
pub async fn link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    match handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(l) => Ok(l),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(None),
        Err(e) => Err(io_err(&format!("looking up {name}"), e)),
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// The MAC of a link as `aa:bb:cc:dd:ee:ff`.
pub fn mac_of(l: &LinkMessage) -> String {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => Some(
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Delete the link `name` here if it exists (its peer goes with it).
pub async fn remove(handle: &Handle, name: &str) -> Result<bool> {
    let Some(l) = link(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(l.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(false),
        Err(e) => Err(io_err(&format!("deleting {name}"), e)),
    }
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| io_err(&format!("writing {path}"), e))
}

/// Wire the pod: see the module doc. On error the caller removes `host_veth`.
pub async fn setup(
    host: &Handle,
    netns: &Path,
    host_veth: &str,
    ifname: &str,
    mtu: Option<u32>,
    ips: &[IpNet],
) -> Result<Wired> {
    let ns_file = File::open(netns).map_err(|e| {
        CniError::new(
            crate::error::INVALID_ENV,
            format!("CNI_NETNS {}: {e}", netns.display()),
        )
    })?;
    let pod = connect(Some(netns)).await?;
    if link(&pod, ifname).await?.is_some() {
        return Err(io_err(
            "creating the pod interface",
            format!("{ifname} already exists in {}", netns.display()),
        ));
    }
    // The pod end is created directly in the pod's namespace, under its name.
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(ifname.to_string())
        .setns_by_fd(ns_file.as_raw_fd());
    let mut msg = LinkVeth::new(host_veth, ifname).address(HOST_MAC.to_vec());
    if let Some(mtu) = mtu {
        peer = peer.mtu(mtu);
        msg = msg.mtu(mtu);
    }
    let msg = msg
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    host.link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| io_err(&format!("creating veth {host_veth}"), e))?;
    let host_link = link(host, host_veth)
        .await?
        .ok_or_else(|| io_err("creating the veth", format!("{host_veth} vanished")))?;
    let host_index = host_link.header.index;

    let v6 = ips.iter().any(|n| matches!(n, IpNet::V6(_)));
    let v4c = |k: &str| format!("/proc/sys/net/ipv4/conf/{host_veth}/{k}");
    sysctl(
        &format!("/proc/sys/net/ipv4/neigh/{host_veth}/proxy_delay"),
        "0",
    )?;
    sysctl(&v4c("proxy_arp"), "1")?;
    sysctl(&v4c("forwarding"), "1")?;
    if v6 {
        let v6c = |k: &str| format!("/proc/sys/net/ipv6/conf/{host_veth}/{k}");
        sysctl(&v6c("disable_ipv6"), "0")?;
        sysctl(&v6c("accept_ra"), "0")?;
        sysctl(&v6c("proxy_ndp"), "1")?;
        sysctl(&v6c("forwarding"), "1")?;
    }
    host.link()
        .set(LinkUnspec::new_with_index(host_index).up().build())
        .execute()
        .await
        .map_err(|e| io_err(&format!("setting {host_veth} up"), e))?;

    // Pod side.
    let pod_link = link(&pod, ifname)
        .await?
        .ok_or_else(|| io_err("creating the veth", format!("{ifname} is not in the pod")))?;
    let pod_index = pod_link.header.index;
    if let Some(lo) = link(&pod, "lo").await? {
        pod.link()
            .set(LinkUnspec::new_with_index(lo.header.index).up().build())
            .execute()
            .await
            .map_err(|e| io_err("setting lo up in the pod", e))?;
    }
    pod.link()
        .set(LinkUnspec::new_with_index(pod_index).up().build())
        .execute()
        .await
        .map_err(|e| io_err(&format!("setting {ifname} up"), e))?;
    for net in ips {
        let mut req = pod
            .address()
            .add(pod_index, net.addr(), net.max_prefix_len());
        if net.addr().is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(|e| io_err(&format!("adding {net} to {ifname}"), e))?;
    }
    if ips.iter().any(|n| matches!(n, IpNet::V4(_))) {
        let r = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(GATEWAY_V4)
            .output_interface(pod_index)
            .onlink()
            .build();
        pod.route()
            .add(r)
            .execute()
            .await
            .map_err(|e| io_err("adding the pod's default route via 169.254.1.1", e))?;
    }
    if v6 {
        let r = RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(Ipv6Addr::UNSPECIFIED, 0)
            .gateway(GATEWAY_V6)
            .output_interface(pod_index)
            .build();
        pod.route()
            .add(r)
            .execute()
            .await
            .map_err(|e| io_err("adding the pod's IPv6 default route", e))?;
    }

    // Host routes to the pod.
    for net in ips {
        host.route()
            .add(host_route(net.addr(), host_index))
            .replace()
            .execute()
            .await
            .map_err(|e| io_err(&format!("adding the host route {net} dev {host_veth}"), e))?;
    }
    Ok(Wired {
        pod_mac: mac_of(&pod_link),
    })
}

/// `<ip>/32 dev <veth> scope link proto 80`, as felix writes it.
fn host_route(ip: IpAddr, oif: u32) -> RouteMessage {
    let mut r = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(ip, if ip.is_ipv4() { 32 } else { 128 })
        .expect("the prefix length fits the family")
        .output_interface(oif)
        .scope(RouteScope::Link)
        .protocol(RouteProtocol::from(FELIX_PROTOCOL))
        .build();
    if ip.is_ipv6() {
        r.header.scope = RouteScope::Universe;
    }
    r
}

/// What CHECK looks at in the pod: the addresses on `ifname` and whether
/// a default route leaves through it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    /// Addresses on the interface.
    pub addrs: Vec<IpAddr>,
    /// Whether an IPv4 default route via the gateway exists.
    pub default_v4: bool,
}

/// Inspect the pod's interface; `None` when it does not exist.
pub async fn inspect(netns: &Path, ifname: &str) -> Result<Option<PodView>> {
    let pod = connect(Some(netns)).await?;
    let Some(l) = link(&pod, ifname).await? else {
        return Ok(None);
    };
    let index = l.header.index;
    let mut view = PodView::default();
    let mut addrs = pod.address().get().set_link_index_filter(index).execute();
    while let Some(a) = addrs
        .try_next()
        .await
        .map_err(|e| io_err("listing the pod's addresses", e))?
    {
        for attr in &a.attributes {
            if let AddressAttribute::Address(ip) = attr {
                view.addrs.push(*ip);
            }
        }
    }
    let mut routes = pod
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = routes
        .try_next()
        .await
        .map_err(|e| io_err("listing the pod's routes", e))?
    {
        let via_gw = r.attributes.iter().any(
            |a| matches!(a, RouteAttribute::Gateway(RouteAddress::Inet(g)) if *g == GATEWAY_V4),
        );
        let via_if = r
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Oif(o) if *o == index));
        if r.header.destination_prefix_length == 0 && via_gw && via_if {
            view.default_v4 = true;
        }
    }
    Ok(Some(view))
}
