//! `ipam-bench`: manul's IPAM against a local etcd, every measurement in
//! one run so their ratios are meaningful on a shared, noisy machine.
//!
//! 1. Starts its own etcd 3.4 (the `manul-tests` harness: one member on a
//!    free 127.0.0.1 port, data in a scratch temp dir) and creates a pool.
//! 2. **Floor**: `--floor` sequential compare-and-swap updates of one key
//!    through [`Datastore::update`] (guarded by its mod revision), and as
//!    many single-key reads ([`Datastore::get`]): latency p50/p99, rate.
//! 3. **One allocator** on one host: `--cycles` sequential assign (one
//!    IPv4 address, a fresh handle each) + release pairs after
//!    `--warmup` untimed ones (the first claims the host's block).
//!    Releases alternate between [`Ipam::release_by_handle`] and
//!    [`Ipam::release_ips`]; each is reported on its own.
//! 4. **Many allocators**: `--allocators` allocators on `--hosts` hosts
//!    (each allocator its own [`Ipam`] and etcd client, a tokio task on a
//!    multi-thread runtime), each doing `--load-cycles` assign + release
//!    cycles at once after one untimed warm-up cycle; the aggregate
//!    assignments per second over the wall time from the common start to
//!    the last allocator's end, and the lost compare-and-swaps
//!    ([`Ipam::stats`]).
//! 5. Appends a dated section to `bench/RESULTS.md` with the targets of
//!    the issue: assign p50 ≤ 2.5 × floor p50, aggregate rate ≥ 0.70 ×
//!    (floor rate ÷ 2) (an assignment writes twice: handle and block).
//!
//! Run it with `bench/run-ipam`. Nothing here is a test: it asserts no
//! time.

use manul_bench::machine::{loadavg, machine, manul_version, sh};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use ipnet::IpNet;
use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_datastore::resources::{IpPool, IpPoolSpec};
use manul_datastore::{Key, ResourceKind};
use manul_ipam::{AutoAssignArgs, Ipam, Released, Stats};
use manul_tests::Etcd;

const TARGET_ASSIGN_RATIO: f64 = 2.5;
const TARGET_RATE_RATIO: f64 = 0.70;
const FLOOR_KEY: &str = "/manul-bench/floor";

#[derive(Debug, Parser)]
#[command(about = "Benchmark manul's IPAM against a local etcd")]
struct Args {
    /// Sequential compare-and-swap updates (and reads) for the floor.
    #[arg(long, default_value_t = 2000)]
    floor: usize,
    /// Timed assign + release cycles of the single allocator.
    #[arg(long, default_value_t = 1000)]
    cycles: usize,
    /// Untimed cycles before them (and before the floor's timed updates).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Concurrent allocators, each with its own etcd client.
    #[arg(long, default_value_t = 16)]
    allocators: usize,
    /// Hosts they are spread over (allocator i is on host i % hosts).
    #[arg(long, default_value_t = 8)]
    hosts: usize,
    /// Assign + release cycles per concurrent allocator.
    #[arg(long, default_value_t = 100)]
    load_cycles: usize,
    /// The pool.
    #[arg(long, default_value = "10.64.0.0/16")]
    pool: IpNet,
    #[arg(long, default_value_t = 26)]
    block_size: u32,
    /// Where to append results; default bench/RESULTS.md.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Print the results only.
    #[arg(long)]
    no_write: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.allocators == 0 || args.hosts == 0 || args.cycles < 2 || args.floor == 0 {
        bail!("--allocators, --hosts and --floor must be at least 1, --cycles at least 2");
    }
    let load_before = loadavg();
    eprintln!("starting etcd ...");
    let etcd = Etcd::start().context("starting etcd (the manul-tests harness)")?;
    eprintln!("etcd at {}", etcd.endpoint());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Ctrl-C ends the run with an error, so `etcd` is dropped (stopped and
    // its data dir removed) on the way out.
    let res = rt.block_on(async {
        tokio::select! {
            r = run(&args, &etcd) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    drop(rt);
    drop(etcd);
    let m = res?;
    let text = render(&args, &m, &load_before)?;
    println!("{text}");
    if !args.no_write {
        let path = args
            .results
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md"));
        append(&path, &text)?;
        eprintln!("appended to {}", path.display());
    }
    Ok(())
}

// --- measurements ----------------------------------------------------------

/// Latencies of one kind of call, in seconds.
#[derive(Debug, Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64());
    }

    fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile `p` (0..=100), in milliseconds.
    fn pct_ms(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1] * 1e3
    }
}

/// etcd requests per call of one kind, summed.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    calls: u64,
    gets: u64,
    lists: u64,
    writes: u64,
    conflicts: u64,
}

