//! End to end, like `scripts/lab up` but on the harness (namespaces and
//! daemons registered for clean-up): a ToR running BIRD 2 peering eBGP
//! with 3 hosts running manul-node, 2 pods per host added by manul-cni as
//! a runtime calls it. Every pod reaches every other; the ToR holds each
//! host's block and only those; CNI DEL releases the address; restarting
//! an agent (SIGTERM, and SIGKILL) loses no ping between pods on different
//! hosts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use manul_tests::node::{RES, cni, pool_json, tor_bird_conf, tor_peer_json};
use manul_tests::{Bird, Daemon, Etcd, Host, Lab, Need, Netns, require, scratch, wait_until};

/// A binary of this workspace next to manul-node (built when missing).
fn sibling(name: &str) -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_manul-node")).with_file_name(name);
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", name])
            .status()?;
        ensure!(status.success(), "cargo build -p {name} failed");
    }
    Ok(path)
}

fn agent(bin: &Path, host: &Host, endpoint: &str, logs: &Path) -> Result<Daemon> {
    manul_tests::node::agent(bin, host, endpoint, logs, &[("NO_DEFAULT_POOLS", "true")])
}

fn ready(ns: &Netns) -> Result<(), String> {
    let out = ns
        .exec("bash", &["-c", "exec 3<>/dev/tcp/127.0.0.1/9099; printf 'GET /readiness HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"])
        .map_err(|e| e.to_string())?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(out)
    }
}

#[test]
fn pods_reach_each_other_across_hosts_through_the_lab() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip"),
        Need::Bin("ping"),
        Need::Bin("bash")
    );
    let (node_bin, cni_bin) = (sibling("manul-node")?, sibling("manul-cni")?);
    let lab = Lab::builder().hosts(3).tor(true).build()?;
    let tor = lab.tor();
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(&format!("{RES}/bgppeers/tor"), &tor_peer_json(tor))?;
    let bird_conf = tor_bird_conf(tor, &lab.hosts);
    let bird = Bird::builder(&tor.ns)
        .router_id(tor.ipv4)
        .kernel_export(true)
        .start(&bird_conf)?;
    let logs = scratch::run().tempdir("agents")?;
    let mut agents = Vec::new();
    for h in &lab.hosts {
        agents.push(agent(&node_bin, h, &endpoint, logs.path())?);
    }
    for h in &lab.hosts {
        bird.wait_established(&h.name, Duration::from_secs(60))?;
    }

    // Two pods per host.
    let mut pods: Vec<(usize, Netns, IpAddr)> = Vec::new();
    for (i, h) in lab.hosts.iter().enumerate() {
        for p in 1..=2 {
            let ns = Netns::new(&format!("h{}p{p}", i + 1))?;
            let id = format!("h{}p{p}", i + 1);
            let r = cni(&cni_bin, h, "ADD", &id, &ns, &endpoint)?;
            let ip: IpAddr = r["ips"][0]["address"]
                .as_str()
                .context("address")?
                .trim_end_matches("/32")
                .parse()?;
            pods.push((i, ns, ip));
        }
    }
    // The ToR holds each host's block, and only those.
    let blocks: Vec<String> = pods
        .iter()
        .filter_map(|(_, _, ip)| match ip {
            IpAddr::V4(v4) => Some(ipnet::Ipv4Net::new(*v4, 26).ok()?.trunc().to_string()),
            IpAddr::V6(_) => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(blocks.len(), 3, "one block per host: {blocks:?}");
    for b in &blocks {
        bird.wait_route(b, Duration::from_secs(30))?;
    }
    assert_eq!(bird.route_count()?, 3, "{}", bird.birdc("show route")?);

    // Every pod reaches every other pod.
    for (a, (i, ns, _)) in pods.iter().enumerate() {
        for (b, (j, _, dst)) in pods.iter().enumerate() {
            if a == b {
                continue;
            }
            wait_until(
                Duration::from_secs(30),
                &format!("pod on host{} -> {dst} (host{})", i + 1, j + 1),
                || ns.ping(*dst, 1).map_err(|e| e.to_string()),
            );
        }
    }

    // Restart without loss: a ping every 10 ms from host1's pod to host2's
    // while host2's agent stops (SIGTERM, then SIGKILL) and starts again.
    for kill in [false, true] {
        let (src, dst) = (&pods[0].1, pods[2].2);
        let pinger = src
            .command("ping")
            .args(["-n", "-q", "-i", "0.01", "-w", "8", &dst.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        std::thread::sleep(Duration::from_secs(1));
        if kill {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(agents[1].pid() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )?;
        }
        let exited = agents[1].stop();
        ensure!(
            kill || exited,
            "host2's agent ignored SIGTERM for the whole grace period: {}",
            agents[1].log_tail(20)
        );
        std::thread::sleep(Duration::from_secs(1));
        agents[1] = agent(&node_bin, &lab.hosts[1], &endpoint, logs.path())?;
        wait_until(Duration::from_secs(30), "host2's agent ready again", || {
            ready(&lab.hosts[1].ns)
        });
        let out = pinger.wait_with_output()?;
        let summary = String::from_utf8_lossy(&out.stdout);
        ensure!(
            summary.contains(" 0% packet loss"),
            "packets lost across the restart (SIGKILL: {kill}): {summary}"
        );
        bird.wait_established(&lab.hosts[1].name, Duration::from_secs(30))?;
    }

    // CNI DEL releases the address and the host route.
    let (_, ns, ip) = &pods[5];
    cni(&cni_bin, &lab.hosts[2], "DEL", "h3p2", ns, &endpoint)?;
    ensure!(
        etcd.get("/calico/ipam/v2/handle/k8s-pod-network.h3p2")?
            .is_none()
    );
    let blocks_json = etcd.etcdctl(&["get", "--prefix", "/calico/ipam/v2/assignment/"])?;
    ensure!(!blocks_json.contains(r#""pod":"h3p2""#), "{blocks_json}");
    let routes = lab.hosts[2].ns.ip(&["route", "show", "proto", "80"])?;
    ensure!(!routes.contains(&format!("{ip} dev")), "{routes}");
    drop(agents);
    Ok(())
}
