//! The mesh scenario: M hosts on one segment, a block for every host;
//! all M routers are started one after another, and the time is taken
//! from the last one started until every host's kernel holds a route to
//! every other host's block ([`RouteWatch`]: `ip monitor route` per
//! host). Two implementations, side by side in one run:
//!
//! - **manul**: manul-node on every host, etcd in host1, the blocks
//!   claimed through manul-ipam beforehand, the node-to-node mesh (on by
//!   default); routes with protocol 80;
//! - **bird**: BIRD 2 on every host, configured as calico-node
//!   configures it ([`crate::bird_mesh`]), started with `-R`, each
//!   host's block the one manul's IPAM gave it; routes with protocol
//!   `bird`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipnet::Ipv4Net;
use manul_tests::node::{RES, pool_json};
use manul_tests::{Daemon, Etcd, Lab, Netns, scratch};

use crate::agents::agent;
use crate::watch::RouteWatch;

/// The pool of [`pool_json`].
const POOL: &str = "10.65.0.0/16";

/// Which routers make the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Manul,
    Bird,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Manul => "manul",
            Impl::Bird => "BIRD 2 (Calico's template, -R)",
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub which: Impl,
    /// Seconds to start every router.
    pub spawn: f64,
    /// From the last start: each host complete (sorted).
    pub complete: Vec<f64>,
    /// From the last start: the first remote route anywhere.
    pub first_route: f64,
    /// CPU seconds all routers had used when the last host was complete.
    pub cpu: f64,
}

impl Outcome {
    /// Full convergence: the last host complete.
    pub fn full(&self) -> f64 {
        self.complete.last().copied().unwrap_or(f64::NAN)
    }
}

/// Claim one block for each of `hosts` (from inside `ns`); their blocks.
fn claim_blocks(ns: &Netns, endpoint: &str, hosts: &[String]) -> Result<Vec<Ipv4Net>> {
    ns.run(|| -> Result<Vec<Ipv4Net>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let ds =
                manul_datastore::Datastore::connect(&manul_datastore::EtcdConfig::new([endpoint]))
                    .await?;
            let ipam = manul_ipam::Ipam::new(ds);
            let mut blocks = Vec::new();
            for h in hosts {
                let ips = ipam
                    .auto_assign(&manul_ipam::AutoAssignArgs {
                        handle_id: format!("bench-{h}"),
                        num_v4: 1,
                        host: h.clone(),
                        ..Default::default()
                    })
                    .await?;
                match ips.first() {
                    Some(IpAddr::V4(ip)) => blocks.push(Ipv4Net::new(*ip, 26)?.trunc()),
                    other => bail!("{h}: no IPv4 address ({other:?})"),
                }
            }
            Ok(blocks)
        })
    })
}

/// The kernel's IPv4 neighbour table is one for all namespaces, and its
/// limits (`gc_thresh1..3`, by default 128 / 512 / 1024 entries) are the
/// initial namespace's: an M-host mesh on one machine needs M×(M-1)
/// entries (2450 for 50), beyond which ARP fails ("neighbor table
/// overflow") and sessions never come up. Raised for the run, restored
/// after. The limits changed: (path, old value, new value).
pub struct NeighbourLimits(pub Vec<(String, String, usize)>);

impl NeighbourLimits {
    pub fn raise(entries: usize) -> Result<NeighbourLimits> {
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

    /// What was raised, for the report.
    pub fn describe(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(p, was, now)| {
                format!("{} {was} → {now}", p.rsplit('/').next().unwrap_or_default())
            })
            .collect()
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        for (path, was, _) in &self.0 {
            let _ = std::fs::write(path, was);
        }
    }
}

/// BIRD on `ns` with `conf`, `-R` (graceful-restart recovery, as
/// calico-node starts it), its socket and log in `dir`.
fn bird(ns: &Netns, name: &str, conf: &str, dir: &Path) -> Result<Daemon> {
    let conf_path = dir.join(format!("{name}.conf"));
    std::fs::write(&conf_path, conf)?;
    let mut cmd = ns.command("bird");
    cmd.arg("-f")
        .arg("-R")
        .arg("-c")
        .arg(&conf_path)
        .arg("-s")
        .arg(dir.join(format!("{name}.ctl")));
    Daemon::spawn(
        &format!("bird-{name}"),
        cmd,
        &dir.join(format!("{name}.log")),
    )
}