impl Cost {
    fn add(&mut self, before: Stats, after: Stats) {
        self.calls += 1;
        self.gets += after.gets - before.gets;
        self.lists += after.lists - before.lists;
        self.writes += after.writes - before.writes;
        self.conflicts += after.conflicts - before.conflicts;
    }

    fn merge(&mut self, o: Cost) {
        self.calls += o.calls;
        self.gets += o.gets;
        self.lists += o.lists;
        self.writes += o.writes;
        self.conflicts += o.conflicts;
    }

    fn per_call(&self, n: u64) -> f64 {
        n as f64 / self.calls.max(1) as f64
    }
}

#[derive(Debug, Default)]
struct Floor {
    cas: Samples,
    cas_secs: f64,
    get: Samples,
    value_bytes: usize,
}

impl Floor {
    fn cas_rate(&self) -> f64 {
        self.cas.len() as f64 / self.cas_secs
    }
}

/// One allocator's (or all allocators') calls.
#[derive(Debug, Default)]
struct Calls {
    assign: Samples,
    by_handle: Samples,
    by_ips: Samples,
    assign_cost: Cost,
    by_handle_cost: Cost,
    by_ips_cost: Cost,
    errors: Vec<String>,
}

impl Calls {
    fn merge(&mut self, o: Calls) {
        self.assign.extend(o.assign);
        self.by_handle.extend(o.by_handle);
        self.by_ips.extend(o.by_ips);
        self.assign_cost.merge(o.assign_cost);
        self.by_handle_cost.merge(o.by_handle_cost);
        self.by_ips_cost.merge(o.by_ips_cost);
        self.errors.extend(o.errors);
    }

    fn release(&self) -> Samples {
        Samples(
            self.by_handle
                .0
                .iter()
                .chain(&self.by_ips.0)
                .copied()
                .collect(),
        )
    }
}

#[derive(Debug)]
struct Load {
    calls: Calls,
    secs: f64,
    stats: Stats,
}

impl Load {
    fn rate(&self) -> f64 {
        self.calls.assign.len() as f64 / self.secs
    }
}

#[derive(Debug)]
struct Measured {
    floor: Floor,
    solo: Calls,
    load: Load,
}

async fn connect(etcd: &Etcd) -> Result<Datastore> {
    let cfg = EtcdConfig::new([etcd.endpoint()]);
    Ok(Datastore::connect(&cfg).await?)
}

async fn run(args: &Args, etcd: &Etcd) -> Result<Measured> {
    let ds = connect(etcd).await?;
    let mut spec = IpPoolSpec::new(args.pool);
    spec.block_size = args.block_size;
    spec.fill_defaults();
    let pool = IpPool::new("bench-pool", spec);
    let key = Key::resource(ResourceKind::IpPool, "bench-pool").path()?;
    ds.create(&key, pool.to_json()).await?;

    eprintln!(
        "floor: {} compare-and-swap updates, {} reads ...",
        args.floor, args.floor
    );
    let floor = floor(&ds, args.floor, args.warmup).await?;
    eprintln!(
        "   CAS p50 {:.3} ms p99 {:.3} ms, {:.0}/s; get p50 {:.3} ms",
        floor.cas.pct_ms(50.0),
        floor.cas.pct_ms(99.0),
        floor.cas_rate(),
        floor.get.pct_ms(50.0)
    );

    eprintln!("one allocator: {} assign + release cycles ...", args.cycles);
    let solo_ipam = Ipam::new(connect(etcd).await?);
    cycles(&solo_ipam, "solo", "bench-solo", args.warmup).await;
    let solo = cycles(&solo_ipam, "solo", "bench-solo", args.cycles).await;
    if let Some(e) = solo.errors.first() {
        bail!(
            "one allocator: {} calls failed, first: {e}",
            solo.errors.len()
        );
    }
    eprintln!(
        "   assign p50 {:.3} ms p99 {:.3} ms; release p50 {:.3} ms",
        solo.assign.pct_ms(50.0),
        solo.assign.pct_ms(99.0),
        solo.release().pct_ms(50.0)
    );

    eprintln!(
        "{} allocators on {} hosts: {} cycles each ...",
        args.allocators, args.hosts, args.load_cycles
    );
    let load = load(etcd, args).await?;
    eprintln!(
        "   {:.0} assignments/s; assign p50 {:.3} ms; {} conflicts, {} errors",
        load.rate(),
        load.calls.assign.pct_ms(50.0),
        load.stats.conflicts,
        load.calls.errors.len()
    );
    Ok(Measured { floor, solo, load })
}

