//! Finding this host's address, as calico-node's `IP=autodetect` does,
//! with its methods:
//!
//! - `first-found`: the first global address on an interface not named
//!   like a container or tunnel device (`lo`, `cali*`, `docker*`, `veth*`,
//!   `tunl*`, `vxlan*`, `kube-ipvs*`, `cni*`, `virbr*`, `dummy*`...);
//! - `interface=REGEX`: the first global address on an interface matching;
//! - `skip-interface=REGEX`: like `first-found`, also skipping matches;
//! - `can-reach=ADDR`: the address the kernel picks as source towards
//!   `ADDR` (a UDP socket is connected, nothing is sent).
//!
//! The result keeps the interface's prefix length (`10.0.0.5/24`), which
//! Calico stores in `Node.spec.bgp.ipv4Address`.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use regex::Regex;

/// Interfaces `first-found` never picks (Calico's list).
pub const EXCLUDED: &str = r"^(lo|docker.*|cbr.*|dummy.*|virbr.*|lxcbr.*|veth.*|cali.*|tunl.*|flannel.*|kube-ipvs.*|cni.*|vxlan.*|nodelocaldns.*|wireguard.*|tmp.*)$";

/// An autodetection method.
#[derive(Debug, Clone)]
pub enum Method {
    /// `first-found`.
    FirstFound,
    /// `interface=REGEX`.
    Interface(Regex),
    /// `skip-interface=REGEX`.
    SkipInterface(Regex),
    /// `can-reach=ADDR`.
    CanReach(IpAddr),
}

impl Method {
    /// Parse a method as written in `IP_AUTODETECTION_METHOD`.
    pub fn parse(s: &str) -> Result<Method> {
        let s = s.trim();
        if s == "first-found" {
            return Ok(Method::FirstFound);
        }
        let regex = |r: &str| {
            // Calico takes a comma-separated list of regexes.
            let joined = r
                .split(',')
                .map(|p| format!("(?:{})", p.trim()))
                .collect::<Vec<_>>()
                .join("|");
            Regex::new(&format!("^(?:{joined})$")).with_context(|| format!("bad regex {r:?}"))
        };
        if let Some(r) = s.strip_prefix("interface=") {
            return Ok(Method::Interface(regex(r)?));
        }
        if let Some(r) = s.strip_prefix("skip-interface=") {
            return Ok(Method::SkipInterface(regex(r)?));
        }
        if let Some(a) = s.strip_prefix("can-reach=") {
            let ip = a
                .trim()
                .parse()
                .with_context(|| format!("can-reach={a}: not an IP address"))?;
            return Ok(Method::CanReach(ip));
        }
        bail!(
            "unknown autodetection method {s:?}: use first-found, interface=REGEX, skip-interface=REGEX or can-reach=ADDR"
        )
    }
}

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub interface: String,
    /// Address with the interface's prefix length.
    pub net: IpNet,
}

/// Every address of every interface, in the kernel's order.
pub fn addresses() -> Result<Vec<IfAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("listing interfaces")? {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let net = if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            let len = u32::from(m.ip()).count_ones() as u8;
            IpNet::new(IpAddr::V4(a.ip()), len).ok()
        } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            let len = u128::from(m.ip()).count_ones() as u8;
            IpNet::new(IpAddr::V6(a.ip()), len).ok()
        } else {
            None
        };
        if let Some(net) = net {
            out.push(IfAddr {
                interface: ifa.interface_name,
                net,
            });
        }
    }
    Ok(out)
}

fn global(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80 && !v6.is_unspecified()
        }
    }
}