/// One run of `which` with `m` hosts.
pub fn run(bins: &Path, m: usize, which: Impl) -> Result<Outcome> {
    let lab = Lab::builder().hosts(m).build()?;
    let h1 = lab.host(1);
    let names: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
    // The blocks: from manul's IPAM in both runs (the BIRD run reads the
    // same assignment, so both meshes carry the same prefixes).
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    let blocks = claim_blocks(&h1.ns, &endpoint, &names)?;
    let proto = match which {
        Impl::Manul => "80",
        Impl::Bird => "bird",
    };
    let watches = lab
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let wanted = blocks
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, b)| b.to_string())
                .collect();
            RouteWatch::start(&h.ns, wanted, proto)
        })
        .collect::<Result<Vec<_>>>()?;
    // `ip monitor` must be listening before the first router writes.
    std::thread::sleep(Duration::from_millis(300));
    let logs = scratch::run().tempdir("convergence-mesh")?;
    let addrs: Vec<Ipv4Addr> = lab.hosts.iter().map(|h| h.ipv4).collect();
    let pool: Ipv4Net = POOL.parse()?;
    let confs: Vec<String> = match which {
        Impl::Manul => Vec::new(),
        Impl::Bird => lab
            .hosts
            .iter()
            .zip(&blocks)
            .map(|(h, b)| crate::bird_mesh::config(h.ipv4, *b, &addrs, pool))
            .collect(),
    };
    let first = Instant::now();
    let mut daemons = Vec::new();
    for (i, h) in lab.hosts.iter().enumerate() {
        daemons.push(match which {
            Impl::Manul => agent(bins, h, &endpoint, logs.path())?,
            Impl::Bird => bird(&h.ns, &h.name, &confs[i], logs.path())?,
        });
    }
    let t0 = Instant::now();
    let spawn = t0.duration_since(first).as_secs_f64();
    let deadline = t0 + Duration::from_secs(300);
    while watches.iter().any(|w| w.complete().is_none()) {
        if Instant::now() > deadline {
            let n = watches.iter().filter(|w| w.complete().is_some()).count();
            let held: Vec<usize> = watches.iter().map(RouteWatch::held).collect();
            bail!(
                "{}: after 300 s only {n} of {m} hosts hold every other block (held per host: {held:?}); logs in {}",
                which.name(),
                logs.path().display()
            );
        }
        for d in &mut daemons {
            d.ensure_running()
                .with_context(|| format!("{} died", which.name()))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu: f64 = daemons.iter().map(|d| cpu_seconds(d.pid())).sum();
    let since = |at: Instant| at.saturating_duration_since(t0).as_secs_f64();
    let mut complete: Vec<f64> = watches
        .iter()
        .filter_map(RouteWatch::complete)
        .map(since)
        .collect();
    complete.sort_by(f64::total_cmp);
    let first_route = watches
        .iter()
        .filter_map(RouteWatch::first)
        .map(since)
        .fold(f64::INFINITY, f64::min);
    drop(daemons);
    drop(watches);
    drop(etcd);
    // `CONVERGENCE_KEEP_LOGS=DIR`: the routers' logs, copied to DIR/<impl>/.
    if let Ok(dir) = std::env::var("CONVERGENCE_KEEP_LOGS") {
        let to = Path::new(&dir).join(match which {
            Impl::Manul => "manul",
            Impl::Bird => "bird",
        });
        std::fs::create_dir_all(&to)?;
        for e in std::fs::read_dir(logs.path())?.flatten() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(Outcome {
        which,
        spawn,
        complete,
        first_route,
        cpu,
    })
}

/// CPU time (user + system) process `pid` has used, in seconds (0 when
/// it cannot be read).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces, in parentheses).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / hz.max(1) as f64
}

/// The results section for `outcomes` (alternating implementations).
pub fn report(m: usize, outcomes: &[Outcome], raised: &[String]) -> Result<String> {
    let mut t = String::new();
    writeln!(
        t,
        "### Mesh of {m} hosts: routers started → every host holds every other host's block\n"
    )?;
    writeln!(
        t,
        "{m} namespaces on one bridge, one /26 per host (claimed through manul-ipam in etcd, in host1, beforehand). Each run starts all {m} routers one after another and times from the last start until every host's kernel holds a route to every other host's block, seen by an `ip -4 monitor route` per host (started before the routers; each line timestamped as read). manul: manul-node on each host, node-to-node mesh, routes with protocol 80. BIRD: BIRD 2 configured from Calico's confd templates (`bird.cfg.template`, `bird_aggr`, `bird_ipam`, translated to BIRD 2: `connect delay time 2`, `connect retry time 5`, `error wait time 5,30`, `graceful restart`, passive side by address string), started with `-R` as calico-node starts it, routes with protocol bird. Runs alternate between the two.\n"
    )?;
    if !raised.is_empty() {
        writeln!(
            t,
            "The IPv4 neighbour table limits (one table for every namespace) were raised for the run ({}), restored after.\n",
            raised.join(", ")
        )?;
    }
    writeln!(
        t,
        "| run | routers | start all (s) | first route (s) | first host complete (s) | median host (s) | **every host complete (s)** | CPU of all routers until then (s) |"
    )?;
    writeln!(t, "|---:|---|---:|---:|---:|---:|---:|---:|")?;
    for (i, o) in outcomes.iter().enumerate() {
        writeln!(
            t,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | **{:.2}** | {:.1} |",
            i + 1,
            o.which.name(),
            o.spawn,
            o.first_route,
            o.complete.first().copied().unwrap_or(f64::NAN),
            crate::pct(&o.complete, 0.5),
            o.full(),
            o.cpu
        )?;
    }
    let med = |which: Impl| {
        let mut v: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.which == which)
            .map(Outcome::full)
            .collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| crate::pct(&v, 0.5))
    };
    if let (Some(manul), Some(bird)) = (med(Impl::Manul), med(Impl::Bird)) {
        let ratio = manul / bird;
        writeln!(
            t,
            "\nFull convergence, median of the runs: manul {manul:.2} s, BIRD {bird:.2} s: **{ratio:.2}× BIRD**. Target (issue 16): ≤ 0.6× BIRD: {}.\n",
            if ratio <= 0.6 { "met" } else { "NOT met" }
        )?;
    }
    Ok(t)
}