async fn floor(ds: &Datastore, n: usize, warmup: usize) -> Result<Floor> {
    let value = |i: usize| format!(r#"{{"bench":"floor","i":{i:08}}}"#);
    let mut rev = ds.create(FLOOR_KEY, value(0)).await?;
    for i in 0..warmup {
        rev = ds.update(FLOOR_KEY, value(i), rev).await?;
    }
    let mut out = Floor {
        value_bytes: value(0).len(),
        ..Floor::default()
    };
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        rev = ds.update(FLOOR_KEY, value(i), rev).await?;
        out.cas.push(t.elapsed());
    }
    out.cas_secs = start.elapsed().as_secs_f64();
    for _ in 0..n {
        let t = Instant::now();
        ds.get(FLOOR_KEY)
            .await?
            .ok_or_else(|| anyhow!("{FLOOR_KEY} vanished"))?;
        out.get.push(t.elapsed());
    }
    Ok(out)
}

/// `n` assign + release cycles on `host`; releases alternate between by
/// handle (even cycles) and by address (odd). Failures are collected.
async fn cycles(ipam: &Ipam, who: &str, host: &str, n: usize) -> Calls {
    let mut out = Calls::default();
    for i in 0..n {
        if let Err(e) = cycle(ipam, who, host, i, &mut out).await {
            out.errors.push(format!("{who} cycle {i}: {e:#}"));
        }
    }
    out
}

async fn cycle(ipam: &Ipam, who: &str, host: &str, i: usize, out: &mut Calls) -> Result<()> {
    // Unique per run: the warm-up and the timed cycles reuse indexes.
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handle = format!("k8s-pod-network.{who}-{serial}");
    let args = AutoAssignArgs {
        handle_id: handle.clone(),
        num_v4: 1,
        host: host.to_string(),
        ..AutoAssignArgs::default()
    };
    let s0 = ipam.stats();
    let t = Instant::now();
    let ips = ipam.auto_assign(&args).await?;
    out.assign.push(t.elapsed());
    out.assign_cost.add(s0, ipam.stats());
    let [ip]: [IpAddr; 1] = ips
        .try_into()
        .map_err(|v| anyhow!("asked for one address, got {v:?}"))?;
    let s0 = ipam.stats();
    let t = Instant::now();
    if i % 2 == 0 {
        let freed = ipam.release_by_handle(&handle).await?;
        out.by_handle.push(t.elapsed());
        out.by_handle_cost.add(s0, ipam.stats());
        if freed != [ip] {
            bail!("release_by_handle({handle}) freed {freed:?}, expected [{ip}]");
        }
    } else {
        let r = ipam.release_ips(&[(ip, None)]).await?;
        out.by_ips.push(t.elapsed());
        out.by_ips_cost.add(s0, ipam.stats());
        if !matches!(r.first(), Some((_, Released::Freed { .. }))) {
            bail!("release_ips({ip}) gave {r:?}");
        }
    }
    Ok(())
}

