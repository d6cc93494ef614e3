//! A rack in network namespaces: N hosts on one L2 segment, optionally a
//! top-of-rack router on the same segment routing for them.
//!
//! ```text
//!   host1 eth0 ─┐
//!   host2 eth0 ─┼─ br0 (switch namespace) ─┬─ eth0 tor (optional)
//!   hostN eth0 ─┘                          │
//! ```
//!
//! Hosts get `<v4 subnet>.<i>` and `<v6 prefix>::<i>` (i = 1..=N); the ToR
//! gets `.254` / `::fe`, forwards, and is every host's default gateway.
//! Hosts forward too (they route for their pods). An optional external
//! host (`.253` / `::fd`, [`LabBuilder::external`]) stands for the world
//! outside the cluster: it knows only the segment (no default route, no
//! route to any pod), so a pod reaches it only through its host's NAT.
//! Everything is torn down when the [`Lab`] drops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};

use crate::Netns;

/// Last octet / last hextet of the ToR's address on the segment.
const TOR_INDEX: u8 = 254;
/// Last octet / last hextet of the external host's address.
const EXTERNAL_INDEX: u8 = 253;

/// One namespace on the lab segment.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name: `host1`, `host2`, ..., `tor`.
    pub name: String,
    pub ns: Netns,
    /// The device on the segment (`eth0`).
    pub iface: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

impl Host {
    pub fn ipv4_ip(&self) -> IpAddr {
        IpAddr::V4(self.ipv4)
    }

    pub fn ipv6_ip(&self) -> IpAddr {
        IpAddr::V6(self.ipv6)
    }
}

/// Builder for a [`Lab`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    hosts: usize,
    tor: bool,
    external: bool,
    /// The first three octets of the /24.
    v4: [u8; 3],
    /// The first four hextets of the /64.
    v6: [u16; 4],
}

impl Default for LabBuilder {
    fn default() -> Self {
        Self {
            hosts: 2,
            tor: false,
            external: false,
            v4: [10, 88, 0],
            v6: [0xfd00, 0x88, 0, 0],
        }
    }
}

impl LabBuilder {
    /// Number of hosts (1..=253).
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }

    /// Add a `tor` router on the segment, default gateway of every host.
    pub fn tor(mut self, yes: bool) -> Self {
        self.tor = yes;
        self
    }

    /// Add an `ext` host on the segment (`.253`) that routes nowhere:
    /// outside every pool, with no route to the pods.
    pub fn external(mut self, yes: bool) -> Self {
        self.external = yes;
        self
    }

    /// The segment's IPv4 /24, given by its first three octets.
    pub fn ipv4_subnet(mut self, octets: [u8; 3]) -> Self {
        self.v4 = octets;
        self
    }

    /// The segment's IPv6 /64, given by its first four hextets.
    pub fn ipv6_prefix(mut self, hextets: [u16; 4]) -> Self {
        self.v6 = hextets;
        self
    }

    fn v4_addr(&self, i: u8) -> Ipv4Addr {
        let [a, b, c] = self.v4;
        Ipv4Addr::new(a, b, c, i)
    }

    fn v6_addr(&self, i: u8) -> Ipv6Addr {
        let [a, b, c, d] = self.v6;
        Ipv6Addr::new(a, b, c, d, 0, 0, 0, u16::from(i))
    }

    pub fn build(self) -> Result<Lab> {
        anyhow::ensure!(
            (1..usize::from(TOR_INDEX)).contains(&self.hosts),
            "a lab holds 1..=253 hosts, not {}",
            self.hosts
        );
        anyhow::ensure!(
            !self.external || self.hosts < usize::from(EXTERNAL_INDEX),
            "with an external host (.{EXTERNAL_INDEX}) a lab holds 1..=252 hosts"
        );
        let switch = Netns::new("switch")?;
        switch.add_bridge("br0")?;
        let mut hosts = Vec::with_capacity(self.hosts);
        for i in 1..=self.hosts as u8 {
            let host = self.attach(&switch, &format!("host{i}"), i)?;
            host.ns.sysctl("net.ipv4.ip_forward", "1")?;
            host.ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
            hosts.push(host);
        }
        let tor = if self.tor {
            let tor = self.attach(&switch, "tor", TOR_INDEX)?;
            tor.ns.sysctl("net.ipv4.ip_forward", "1")?;
            tor.ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
            for h in &hosts {
                h.ns.ip(&["route", "add", "default", "via", &tor.ipv4.to_string()])?;
                h.ns.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &tor.ipv6.to_string(),
                ])?;
            }
            Some(tor)
        } else {
            None
        };
        let external = if self.external {
            Some(self.attach(&switch, "ext", EXTERNAL_INDEX)?)
        } else {
            None
        };
        Ok(Lab {
            hosts,
            tor,
            external,
            switch,
        })
    }

    /// A namespace with `eth0` on the switch's bridge, addressed as index `i`.
    fn attach(&self, switch: &Netns, name: &str, i: u8) -> Result<Host> {
        let attach = || -> Result<Host> {
            let ns = Netns::new(name)?;
            let port = format!("p{i}");
            ns.veth("eth0", switch, &port)?;
            switch.attach_to_bridge(&port, "br0")?;
            let host = Host {
                name: name.to_string(),
                ns,
                iface: "eth0".to_string(),
                ipv4: self.v4_addr(i),
                ipv6: self.v6_addr(i),
            };
            host.ns.add_addr("eth0", &format!("{}/24", host.ipv4))?;
            host.ns.add_addr("eth0", &format!("{}/64", host.ipv6))?;
            Ok(host)
        };
        attach().with_context(|| format!("attaching {name} to the lab segment"))
    }
}

/// A built lab; namespaces are deleted when it drops.
#[derive(Debug)]
pub struct Lab {
    pub hosts: Vec<Host>,
    pub tor: Option<Host>,
    /// The external host ([`LabBuilder::external`]).
    pub external: Option<Host>,
    /// The namespace holding the bridge `br0`.
    pub switch: Netns,
}

impl Lab {
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// Host by 1-based number, as named (`host(1)` is `host1`).
    pub fn host(&self, n: usize) -> &Host {
        &self.hosts[n - 1]
    }

    /// The ToR; panics if the lab was built without one.
    pub fn tor(&self) -> &Host {
        self.tor.as_ref().expect("lab built without .tor(true)")
    }

    /// The external host; panics if the lab was built without one.
    pub fn external(&self) -> &Host {
        self.external
            .as_ref()
            .expect("lab built without .external(true)")
    }
}
