//! Calico's BGP settings on the wire, with real agents, etcd and BIRD as
//! the top-of-rack router:
//! - `maxRestartTime` of a BGPPeer is the Restart Time BIRD sees in the
//!   node's graceful restart capability (`show protocols all`);
//! - `bindMode: NodeIP` makes the speaker listen on the node's address
//!   only (`ss -ltn` in the host), never on the wildcard;
//! - an IPv6-only node (no IPv4 address) with `CALICO_ROUTER_ID=hash`
//!   peers over IPv6 with the router ID Calico derives from its name;
//! - `/status` shows each node's router ID.

use std::process::Command;
use std::time::Duration;

mod common;

use anyhow::{Context, Result};
use common::{agent, status};
use manul_tests::node::{RES, pool_json};
use manul_tests::{Bird, Etcd, Lab, Need, Netns, require, scratch, wait_until};

fn bgp_peer(name: &str, node: &str, ip: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}","creationTimestamp":null}},"spec":{{"node":"{node}","peerIP":"{ip}","asNumber":65000{extra}}}}}"#
    )
}

/// The local addresses of TCP listeners in `ns` (`ss -ltnH`).
fn listeners(ns: &Netns) -> Result<Vec<String>> {
    let out = ns
        .command("ss")
        .args(["-ltnH"])
        .output()
        .context("running ss")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect())
}

/// Calico's `hashToIPv4` of `name`, computed here with `sha256sum`.
fn calico_hash(name: &str) -> Result<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("printf %s '{name}' | sha256sum")])
        .output()?;
    let hex = String::from_utf8(out.stdout)?;
    let b: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()?;
    let first = if b[0] > 223 { b[0] - 32 } else { b[0] };
    Ok(format!("{first}.{}.{}.{}", b[1], b[2], b[3]))
}

#[test]
fn restart_time_bind_mode_and_hashed_router_id_on_the_wire() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ss"),
        Need::Bin("sha256sum")
    );
    let lab = Lab::builder().hosts(2).tor(true).build()?;
    let (tor, h1, h2) = (lab.tor(), lab.host(1), lab.host(2));
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(
        &format!("{RES}/bgpconfigurations/default"),
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":null},"spec":{"bindMode":"NodeIP"}}"#,
    )?;
    etcd.put(
        &format!("{RES}/bgppeers/tor-v4"),
        &bgp_peer(
            "tor-v4",
            &h1.name,
            &tor.ipv4.to_string(),
            r#","maxRestartTime":"45s""#,
        ),
    )?;
    etcd.put(
        &format!("{RES}/bgppeers/tor-v6"),
        &bgp_peer("tor-v6", &h2.name, &tor.ipv6.to_string(), ""),
    )?;
    let bird = Bird::builder(&tor.ns).router_id(tor.ipv4).start(&format!(
        "protocol bgp h1 {{ local {} as 65000; neighbor {} as 64512; ipv4 {{ import all; export none; }}; }}\n\
         protocol bgp h2 {{ local {} as 65000; neighbor {} as 64512; ipv6 {{ import all; export none; }}; }}\n",
        tor.ipv4, h1.ipv4, tor.ipv6, h2.ipv6
    ))?;
    let logs = scratch::run().tempdir("settings-agents")?;
    let _a1 = agent(h1, &endpoint, logs.path(), &[])?;
    // IPv6 only: no IPv4 address for the agent, the router ID from its name.
    let ip6 = format!("{}/64", h2.ipv6);
    let _a2 = agent(
        h2,
        &endpoint,
        logs.path(),
        &[("IP", "none"), ("IP6", &ip6), ("CALICO_ROUTER_ID", "hash")],
    )?;
    bird.wait_established("h1", Duration::from_secs(60))?;
    bird.wait_established("h2", Duration::from_secs(60))?;

    // maxRestartTime: BIRD sees 45 s in the node's capability.
    let h1_caps = bird.birdc("show protocols all h1")?;
    let neighbor = h1_caps
        .split("Neighbor capabilities")
        .nth(1)
        .context("no neighbor capabilities")?;
    assert!(
        neighbor.contains("Restart time: 45"),
        "BIRD's view of h1:\n{h1_caps}"
    );
    // Without maxRestartTime: BIRD's (and Calico's) default, 120 s.
    let h2_caps = bird.birdc("show protocols all h2")?;
    assert!(
        h2_caps
            .split("Neighbor capabilities")
            .nth(1)
            .is_some_and(|n| n.contains("Restart time: 120")),
        "BIRD's view of h2:\n{h2_caps}"
    );
    // The IPv6-only node's router ID is Calico's hash of its name.
    let hashed = calico_hash(&h2.name)?;
    let id = h2_caps
        .lines()
        .find(|l| l.contains("Neighbor ID:"))
        .and_then(|l| l.split_whitespace().last());
    assert_eq!(id, Some(hashed.as_str()), "BIRD's view of h2:\n{h2_caps}");

    // bindMode NodeIP: each agent listens on its node's address only.
    let l1 = listeners(&h1.ns)?;
    assert!(l1.contains(&format!("{}:179", h1.ipv4)), "{l1:?}");
    assert!(
        !l1.iter()
            .any(|l| l == "0.0.0.0:179" || l == "*:179" || l == "[::]:179"),
        "{l1:?}"
    );
    let l2 = listeners(&h2.ns)?;
    assert!(l2.contains(&format!("[{}]:179", h2.ipv6)), "{l2:?}");
    assert!(
        !l2.iter()
            .any(|l| l.ends_with(":179") && l.starts_with("0.0.0.0")),
        "{l2:?}"
    );

    // /status: the router IDs.
    let s1 = wait_until(Duration::from_secs(10), "h1's router ID", || {
        let s = status(&h1.ns).map_err(|e| e.to_string())?;
        s.routing
            .router_id
            .map(|r| r.to_string())
            .ok_or_else(|| "none".to_string())
    });
    assert_eq!(s1, h1.ipv4.to_string());
    let s2 = status(&h2.ns)?;
    assert_eq!(s2.routing.router_id.map(|r| r.to_string()), Some(hashed));
    Ok(())
}
