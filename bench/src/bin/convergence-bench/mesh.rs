//! The mesh scenario: M hosts on one segment, etcd on host1, a block
//! already claimed for every host; all M agents are started, and the time
//! is taken from the last one started until every host's kernel holds a
//! route to every other host's block (polled with `ip route`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use manul_tests::node::{RES, pool_json};
use manul_tests::{Etcd, Lab, Netns, scratch};

use crate::agents::{agent, established};

/// Claim one block for each of `hosts` (from inside `ns`).
fn claim_blocks(ns: &Netns, endpoint: &str, hosts: &[String]) -> Result<()> {
    ns.run(|| -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let ds =
                manul_datastore::Datastore::connect(&manul_datastore::EtcdConfig::new([endpoint]))
                    .await?;
            let ipam = manul_ipam::Ipam::new(ds);
            for h in hosts {
                ipam.auto_assign(&manul_ipam::AutoAssignArgs {
                    handle_id: format!("bench-{h}"),
                    num_v4: 1,
                    host: h.clone(),
                    ..Default::default()
                })
                .await?;
            }
            Ok(())
        })
    })
}

/// The kernel's IPv4 neighbour table is one for all namespaces, and its
/// limits (`gc_thresh1..3`, by default 128 / 512 / 1024 entries) are the
/// initial namespace's: an M-host mesh on one machine needs M×(M-1)
/// entries (2450 for 50), beyond which ARP fails ("neighbor table
/// overflow") and sessions never come up. Raised for the run, restored
/// after.
/// The limits changed: (path, old value, new value).
struct NeighbourLimits(Vec<(String, String, usize)>);

impl NeighbourLimits {
    fn raise(entries: usize) -> Result<NeighbourLimits> {
        let mut old = Vec::new();
        for (i, factor) in [(1, 1), (2, 2), (3, 4)] {
            let path = format!("/proc/sys/net/ipv4/neigh/default/gc_thresh{i}");
            let was = std::fs::read_to_string(&path)?.trim().to_string();
            let want = entries * factor;
            if was.parse::<usize>().unwrap_or(0) < want {
                std::fs::write(&path, want.to_string())?;
                old.push((path, was, want));
            }
        }
        Ok(NeighbourLimits(old))
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        for (path, was, _) in &self.0 {
            let _ = std::fs::write(path, was);
        }
    }
}

/// Remote block routes in `ns`'s kernel (manul's, protocol 80, via a host).
fn remote_routes(ns: &Netns) -> usize {
    ns.ip(&["route", "show", "proto", "80"])
        .map(|r| r.lines().filter(|l| l.contains(" via ")).count())
        .unwrap_or(0)
}

/// Run with `m` hosts; the results section.
pub fn run(bins: &Path, m: usize) -> Result<String> {
    let limits = NeighbourLimits::raise(2 * m * m)?;
    let raised = limits
        .0
        .iter()
        .map(|(p, was, now)| format!("{} {was} → {now}", p.rsplit('/').next().unwrap_or_default()))
        .collect::<Vec<_>>();
    let lab = Lab::builder().hosts(m).build()?;
    let h1 = lab.host(1);
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    let names: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
    claim_blocks(&h1.ns, &endpoint, &names)?;
    let logs = scratch::run().tempdir("convergence-mesh")?;
    let first = Instant::now();
    let mut agents = Vec::new();
    for h in &lab.hosts {
        agents.push(agent(bins, h, &endpoint, logs.path())?);
    }
    let t0 = Instant::now();
    let spawn = t0.duration_since(first);
    let mut sessions_at = None;
    let mut done: Vec<Option<Duration>> = vec![None; m];
    let deadline = t0 + Duration::from_secs(600);
    while done.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            let n = done.iter().filter(|d| d.is_some()).count();
            bail!("after 600 s only {n} of {m} hosts hold every other block");
        }
        if sessions_at.is_none() && lab.hosts.iter().all(|h| established(&h.ns) == m - 1) {
            sessions_at = Some(t0.elapsed());
        }
        for (i, h) in lab.hosts.iter().enumerate() {
            if done[i].is_none() && remote_routes(&h.ns) >= m - 1 {
                done[i] = Some(t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut times: Vec<f64> = done.iter().flatten().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    let mut t = String::new();
    writeln!(
        t,
        "### Mesh of {m} hosts: agents started → every host holds every other host's block\n"
    )?;
    writeln!(
        t,
        "{m} namespaces on one bridge, etcd in host1, one /26 claimed per host beforehand; {m} manul-node started one after another ({:.2} s to start them all); time from the last start, hosts polled with `ip route` (each poll of all {m} hosts takes a while: resolution ~0.1-0.5 s). Every agent holds back kernel writes until its {} peers are Established plus one second (restart without loss).\n",
        spawn.as_secs_f64(),
        m - 1
    )?;
    if !raised.is_empty() {
        writeln!(
            t,
            "The IPv4 neighbour table limits (one table for every namespace) were raised for the run ({}), restored after.\n",
            raised.join(", ")
        )?;
    }
    writeln!(t, "| | s |\n|---|---:|")?;
    if let Some(s) = sessions_at {
        writeln!(
            t,
            "| every host has {} sessions Established (seen at) | {:.2} |",
            m - 1,
            s.as_secs_f64()
        )?;
    }
    writeln!(t, "| first host complete | {:.2} |", times[0])?;
    writeln!(
        t,
        "| median host complete | {:.2} |",
        crate::pct(&times, 0.5)
    )?;
    writeln!(
        t,
        "| **every host complete (full convergence)** | **{:.2}** |\n",
        times[times.len() - 1]
    )?;
    drop(agents);
    drop(etcd);
    Ok(t)
}
