//! natOutgoing end to end, with real agents and etcd: a ToR running BIRD
//! 2, two hosts running manul-node with a pod each (added by manul-cni),
//! and an external host on the segment that knows only the segment (no
//! route to the pods). With the pool's `natOutgoing` on, every pod
//! reaches the external host (its replies go to the pod's host, which
//! masquerades); turned off in etcd, within a second the hosts' nftables
//! sets no longer hold the pool and the external host is out of reach,
//! while pods still reach each other and the other host — exactly that
//! and nothing else; turned on again, reachable again. With kernel routes
//! only and with the eBPF dataplane (`FELIX_BPFENABLED=true`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use manul_tests::node::{RES, cni, tor_bird_conf, tor_peer_json};
use manul_tests::{Bird, Etcd, Lab, Need, Netns, PinDir, require, scratch, wait_until};

mod common;

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

fn pool(nat_outgoing: bool) -> String {
    format!(
        r#"{{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{{"name":"pool","creationTimestamp":null}},"spec":{{"cidr":"10.65.0.0/16","blockSize":26,"ipipMode":"Never","vxlanMode":"Never","natOutgoing":{nat_outgoing},"nodeSelector":"all()"}}}}"#
    )
}

/// One ping, waiting at most a second for the answer.
fn pings(from: &Netns, to: IpAddr) -> bool {
    from.command("ping")
        .args(["-n", "-q", "-c", "1", "-W", "1", &to.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the host's masquerade set holds the pool.
fn masq_set_holds_pool(host: &Netns) -> Result<bool> {
    let set = host.exec(
        "nft",
        &["list", "set", "inet", "manul", "masq-ipam-pools-v4"],
    )?;
    Ok(set.contains("10.65.0.0/16"))
}

fn nat_outgoing_follows_the_pool(ebpf: bool) -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip"),
        Need::Bin("ping"),
        Need::Bin("nft")
    );
    let cni_bin = sibling("manul-cni")?;
    let lab = Lab::builder().hosts(2).tor(true).external(true).build()?;
    let (tor, ext) = (lab.tor(), lab.external());
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), &pool(true))?;
    etcd.put(&format!("{RES}/bgppeers/tor"), &tor_peer_json(tor))?;
    let bird = Bird::builder(&tor.ns)
        .router_id(tor.ipv4)
        .kernel_export(true)
        .start(&tor_bird_conf(tor, &lab.hosts))?;
    let logs = scratch::run().tempdir("agents")?;
    let mut pins = Vec::new();
    let mut agents = Vec::new();
    for h in &lab.hosts {
        let mut env = Vec::new();
        if ebpf {
            pins.push(PinDir::new(&format!("nat-{}", h.name))?);
            env.push(("FELIX_BPFENABLED", "true".to_string()));
            env.push((
                "MANUL_BPF_PIN_DIR",
                pins.last().unwrap().path().display().to_string(),
            ));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        agents.push(common::agent(h, &endpoint, logs.path(), &env)?);
    }
    for h in &lab.hosts {
        bird.wait_established(&h.name, Duration::from_secs(60))?;
    }
    let mut pods: Vec<(Netns, IpAddr)> = Vec::new();
    for (i, h) in lab.hosts.iter().enumerate() {
        let ns = Netns::new(&format!("h{}p1", i + 1))?;
        let r = cni(
            &cni_bin,
            h,
            "ADD",
            &format!("nat-h{}", i + 1),
            &ns,
            &endpoint,
        )?;
        let ip: IpAddr = r["ips"][0]["address"]
            .as_str()
            .context("address")?
            .trim_end_matches("/32")
            .parse()?;
        pods.push((ns, ip));
    }
    if ebpf {
        for h in &lab.hosts {
            wait_until(Duration::from_secs(30), "the eBPF dataplane runs", || {
                let s = common::status(&h.ns).map_err(|e| e.to_string())?;
                match s.ebpf.mode {
                    manul_status::EbpfMode::Ebpf if s.ebpf.endpoint_entries == 1 => Ok(()),
                    _ => Err(format!("{:?}", s.ebpf)),
                }
            });
        }
    }
    let ext_ip = ext.ipv4_ip();
    let other_host = |i: usize| lab.hosts[1 - i].ipv4_ip();

    // natOutgoing on: every pod reaches the other pod, the other host and
    // the external host.
    let reach_all = |want_ext: bool| -> Result<(), String> {
        for (i, (ns, _)) in pods.iter().enumerate() {
            let (_, peer) = &pods[1 - i];
            if !pings(ns, *peer) {
                return Err(format!("pod {} -> pod {peer}", i + 1));
            }
            if !pings(ns, other_host(i)) {
                return Err(format!("pod {} -> host {}", i + 1, other_host(i)));
            }
            if pings(ns, ext_ip) != want_ext {
                return Err(format!(
                    "pod {} -> the external host: {}",
                    i + 1,
                    if want_ext { "unreachable" } else { "reached" }
                ));
            }
        }
        Ok(())
    };
    wait_until(
        Duration::from_secs(30),
        "every pod reaches everything",
        || reach_all(true),
    );
    for h in &lab.hosts {
        ensure!(
            masq_set_holds_pool(&h.ns)?,
            "{}: the pool in the set",
            h.name
        );
        let s = common::status(&h.ns)?;
        ensure!(
            s.nat.in_sync && s.nat.nat_pools == vec!["10.65.0.0/16".parse()?],
            "{}: {:?}",
            h.name,
            s.nat
        );
    }

    for (on, step) in [(false, "off"), (true, "on again")] {
        let started = Instant::now();
        etcd.put(&format!("{RES}/ippools/pool"), &pool(on))?;
        for h in &lab.hosts {
            while masq_set_holds_pool(&h.ns)? != on {
                ensure!(
                    started.elapsed() < Duration::from_secs(1),
                    "natOutgoing {step}: {}'s set did not follow within a second:\n{}",
                    h.name,
                    h.ns.exec("nft", &["list", "table", "inet", "manul"])
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let took = started.elapsed();
        eprintln!("natOutgoing {step}: both hosts' sets followed in {took:?}");
        // Exactly the external host changes.
        reach_all(on).map_err(|e| anyhow::anyhow!("natOutgoing {step}: {e}"))?;
        for h in &lab.hosts {
            let s = common::status(&h.ns)?;
            ensure!(
                s.nat.in_sync && s.nat.nat_pools.is_empty() != on && s.nat.failures == 0,
                "natOutgoing {step}: {}: {:?}",
                h.name,
                s.nat
            );
        }
    }
    drop(agents);
    Ok(())
}

#[test]
fn nat_outgoing_follows_the_pool_with_kernel_routes() -> Result<()> {
    nat_outgoing_follows_the_pool(false)
}

#[test]
fn nat_outgoing_follows_the_pool_with_ebpf() -> Result<()> {
    nat_outgoing_follows_the_pool(true)
}
