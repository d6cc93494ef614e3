//! felix's first write after the agent starts waits for BGP to converge,
//! seconds after the agent subscribed to confd. A pod added in between
//! (the CNI plugin writes its host route, marked with felix's protocol,
//! then its WorkloadEndpoint) must be in that first desired set: felix
//! keeps the pod's route, it does not delete it and re-add it a few
//! milliseconds later (the lab's restart test lost a ping in that gap).
//!
//! That wait is a warm start's (the kernel holds a route of felix's a
//! previous run left, here a block's blackhole): a cold start has nothing
//! to protect and writes at once (`StartKind`), and a pod's route written
//! meanwhile is kept by felix's grace for routes on new interfaces.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

mod common;

use anyhow::{Context, Result};
use common::{agent, claim_block, status};
use manul_tests::node::{RES, pool_json, tor_bird_conf, tor_peer_json, wait_felix_route};
use manul_tests::{Bird, Etcd, Lab, Need, Netns, require, scratch, wait_until};

#[test]
fn a_pod_added_while_bgp_converges_keeps_its_route_through_felixs_first_write() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(1).tor(true).build()?;
    let (tor, host) = (lab.tor(), lab.host(1));
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(&format!("{RES}/bgppeers/tor"), &tor_peer_json(tor))?;
    let block = claim_block(&tor.ns, &endpoint, &host.name)?;

    // A route of felix's a previous run left: the start is warm.
    let left = "blackhole 10.65.250.0/26 proto 80";
    host.ns
        .ip(&["route", "add", "blackhole", "10.65.250.0/26", "proto", "80"])?;
    // The agent starts; its only peer (the ToR) is not up yet, so felix
    // writes nothing while the routing part waits for BGP.
    let logs = scratch::run().tempdir("first-write")?;
    let _agent = agent(
        host,
        &endpoint,
        logs.path(),
        &[("RUST_LOG", "info,manul_node::routing=debug")],
    )?;
    wait_until(
        Duration::from_secs(30),
        "the agent's routing part running (the ToR peer on /status)",
        || {
            let s = status(&host.ns).map_err(|e| e.to_string())?;
            if s.routing.peers.iter().any(|p| p.address == tor.ipv4_ip()) {
                Ok(())
            } else {
                Err(format!("{:?}", s.routing))
            }
        },
    );
    ensure_felix_routes_unchanged(&host.ns, left, "before BGP converged")?;

    // A pod, as the CNI plugin adds it: host route first (felix's
    // protocol), then the WorkloadEndpoint.
    let pod = Netns::new("pod")?;
    let veth = "cali0123456789a";
    host.ns.veth(veth, &pod, "eth0")?;
    let ip = Ipv4Addr::from(u32::from(block.network()) + 10);
    host.ns.ip(&[
        "route",
        "add",
        &format!("{ip}/32"),
        "dev",
        veth,
        "proto",
        "80",
        "scope",
        "link",
    ])?;
    etcd.put(
        &format!("{RES}/workloadendpoints/default/{}-k8s-pod-eth0", host.name),
        &format!(
            r#"{{"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{}-k8s-pod-eth0","namespace":"default"}},"spec":{{"node":"{}","ipNetworks":["{ip}/32"],"interfaceName":"{veth}"}}}}"#,
            host.name, host.name
        ),
    )?;

    // Watch the host's routes, then let BGP converge: felix's first write
    // (the block's blackhole) follows the ToR session by a second.
    let mut monitor = host
        .ns
        .command("ip")
        .args(["monitor", "route"])
        .stdout(Stdio::piped())
        .spawn()
        .context("ip monitor route")?;
    std::thread::sleep(Duration::from_millis(300));
    let bird = Bird::builder(&tor.ns)
        .router_id(tor.ipv4)
        .start(&tor_bird_conf(tor, std::slice::from_ref(host)))?;
    bird.wait_established(&host.name, Duration::from_secs(60))?;
    // felix's first write.
    wait_felix_route(host, &format!("blackhole {block}"), Duration::from_secs(30));
    // The first desired set had the pod. (Whether a stale one reaches the
    // kernel, below, is a race between felix's task and the next update.)
    let log = std::fs::read_to_string(logs.path().join(format!("{}.log", host.name)))?;
    let first = plain(&log)
        .lines()
        .find(|l| l.contains("felix update"))
        .map(str::to_owned)
        .with_context(|| format!("no felix update logged:\n{log}"))?;
    assert!(
        first.contains("workloads=1"),
        "felix's first desired set was made without the pod: {first}"
    );
    // Room for a re-add that would follow a delete.
    std::thread::sleep(Duration::from_millis(500));
    monitor.kill()?;
    let seen = String::from_utf8_lossy(&monitor.wait_with_output()?.stdout).to_string();
    let deleted: Vec<&str> = seen
        .lines()
        .filter(|l| l.starts_with("Deleted") && l.contains(&format!("{ip} ")))
        .collect();
    assert!(
        deleted.is_empty(),
        "felix's first write deleted the pod's route {ip} (its desired set lacked the pod):\n{seen}"
    );
    let routes = host.ns.ip(&["route", "show", "proto", "80"])?;
    assert!(
        routes.contains(&format!("{ip} dev {veth}")),
        "the pod's route is gone: {routes}"
    );
    Ok(())
}

/// The routes of felix's protocol are only `left` (`ip route` prints it
/// without the protocol it was asked for).
fn ensure_felix_routes_unchanged(ns: &Netns, left: &str, when: &str) -> Result<()> {
    let routes = ns.ip(&["route", "show", "proto", "80"])?;
    let want = left.replace(" proto 80", "");
    anyhow::ensure!(
        routes.trim() == want,
        "felix wrote routes {when}: {routes} (only {want:?} was there)"
    );
    Ok(())
}

/// `text` without its ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
