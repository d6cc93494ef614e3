//! The lab scenario: a ToR running BIRD 2 (eBGP with every host, its RIB
//! exported to its kernel), 3 hosts running manul-node in the iBGP mesh.
//! Each round: a pod ADD on host1 claims a new block (host1 holds none),
//! timed from the ADD's start to the block's route in host3's kernel and in
//! the ToR's; then the pod is deleted, host1's empty block released, and
//! the round waits for the route to leave both before the next.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use manul_tests::node::{RES, pool_json, tor_bird_conf, tor_peer_json};
use manul_tests::{Bird, Etcd, Lab, Netns, scratch, wait_until};

use crate::agents::{Monitor, agent, cni, established};
use crate::pct;

/// Release `host`'s empty blocks (from inside `ns`, where etcd is reachable).
fn release_empty_blocks(ns: &Netns, endpoint: &str, host: &str) -> Result<()> {
    ns.run(|| -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let ds =
                manul_datastore::Datastore::connect(&manul_datastore::EtcdConfig::new([endpoint]))
                    .await?;
            manul_ipam::Ipam::new(ds)
                .release_affinities(host, true)
                .await?;
            Ok(())
        })
    })
}

/// Run `blocks` rounds; the results section.
pub fn run(bins: &Path, blocks: usize) -> Result<String> {
    let lab = Lab::builder().hosts(3).tor(true).build()?;
    let tor = lab.tor();
    let (h1, h3) = (lab.host(1), lab.host(3));
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(&format!("{RES}/bgppeers/tor"), &tor_peer_json(tor))?;
    let conf = tor_bird_conf(tor, &lab.hosts);
    let bird = Bird::builder(&tor.ns)
        .router_id(tor.ipv4)
        .kernel_export(true)
        .start(&conf)?;
    let logs = scratch::run().tempdir("convergence-lab")?;
    let _agents = lab
        .hosts
        .iter()
        .map(|h| agent(bins, h, &endpoint, logs.path()))
        .collect::<Result<Vec<_>>>()?;
    for h in &lab.hosts {
        bird.wait_established(&h.name, Duration::from_secs(60))?;
        wait_until(
            Duration::from_secs(60),
            &format!("{}: 3 peers up", h.name),
            || match established(&h.ns) {
                3 => Ok(()),
                n => Err(format!("{n} Established")),
            },
        );
    }
    // An agent writes no route until its peers are Established plus one
    // second (restart without loss): a first round inside that hold would
    // time the hold, not the propagation.
    std::thread::sleep(Duration::from_millis(1500));
    let (mon_h3, mon_tor) = (Monitor::start(&h3.ns)?, Monitor::start(&tor.ns)?);
    let (mut to_h3, mut to_tor, mut add) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..blocks {
        let pod = Netns::new(&format!("cb{i}"))?;
        let id = format!("conv-{i}");
        mon_h3.drain();
        mon_tor.drain();
        let t0 = Instant::now();
        let r = cni(bins, h1, "ADD", &id, &pod, &endpoint)?;
        add.push(t0.elapsed().as_secs_f64() * 1e3);
        let ip: std::net::Ipv4Addr = r["ips"][0]["address"]
            .as_str()
            .context("no address")?
            .trim_end_matches("/32")
            .parse()?;
        let block = ipnet::Ipv4Net::new(ip, 26)?.trunc().to_string();
        let timeout = Duration::from_secs(10);
        let at_h3 = mon_h3.wait(&block, true, timeout)?;
        let at_tor = mon_tor.wait(&block, true, timeout)?;
        to_h3.push(at_h3.duration_since(t0).as_secs_f64() * 1e3);
        to_tor.push(at_tor.duration_since(t0).as_secs_f64() * 1e3);
        cni(bins, h1, "DEL", &id, &pod, &endpoint)?;
        release_empty_blocks(&tor.ns, &endpoint, &h1.name)?;
        mon_h3.wait(&block, false, timeout)?;
        mon_tor.wait(&block, false, timeout)?;
        if (i + 1) % 10 == 0 {
            eprintln!("convergence-bench: lab {}/{blocks}", i + 1);
        }
    }
    ensure!(!to_h3.is_empty(), "no rounds");
    for v in [&mut to_h3, &mut to_tor, &mut add] {
        v.sort_by(f64::total_cmp);
    }
    let mut t = String::new();
    writeln!(
        t,
        "### Lab: a pod ADD claiming a new block on host1 → the route in host3's kernel and in the ToR's RIB\n"
    )?;
    writeln!(
        t,
        "3 hosts (iBGP mesh) + a BIRD 2 ToR (eBGP, RIB exported to its kernel), one namespace each; {blocks} rounds, each: manul-cni ADD on host1 (claims a /26: host1 holds none), time until `ip monitor route` shows the block in host3's and the ToR's kernel; then DEL, the empty block released, both routes gone before the next round. Debug or release: see the binaries' path above.\n"
    )?;
    writeln!(
        t,
        "| from the ADD's start to | p50 (ms) | p99 (ms) | max (ms) |"
    )?;
    writeln!(t, "|---|---:|---:|---:|")?;
    for (what, v) in [
        (
            "ADD done (manul-cni: IPAM claim + veth + WorkloadEndpoint)",
            &add,
        ),
        ("the route in host3's kernel", &to_h3),
        ("the route in the ToR's RIB (BIRD → its kernel)", &to_tor),
    ] {
        writeln!(
            t,
            "| {what} | {:.1} | {:.1} | {:.1} |",
            pct(v, 0.5),
            pct(v, 0.99),
            v.last().copied().unwrap_or_default()
        )?;
    }
    let worst = pct(&to_h3, 0.99).max(pct(&to_tor, 0.99));
    writeln!(
        t,
        "\nTarget (issue 7): p99 < 100 ms: {} ({worst:.1} ms).\n",
        if worst < 100.0 { "met" } else { "NOT met" }
    )?;
    drop(etcd);
    Ok(t)
}
