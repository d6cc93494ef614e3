//! convergence-bench: how fast a new pod block reaches the fabric, and how
//! fast a cluster of agents converges, with the real binaries in network
//! namespaces it creates (`bench/run-convergence`; results appended to
//! bench/RESULTS.md).
//!
//! - [`lab`]: the lab (3 hosts running manul-node, a BIRD 2 ToR): from a
//!   pod ADD (manul-cni, as a runtime runs it) that claims a new block on
//!   host1 to the block's route in host3's kernel and in the ToR's RIB
//!   (BIRD exports its RIB to its kernel; both are seen by `ip monitor`),
//!   N times; p50 / p99.
//! - [`mesh`]: M hosts in a node-to-node mesh, each with a block already
//!   claimed: from the last router started to every host holding a route
//!   to every other host's block, for manul-node and, side by side, for
//!   BIRD 2 configured as calico-node configures it ([`bird_mesh`]).

mod agents;
mod bird_mesh;
mod lab;
mod mesh;
mod watch;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use manul_bench::machine::{loadavg, machine, manul_version, sh};

#[derive(Parser, Debug)]
#[command(about = "pod block to fabric latency in the lab; mesh convergence time")]
struct Args {
    /// Blocks to time in the lab (0: skip).
    #[arg(long, default_value_t = 100)]
    blocks: usize,
    /// Hosts in the mesh scenario (0: skip).
    #[arg(long, default_value_t = 50)]
    mesh_hosts: usize,
    /// Routers in the mesh scenario, run alternately: `manul`, `bird`.
    #[arg(long, value_delimiter = ',', default_value = "manul,bird")]
    mesh_impls: Vec<String>,
    /// Runs of each mesh implementation (alternating).
    #[arg(long, default_value_t = 1)]
    mesh_rounds: usize,
    /// Where manul-node and manul-cni are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Print the results instead of appending them to bench/RESULTS.md.
    #[arg(long)]
    no_write: bool,
}

/// The value at fraction `p` of sorted `v`.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bins = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    let load_before = loadavg();
    let mut t = String::new();
    writeln!(t, "\n## Convergence, run of {}\n", sh("date", &[]))?;
    writeln!(t, "- machine: {}", machine())?;
    writeln!(
        t,
        "- versions: {}, binaries from `{}`, {}",
        manul_version(),
        bins.display(),
        sh("bird", &["--version"])
    )?;
    let lab = if args.blocks > 0 {
        eprintln!("convergence-bench: lab, {} blocks", args.blocks);
        let r = lab::run(&bins, args.blocks)?;
        eprint!("{r}"); // kept even if the mesh fails
        Some(r)
    } else {
        None
    };
    let mesh = if args.mesh_hosts > 0 {
        let m = args.mesh_hosts;
        let impls = args
            .mesh_impls
            .iter()
            .map(|i| match i.as_str() {
                "manul" => Ok(mesh::Impl::Manul),
                "bird" => Ok(mesh::Impl::Bird),
                other => anyhow::bail!("--mesh-impls: unknown {other:?} (manul, bird)"),
            })
            .collect::<Result<Vec<_>>>()?;
        let limits = mesh::NeighbourLimits::raise(2 * m * m)?;
        let mut outcomes = Vec::new();
        for round in 0..args.mesh_rounds {
            for which in &impls {
                eprintln!(
                    "convergence-bench: mesh of {m} hosts, {} (round {})",
                    which.name(),
                    round + 1
                );
                let o = mesh::run(&bins, m, *which)?;
                eprintln!(
                    "convergence-bench: {} every host complete after {:.2} s, {:.1} CPU s",
                    which.name(),
                    o.full(),
                    o.cpu
                );
                outcomes.push(o);
            }
        }
        Some(mesh::report(m, &outcomes, &limits.describe())?)
    } else {
        None
    };
    writeln!(
        t,
        "- load: `/proc/loadavg` {load_before} at the start, {} at the end (the machine may be shared)\n",
        loadavg()
    )?;
    if let Some(r) = lab {
        t.push_str(&r);
    }
    if let Some(r) = mesh {
        t.push_str(&r);
    }
    print!("{t}");
    if !args.no_write {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md");
        let mut old = std::fs::read_to_string(path).unwrap_or_default();
        old.push_str(&t);
        std::fs::write(path, old)?;
    }
    Ok(())
}
