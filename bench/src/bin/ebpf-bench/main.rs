//! ebpf-bench: writing felix's eBPF route map (issue 6), in one run, in a
//! bpffs pin directory of its own (removed at the end):
//!
//! - felix's `Dataplane::sync` installing N IPv4 routes into an empty map
//!   (diff + one `bpf_map_update_elem` per entry), a no-change sync (a
//!   restart's: zero writes), and removing them all;
//! - the baseline: a plain loop of `bpf_map_update_elem` (aya's
//!   `LpmTrie::insert`) over the same N entries into a fresh map.
//!
//! - pod-to-pod throughput (iperf3, TCP, one stream) and latency (ping,
//!   1000 samples 1 ms apart), same host and cross host, with the programs
//!   (workload and uplink) vs plain kernel routing vs host-to-host without
//!   veths (the limit), in namespaces it creates ([`manul_bench::pods`]).
//!
//! Results are appended to bench/RESULTS.md (`--no-write` prints only).
//! Needs root, bpffs (mounted at /sys/fs/bpf if missing), iperf3, ping.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Result, anyhow};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Map, MapData};
use clap::Parser;
use ipnet::IpNet;
use manul_bench::machine::{loadavg, machine, manul_version};
use manul_felix::ebpf::{
    Dataplane, DataplaneConfig, EndpointEntries, RouteEntries, RouteValue, flags, kind,
};
use manul_tests::PinDir;

mod traffic;

#[derive(Parser, Debug)]
#[command(about = "felix's eBPF route map writes vs a plain syscall loop")]
struct Args {
    /// Route counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<u32>,
    /// Print the results instead of appending them to bench/RESULTS.md.
    #[arg(long)]
    no_write: bool,
    /// Skip the throughput and latency part.
    #[arg(long)]
    no_traffic: bool,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 3)]
    iperf_secs: u32,
}

fn routes(n: u32) -> RouteEntries {
    (0..n)
        .map(|i| {
            let dst = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i);
            let v = RouteValue {
                kind: kind::REMOTE_WORKLOAD,
                flags: flags::IN_POOL | flags::SAME_SUBNET,
                next_hop: [192, 168, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ..RouteValue::default()
            };
            (IpNet::from(IpAddr::V4(dst)), v)
        })
        .collect()
}

fn us_per(secs: f64, n: u32) -> f64 {
    secs * 1e6 / f64::from(n)
}

struct Row {
    n: u32,
    install: f64,
    resync: f64,
    remove: f64,
    raw: f64,
}

fn measure(n: u32) -> Result<Row> {
    let pins = PinDir::new("ebpf-bench")?;
    let mut dp = Dataplane::open(DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        route_capacity: n,
        ..DataplaneConfig::default()
    })?;
    let want = routes(n);
    let none = EndpointEntries::new();
    let t = Instant::now();
    let s = dp.sync(&want, &none)?;
    let install = t.elapsed().as_secs_f64();
    assert_eq!(s.routes_put, n as usize);
    let t = Instant::now();
    let s = dp.sync(&want, &none)?;
    let resync = t.elapsed().as_secs_f64();
    assert_eq!(s.routes_put + s.routes_deleted, 0);
    let t = Instant::now();
    let s = dp.sync(&RouteEntries::new(), &none)?;
    let remove = t.elapsed().as_secs_f64();
    assert_eq!(s.routes_deleted, n as usize);

    // The baseline: the same inserts as a bare loop on the (now empty) map.
    let data = MapData::from_pin(pins.path().join("routes_v4"))?;
    let mut trie: LpmTrie<MapData, [u8; 4], RouteValue> =
        LpmTrie::try_from(Map::from_map_data(data)?)?;
    let keys: Vec<(Key<[u8; 4]>, RouteValue)> = want
        .iter()
        .map(|(net, v)| match net {
            IpNet::V4(n4) => Ok((Key::new(32, n4.addr().octets()), *v)),
            IpNet::V6(_) => Err(anyhow!("v4 only")),
        })
        .collect::<Result<_>>()?;
    let t = Instant::now();
    for (k, v) in &keys {
        trie.insert(k, v, 0)?;
    }
    let raw = t.elapsed().as_secs_f64();
    drop(trie);
    drop(dp);
    Ok(Row {
        n,
        install,
        resync,
        remove,
        raw,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut t = String::new();
    writeln!(
        t,
        "\n\n## eBPF route map writes (issue 6), run of {}\n",
        manul_bench::machine::sh("date", &["-u"])
    )?;
    writeln!(t, "- machine: {}", machine())?;
    writeln!(t, "- versions: {}", manul_version())?;
    writeln!(t, "- load: `/proc/loadavg` {} at the start", loadavg())?;
    writeln!(
        t,
        "- IPv4 /32 routes into the `routes_v4` LPM trie of a fresh pin dir per size (`bench/run-ebpf`); one run per cell\n"
    )?;
    writeln!(
        t,
        "| routes | felix sync install (s) | µs/entry | no-change sync (s) | remove all (s) | µs/entry | plain insert loop (s) | µs/entry |"
    )?;
    writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        let r = measure(n)?;
        writeln!(
            t,
            "| {} | {:.3} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | {:.2} |",
            r.n,
            r.install,
            us_per(r.install, r.n),
            r.resync,
            r.remove,
            us_per(r.remove, r.n),
            r.raw,
            us_per(r.raw, r.n)
        )?;
        rows.push(r);
    }
    writeln!(
        t,
        "\nTarget (issue 6): under 2 µs per route entry written (a plain syscall loop: ~3 µs).\n"
    )?;
    for r in &rows {
        let us = us_per(r.install, r.n);
        writeln!(
            t,
            "- {}: felix {us:.2} µs/entry ({}), no-change sync writes nothing",
            r.n,
            if us < 2.0 { "met" } else { "NOT met" }
        )?;
    }
    if !args.no_traffic {
        traffic::run(&mut t, args.iperf_secs)?;
    }
    writeln!(t, "- load at the end: {}", loadavg())?;
    print!("{t}");
    if !args.no_write {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md");
        let mut old = std::fs::read_to_string(path).unwrap_or_default();
        old.push_str(&t);
        std::fs::write(path, old)?;
    }
    Ok(())
}
