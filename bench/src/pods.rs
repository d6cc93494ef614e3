//! A two-host rack with Calico-style pods for the eBPF dataplane
//! benchmark: hosts `host1`, `host2` on one segment (10.88.0.0/24), pods A
//! and B on host1 and C on host2 (10.65.0.2, 10.65.0.3, 10.65.1.2), each a
//! veth with its /32 on `eth0`, a link-local gateway whose MAC is the
//! host side's, and host routes (`dev cali…`, the other host's block via
//! its address). Everything lives in namespaces this creates and is gone
//! when the [`Rack`] drops.

use std::net::Ipv4Addr;

use anyhow::Result;
use manul_felix::ebpf::Endpoint;
use manul_felix::ebpf::link::links_in;
use manul_tests::{Host, Lab, Netns};

/// A pod: its namespace, host-side interface and address.
#[derive(Debug)]
pub struct Pod {
    pub ns: Netns,
    pub host_if: String,
    pub ip: Ipv4Addr,
}

impl Pod {
    /// The dataplane's view of it.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let link = links_in(Some(&self.ns.path()), &["eth0".to_string()])?[0]
            .ok_or_else(|| anyhow::anyhow!("pod eth0 missing"))?;
        Ok(Endpoint {
            interface: self.host_if.clone(),
            addresses: vec![self.ip.into()],
            mac: link.mac,
        })
    }
}

/// The lab and its three pods.
#[derive(Debug)]
pub struct Rack {
    pub a: Pod,
    pub b: Pod,
    pub c: Pod,
    pub lab: Lab,
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A pod on `host`: a veth `host_if` <-> `eth0` with `ip`/32, Calico's
/// link-local gateway and a host route to it.
pub fn pod(host: &Host, label: &str, host_if: &str, ip: &str) -> Result<Pod> {
    let ns = Netns::new(label)?;
    host.ns.veth(host_if, &ns, "eth0")?;
    ns.add_addr("eth0", &format!("{ip}/32"))?;
    let host_mac = links_in(Some(&host.ns.path()), &[host_if.to_string()])?[0]
        .ok_or_else(|| anyhow::anyhow!("{host_if} missing"))?
        .mac;
    ns.ip(&[
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ])?;
    ns.ip(&[
        "neigh",
        "add",
        "169.254.1.1",
        "lladdr",
        &mac_string(host_mac),
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])?;
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
    ])?;
    host.ns
        .sysctl(&format!("net.ipv4.conf.{host_if}.forwarding"), "1")?;
    host.ns.ip(&["route", "add", ip, "dev", host_if])?;
    Ok(Pod {
        ns,
        host_if: host_if.into(),
        ip: ip.parse()?,
    })
}

impl Rack {
    pub fn build() -> Result<Rack> {
        let lab = Lab::builder().hosts(2).build()?;
        let (h1, h2) = (lab.host(1), lab.host(2));
        let a = pod(h1, "benchA", "caliaaaa", "10.65.0.2")?;
        let b = pod(h1, "benchB", "calibbbb", "10.65.0.3")?;
        let c = pod(h2, "benchC", "calicccc", "10.65.1.2")?;
        h1.ns
            .ip(&["route", "add", "10.65.1.0/26", "via", &h2.ipv4.to_string()])?;
        h2.ns
            .ip(&["route", "add", "10.65.0.0/26", "via", &h1.ipv4.to_string()])?;
        Ok(Rack { a, b, c, lab })
    }
}
