//! Lab: N hosts on one segment, a ToR that routes for them.

use manul_tests::{Lab, Need, require};

#[test]
fn three_hosts_and_a_tor_reach_each_other() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("ping"));
    let lab = Lab::builder().hosts(3).tor(true).build()?;
    assert_eq!(lab.hosts.len(), 3);
    let names: Vec<&str> = lab.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["host1", "host2", "host3"]);
    assert_eq!(lab.host(2).ipv4.to_string(), "10.88.0.2");
    let tor = lab.tor();
    for h in &lab.hosts {
        h.ns.ping(tor.ipv4_ip(), 1)?;
        h.ns.ping(tor.ipv6_ip(), 1)?;
        for other in lab.hosts.iter().filter(|o| o.name != h.name) {
            h.ns.ping(other.ipv4_ip(), 1)?;
            h.ns.ping(other.ipv6_ip(), 1)?;
        }
        let routes = h.ns.ip(&["route", "show", "default"])?;
        assert!(routes.contains("via 10.88.0.254"), "{}: {routes}", h.name);
    }
    // The ToR forwards: a host reaches an address only the ToR's far side
    // has, through its default route.
    tor.ns.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"])?;
    lab.host(1).ns.ping("192.0.2.1".parse()?, 1)?;
    Ok(())
}

#[test]
fn lab_without_tor_and_custom_subnet() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("ping"));
    let lab = Lab::builder()
        .hosts(2)
        .ipv4_subnet([10, 89, 7])
        .ipv6_prefix([0xfd00, 0x89, 7, 0])
        .build()?;
    assert!(lab.tor.is_none());
    assert_eq!(lab.host(1).ipv6.to_string(), "fd00:89:7::1");
    lab.host(1).ns.ping(lab.host(2).ipv4_ip(), 1)?;
    lab.host(2).ns.ping(lab.host(1).ipv6_ip(), 1)?;
    let names: Vec<String> = lab
        .hosts
        .iter()
        .map(|h| h.ns.path().display().to_string())
        .collect();
    drop(lab);
    for n in names {
        assert!(!std::path::Path::new(&n).exists(), "{n} left behind");
    }
    Ok(())
}
