//! A Calico-style pod for the eBPF tests: a namespace the test creates,
//! a veth pair (host side `cali...`, pod side `eth0`), the pod's /32 and
//! /128, and Calico's gateway set-up (169.254.1.1 answered for by the host
//! side's MAC, the host side's link-local address for IPv6).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use manul_felix::desired::Workload;
use manul_felix::ebpf::{Endpoint, link::links_in};
use manul_tests::Netns;

pub mod hosts;

pub struct Pod {
    pub ns: Netns,
    pub host_if: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

impl Pod {
    pub fn ips(&self) -> [IpAddr; 2] {
        [IpAddr::V4(self.v4), IpAddr::V6(self.v6)]
    }

    pub fn endpoint(&self) -> Endpoint {
        let mac = links_in(Some(&self.ns.path()), &["eth0".to_string()]).unwrap()[0]
            .expect("pod eth0")
            .mac;
        Endpoint {
            interface: self.host_if.clone(),
            addresses: self.ips().to_vec(),
            mac,
        }
    }

    pub fn workload(&self) -> Workload {
        Workload {
            interface: self.host_if.clone(),
            addresses: self.ips().iter().map(|a| IpNet::from(*a)).collect(),
        }
    }
}

/// A pod on `host`: veth `host_if` <-> `eth0`, Calico's gateway set-up.
pub fn pod(host: &Netns, label: &str, host_if: &str, v4: &str, v6: &str) -> Pod {
    let ns = Netns::new(label).unwrap();
    // No duplicate address detection: link-local addresses usable at once.
    for n in [&ns, host] {
        n.sysctl("net.ipv6.conf.default.accept_dad", "0").unwrap();
    }
    host.veth(host_if, &ns, "eth0").unwrap();
    ns.add_addr("eth0", &format!("{v4}/32")).unwrap();
    ns.add_addr("eth0", &format!("{v6}/128")).unwrap();
    // IPv4: 169.254.1.1 on eth0, answered for by the host's MAC.
    let host_mac = links_in(Some(&host.path()), &[host_if.to_string()]).unwrap()[0]
        .unwrap()
        .mac;
    let mac = host_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    ns.ip(&[
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ])
    .unwrap();
    ns.ip(&[
        "neigh",
        "add",
        "169.254.1.1",
        "lladdr",
        &mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])
    .unwrap();
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
    ])
    .unwrap();
    // IPv6: the host side's link-local address as gateway.
    host.add_addr(host_if, "fe80::1/64").unwrap();
    ns.ip(&[
        "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
    ])
    .unwrap();
    for (key, value) in [
        (format!("net.ipv4.conf.{host_if}.forwarding"), "1"),
        (format!("net.ipv6.conf.{host_if}.forwarding"), "1"),
    ] {
        host.sysctl(&key, value).unwrap();
    }
    Pod {
        ns,
        host_if: host_if.into(),
        v4: v4.parse().unwrap(),
        v6: v6.parse().unwrap(),
    }
}