async fn load(etcd: &Etcd, args: &Args) -> Result<Load> {
    let n = args.allocators;
    // The allocators and the driver: all start timing together.
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = Vec::new();
    for a in 0..n {
        let ipam = Ipam::new(connect(etcd).await?);
        let barrier = barrier.clone();
        let host = format!("bench-host-{}", a % args.hosts);
        let k = args.load_cycles;
        tasks.push(tokio::spawn(async move {
            let who = format!("a{a}");
            // Untimed: claims the host's block (or finds its neighbour's).
            let warm = cycles(&ipam, &who, &host, 1).await;
            barrier.wait().await;
            let before = ipam.stats();
            let calls = cycles(&ipam, &who, &host, k).await;
            let end = Instant::now();
            (calls, delta(before, ipam.stats()), end, warm.errors)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut calls = Calls::default();
    let mut stats = Stats::default();
    let mut last = start;
    for t in tasks {
        let (c, s, end, warm_errors) = t.await.context("allocator task")?;
        if let Some(e) = warm_errors.first() {
            bail!("warm-up failed: {e}");
        }
        calls.merge(c);
        stats.gets += s.gets;
        stats.lists += s.lists;
        stats.writes += s.writes;
        stats.conflicts += s.conflicts;
        last = last.max(end);
    }
    Ok(Load {
        calls,
        secs: (last - start).as_secs_f64(),
        stats,
    })
}

fn delta(a: Stats, b: Stats) -> Stats {
    Stats {
        gets: b.gets - a.gets,
        lists: b.lists - a.lists,
        writes: b.writes - a.writes,
        conflicts: b.conflicts - a.conflicts,
    }
}

// --- the report ------------------------------------------------------------

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn render(args: &Args, m: &Measured, load_before: &str) -> Result<String> {
    let mut t = String::new();
    writeln!(t, "## IPAM run of {}\n", sh("date", &["-u"]))?;
    writeln!(t, "- machine: {}", machine())?;
    let etcd_version = sh("etcd", &["--version"]);
    writeln!(
        t,
        "- versions: {}, {}, {}",
        manul_version(),
        etcd_version.lines().next().unwrap_or("etcd ?"),
        sh("rustc", &["--version"]),
    )?;
    writeln!(
        t,
        "- load: `/proc/loadavg` {load_before} at the start, {} at the end (the machine may be shared)",
        loadavg()
    )?;
    writeln!(
        t,
        "- etcd: one member on 127.0.0.1 started by the `manul-tests` harness, data in a temp dir under /tmp; \
         every client its own `Datastore` (etcd-client, one HTTP/2 connection)"
    )?;
    writeln!(
        t,
        "- settings: pool {} blockSize {}; floor: {} updates of one {}-byte key (`Datastore::update`, guarded by mod revision) \
         after {} untimed, then {} reads of it (`Datastore::get`); one allocator: {} cycles after {} untimed; \
         load: {} allocators on {} hosts, {} cycles each after 1 untimed. A cycle: `auto_assign` of one IPv4 address \
         to a fresh handle, then its release, alternately `release_by_handle` and `release_ips`\n",
        args.pool,
        args.block_size,
        args.floor,
        m.floor.value_bytes,
        args.warmup,
        args.floor,
        args.cycles,
        args.warmup,
        args.allocators,
        args.hosts,
        args.load_cycles,
    )?;

    writeln!(t, "### Latency and rate\n")?;
    writeln!(
        t,
        "| measurement | calls | p50 (ms) | p99 (ms) | rate (/s) |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    let row = |t: &mut String, what: &str, s: &Samples, rate: Option<f64>| {
        writeln!(
            t,
            "| {what} | {} | {:.3} | {:.3} | {} |",
            s.len(),
            s.pct_ms(50.0),
            s.pct_ms(99.0),
            rate.map_or("".into(), |r| format!("{r:.0}"))
        )
    };
    let f = &m.floor;
    row(
        &mut t,
        "floor: compare-and-swap update, sequential",
        &f.cas,
        Some(f.cas_rate()),
    )?;
    row(&mut t, "read of one key, sequential", &f.get, None)?;
    let s = &m.solo;
    row(&mut t, "one allocator: assign", &s.assign, None)?;
    row(
        &mut t,
        "one allocator: release (both kinds)",
        &s.release(),
        None,
    )?;
    row(
        &mut t,
        "one allocator: release_by_handle",
        &s.by_handle,
        None,
    )?;
    row(&mut t, "one allocator: release_ips", &s.by_ips, None)?;
    let l = &m.load;
    let who = format!("{} allocators on {} hosts", args.allocators, args.hosts);
    row(
        &mut t,
        &format!("{who}: assign (rate: aggregate assignments/s)"),
        &l.calls.assign,
        Some(l.rate()),
    )?;
    row(
        &mut t,
        &format!("{who}: release (both kinds)"),
        &l.calls.release(),
        None,
    )?;
    writeln!(t)?;

    writeln!(
        t,
        "### etcd requests per call (`Ipam::stats()`)\n\n| call | gets | lists | writes | lost compare-and-swaps |\n|---|---:|---:|---:|---:|"
    )?;
    let cost_row = |t: &mut String, what: &str, c: &Cost| {
        writeln!(
            t,
            "| {what} | {:.2} | {:.2} | {:.2} | {:.3} |",
            c.per_call(c.gets),
            c.per_call(c.lists),
            c.per_call(c.writes),
            c.per_call(c.conflicts)
        )
    };
    cost_row(&mut t, "one allocator: assign", &s.assign_cost)?;
    cost_row(
        &mut t,
        "one allocator: release_by_handle",
        &s.by_handle_cost,
    )?;
    cost_row(&mut t, "one allocator: release_ips", &s.by_ips_cost)?;
    cost_row(&mut t, &format!("{who}: assign"), &l.calls.assign_cost)?;
    cost_row(
        &mut t,
        &format!("{who}: release_by_handle"),
        &l.calls.by_handle_cost,
    )?;
    cost_row(&mut t, &format!("{who}: release_ips"), &l.calls.by_ips_cost)?;
    writeln!(
        t,
        "\nUnder load, in {:.2} s: {} assignments, {} releases, {} failed cycles; {} gets, {} lists, {} writes, \
         {} of them lost compare-and-swaps (retried).\n",
        l.secs,
        l.calls.assign.len(),
        l.calls.release().len(),
        l.calls.errors.len(),
        l.stats.gets,
        l.stats.lists,
        l.stats.writes,
        l.stats.conflicts
    )?;
    if let Some(e) = l.calls.errors.first() {
        writeln!(t, "First failure under load: `{e}`\n")?;
    }

    let assign_ratio = s.assign.pct_ms(50.0) / f.cas.pct_ms(50.0);
    let rate_ratio = l.rate() / (f.cas_rate() / 2.0);
    writeln!(
        t,
        "### Targets (issue): assign p50 ≤ {TARGET_ASSIGN_RATIO}× the floor's p50; aggregate rate ≥ {TARGET_RATE_RATIO:.2} × (floor rate ÷ 2)\n"
    )?;
    writeln!(
        t,
        "- assign p50 / floor p50 = {:.3} / {:.3} ms = {assign_ratio:.2}× (target ≤ {TARGET_ASSIGN_RATIO}): {}",
        s.assign.pct_ms(50.0),
        f.cas.pct_ms(50.0),
        met(assign_ratio <= TARGET_ASSIGN_RATIO)
    )?;
    writeln!(
        t,
        "- aggregate rate / (floor rate ÷ 2) = {:.0} / ({:.0} ÷ 2) = {rate_ratio:.2} (target ≥ {TARGET_RATE_RATIO:.2}): {}",
        l.rate(),
        f.cas_rate(),
        met(rate_ratio >= TARGET_RATE_RATIO && l.calls.errors.is_empty())
    )?;
    Ok(t)
}

/// Append `text` to `path`, creating it with a heading if new.
fn append(path: &Path, text: &str) -> Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        writeln!(
            f,
            "# Benchmark results\n\nAppended by `bench/run` and `bench/run-ipam`; see `bench/README.md` for what each number measures.\n"
        )?;
    }
    writeln!(f, "{text}")?;
    Ok(())
}
