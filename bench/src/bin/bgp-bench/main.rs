//! `bgp-bench`: manul-bgpd, BIRD 2 and GoBGP side by side, in one run on
//! this machine, in network namespaces it creates and removes.
//!
//! Scenarios, each for every implementation and table size:
//!
//! - **receive**: blaster → receiver; the time from Established until the
//!   receiver holds N prefixes from the blaster (polled every `--poll-ms`).
//! - **pass**: blaster → device under test → sink (eBGP both sides, export
//!   all); the time from the blaster's Established until the sink holds N.
//!
//! Plus the peak RSS (VmHWM) of the receiver / device under test. With
//! `--import-filter N`, the blaster's session has an N-rule import filter
//! on the receiver / device under test (`filter`). Results are appended to
//! `bench/RESULTS.md`. Needs root; run it via `bench/run`.

mod dut;
mod filter;
mod report;
mod tools;
mod topo;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Parser;
use manul_bench::clock;

use crate::dut::{Dut, Kind, cpu_secs, peak_rss_kib};
use crate::report::{Outcome, Scenario};
use crate::tools::{Tool, num, poll};
use crate::topo::{BLASTER, BLASTER_AS, DUT_AS, DUT_IN, SINK, SINK_AS, Topo};

#[derive(Debug, Parser)]
#[command(about = "Benchmark manul-bgpd against BIRD and GoBGP")]
struct Args {
    /// Table sizes (IPv4 /24 prefixes).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sizes: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "manul,bird,gobgp")]
    impls: Vec<Kind>,
    #[arg(long, value_delimiter = ',', default_value = "receive,pass")]
    scenarios: Vec<Scenario>,
    /// Seconds one measurement may take (GoBGP needs ~25 s for 1M).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// How often to ask a receiver for its count, ms.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Where to append results; default bench/RESULTS.md.
    #[arg(long)]
    results: Option<PathBuf>,
    /// criterion output of `cargo bench -p manul-bgp --bench codec`, to record too.
    #[arg(long)]
    codec_output: Option<PathBuf>,
    /// Print the results only.
    #[arg(long)]
    no_write: bool,
    /// An import filter of this many rules on the blaster's session (manul
    /// and BIRD; 0: none), which every announced prefix passes.
    #[arg(long, default_value_t = 0)]
    import_filter: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("bgp-bench needs root (network namespaces)");
    }
    tools::catch_signals()?;
    let mut outcomes = Vec::new();
    for &scenario in &args.scenarios {
        for &n in &args.sizes {
            for &kind in &args.impls {
                eprintln!("== {} {} {n} ...", scenario.label(), kind.label());
                let o = match run_one(kind, scenario, n, &args) {
                    Ok(o) => o,
                    Err(e) => {
                        eprintln!("   failed: {e:#}");
                        if e.to_string().contains("interrupted") {
                            return Err(e);
                        }
                        Outcome::failed(scenario, kind, n, format!("{e:#}"))
                    }
                };
                eprintln!("   {}", o.one_line());
                outcomes.push(o);
            }
        }
    }
    let codec = args
        .codec_output
        .as_ref()
        .map(std::fs::read_to_string)
        .transpose()?;
    let text = report::render(
        &outcomes,
        codec.as_deref(),
        args.poll_ms,
        args.import_filter,
    )?;
    println!("{text}");
    if !args.no_write {
        let path = args
            .results
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md"));
        report::append(&path, &text)?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}

fn run_one(kind: Kind, scenario: Scenario, n: usize, args: &Args) -> Result<Outcome> {
    let pass = scenario == Scenario::Pass;
    let fast = Duration::from_millis(10);
    let every = Duration::from_millis(args.poll_ms);
    let timeout = Duration::from_secs(args.timeout);
    let setup = Duration::from_secs(60);
    let topo = Topo::new(pass)?;

    let mut sink = match &topo.sink {
        Some(ns) => {
            let a = format!(
                "--listen {SINK}:179 --asn {SINK_AS} --peer-as {DUT_AS} --router-id {SINK} --expect {n}"
            );
            let mut s = Tool::start(ns, "sink", &split(&a))?;
            s.wait_event("listening", setup, fast)?;
            Some(s)
        }
        None => None,
    };
    let mut dut = Dut::start(kind, &topo.dut, pass, args.import_filter)?;
    if let Some(s) = &mut sink {
        s.wait_event("established", setup, fast)?;
    }
    let a = format!(
        "--peer {DUT_IN} --local-as {BLASTER_AS} --peer-as {DUT_AS} --router-id {BLASTER} --count {n}"
    );
    let mut blaster = Tool::start(&topo.blaster, "blaster", &split(&a))?;
    let est = blaster.wait_event("established", setup, fast)?;
    let established_at = num(&est, "t")?;
    let cpu_before = cpu_secs(dut.daemon().pid())?;
    let extended = est["extended_message"].as_bool().unwrap_or(false);

    let done_at = match &mut sink {
        Some(s) => num(&s.wait_event("reached", timeout, every)?, "t")?,
        None => {
            let what = format!("{} to hold {n} prefixes", kind.label());
            poll(timeout, every, kind.probe_spacing(), &what, || {
                dut.daemon().ensure_running()?;
                let got = dut.received()?;
                Ok((got >= n as u64).then(clock::now))
            })?
        }
    };
    let cpu = cpu_secs(dut.daemon().pid())? - cpu_before;
    let rss_kib = peak_rss_kib(dut.daemon().pid())?;
    let sent = blaster.wait_event("sent", setup, fast)?;
    let write_secs = num(&sent, "last_byte_written_at")? - established_at;
    let messages = sent["messages"].as_u64().unwrap_or(0);
    let mut note = format!(
        "{messages} UPDATEs of ≤{} octets",
        if extended { 65535 } else { 4096 }
    );
    if !pass {
        let rib = dut.rib_count()?;
        if rib != n as u64 {
            return Err(anyhow!("{} RIB holds {rib}, expected {n}", kind.label()));
        }
    }
    if args.import_filter > 0 {
        let _ = write!(note, "; {}-rule import filter", args.import_filter);
    }
    if sent["encoded_in_window"].as_bool() == Some(true) {
        note.push_str("; blaster re-encoded inside the window");
    }
    Ok(Outcome {
        scenario,
        kind,
        n,
        secs: Some(done_at - established_at),
        write_secs: Some(write_secs),
        rss_kib: Some(rss_kib),
        cpu_secs: Some(cpu),
        note,
    })
}

fn split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}