/// Pick the address of family `v6` from `addrs` by `method`.
pub fn pick(addrs: &[IfAddr], method: &Method, v6: bool) -> Result<IpNet> {
    let excluded = Regex::new(EXCLUDED).expect("the exclusion regex is valid");
    let family = |a: &&IfAddr| a.net.addr().is_ipv6() == v6 && global(&a.net.addr());
    let found = match method {
        Method::FirstFound => addrs
            .iter()
            .filter(family)
            .find(|a| !excluded.is_match(&a.interface)),
        Method::Interface(r) => addrs
            .iter()
            .filter(family)
            .find(|a| r.is_match(&a.interface)),
        Method::SkipInterface(r) => addrs
            .iter()
            .filter(family)
            .find(|a| !excluded.is_match(&a.interface) && !r.is_match(&a.interface)),
        Method::CanReach(dest) => {
            if dest.is_ipv6() != v6 {
                bail!("can-reach={dest} is not of the address family asked for");
            }
            let bind: SocketAddr = if v6 {
                "[::]:0".parse()?
            } else {
                "0.0.0.0:0".parse()?
            };
            let sock = UdpSocket::bind(bind)?;
            sock.connect(SocketAddr::new(*dest, 80))
                .with_context(|| format!("no route to {dest}"))?;
            let src = sock.local_addr()?.ip();
            let hit = addrs.iter().find(|a| a.net.addr() == src);
            return Ok(hit.map(|a| a.net).unwrap_or_else(|| IpNet::from(src)));
        }
    };
    found.map(|a| a.net).with_context(|| {
        format!(
            "no {} address found by {method:?}",
            if v6 { "IPv6" } else { "IPv4" }
        )
    })
}

/// Resolve an `IP`/`IP6` setting: an address (with or without length),
/// `autodetect` (by `method`), or `none`.
pub fn resolve(setting: &str, method: &str, v6: bool) -> Result<Option<IpNet>> {
    match setting.trim() {
        "none" | "" => Ok(None),
        "autodetect" => pick(&addresses()?, &Method::parse(method)?, v6).map(Some),
        fixed => {
            let net = fixed
                .parse::<IpNet>()
                .or_else(|_| fixed.parse::<IpAddr>().map(IpNet::from))
                .with_context(|| format!("{fixed:?} is not an address, autodetect or none"))?;
            if net.addr().is_ipv6() != v6 {
                bail!("{fixed} is of the wrong address family");
            }
            // A bare address takes its interface's prefix length, if it has one.
            if !fixed.contains('/')
                && let Some(a) = addresses()?
                    .into_iter()
                    .find(|a| a.net.addr() == net.addr())
            {
                return Ok(Some(a.net));
            }
            Ok(Some(net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: &str, n: &str) -> IfAddr {
        IfAddr {
            interface: i.into(),
            net: n.parse().unwrap(),
        }
    }

    #[test]
    fn methods_pick_as_calico() {
        let addrs = [
            a("lo", "127.0.0.1/8"),
            a("cali12345678901", "10.9.9.9/32"),
            a("docker0", "172.17.0.1/16"),
            a("eth0", "fe80::1/64"),
            a("eth0", "10.0.0.5/24"),
            a("eth1", "10.1.0.5/24"),
            a("eth1", "fd00::5/64"),
        ];
        let p = |m: &str, v6| pick(&addrs, &Method::parse(m).unwrap(), v6).map(|n| n.to_string());
        assert_eq!(p("first-found", false).unwrap(), "10.0.0.5/24");
        assert_eq!(p("first-found", true).unwrap(), "fd00::5/64");
        assert_eq!(p("interface=eth1", false).unwrap(), "10.1.0.5/24");
        assert_eq!(p("interface=ens.*,eth1", false).unwrap(), "10.1.0.5/24");
        assert_eq!(p("skip-interface=eth0", false).unwrap(), "10.1.0.5/24");
        assert!(p("interface=nothing", false).is_err());
        assert!(Method::parse("bogus").is_err());
        assert!(Method::parse("can-reach=x").is_err());
    }

    #[test]
    fn fixed_settings() {
        assert_eq!(resolve("none", "first-found", false).unwrap(), None);
        assert_eq!(
            resolve("10.0.0.1/24", "first-found", false).unwrap(),
            Some("10.0.0.1/24".parse().unwrap())
        );
        assert!(resolve("fd00::1", "first-found", false).is_err());
        assert!(resolve("garbage", "first-found", false).is_err());
    }
}
