//! felix-bench: kernel route programming, in one run, in network
//! namespaces it creates (never outside them):
//!
//! - install then remove N routes (`10.x.y.z/32 via 192.168.1.2`) with
//!   felix's reconciler, with `ip -batch`, and with BIRD 2's kernel protocol
//!   (a static protocol exported to the kernel); and felix's no-change
//!   resync over the full table (a restart: dump + diff, zero writes);
//! - the latency from an etcd write of a confirmed block affinity to its
//!   blackhole route being in the kernel (confd → felix), p50/p99.
//!
//! Times for felix are from handing over the desired set until every
//! write is acknowledged; for `ip -batch`, the command's run time; for
//! BIRD, from starting the daemon (or `disable`) until a netlink listener
//! in the namespace has seen the Nth route notification. The table is
//! counted afterwards for every implementation. Results are appended to
//! bench/RESULTS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt;
use ipnet::IpNet;
use manul_bench::machine::{loadavg, machine, manul_version, sh};
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_felix::{
    DesiredRoutes, NextHop, Reconciler, ReconcilerConfig, Target, calico, desired_routes,
};
use manul_tests::{Bird, Etcd, Netns};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(about = "felix route programming vs ip -batch vs BIRD, and etcd→kernel latency")]
struct Args {
    /// Route counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<u32>,
    /// Implementations: felix, ip, bird.
    #[arg(long, value_delimiter = ',', default_value = "felix,ip,bird")]
    impls: Vec<String>,
    /// etcd writes for the latency measurement (0: skip).
    #[arg(long, default_value_t = 200)]
    latency_writes: u32,
    /// Print the results instead of appending them to bench/RESULTS.md.
    #[arg(long)]
    no_write: bool,
}

fn dst(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i)
}

/// A namespace with `eth0` (a veth whose peer stays inside) on 192.168.1.1/24.
fn host(label: &str) -> Result<Netns> {
    let ns = Netns::new(label)?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])?;
    ns.link_up("eth0")?;
    ns.link_up("eth0p")?;
    ns.add_addr("eth0", "192.168.1.1/24")?;
    Ok(ns)
}

fn count(ns: &Netns, proto: &str) -> Result<usize> {
    Ok(ns
        .ip(&["-4", "route", "show", "proto", proto])?
        .lines()
        .count())
}

/// Route notifications in `ns`: (new?, protocol, destination) per message.
async fn listener(ns: &Netns) -> Result<mpsc::UnboundedReceiver<(bool, u8, Ipv4Addr, Instant)>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut events = manul_felix::netns::in_netns(Some(&ns.path()), || {
        let (mut conn, _, events) =
            rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Ipv4Route])?;
        let _ = netlink_sys::AsyncSocket::socket_mut(conn.socket_mut()).set_rx_buf_sz(64 << 20);
        tokio::spawn(conn);
        Ok(events)
    })?;
    tokio::spawn(async move {
        while let Some((msg, _)) = events.next().await {
            let now = Instant::now();
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            let (new, r) = match inner {
                RouteNetlinkMessage::NewRoute(r) => (true, r),
                RouteNetlinkMessage::DelRoute(r) => (false, r),
                _ => continue,
            };
            let d = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(*v4),
                _ => None,
            });
            if let Some(d) = d {
                if tx.send((new, u8::from(r.header.protocol), d, now)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Wait for `n` notifications of kind `new` with `proto`; the time of the last.
async fn wait_n(
    rx: &mut mpsc::UnboundedReceiver<(bool, u8, Ipv4Addr, Instant)>,
    new: bool,
    proto: u8,
    n: u32,
) -> Result<Instant> {
    let mut seen = 0;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .context("route notifications stopped")?
            .context("listener gone")?;
        if ev.0 == new && ev.1 == proto {
            seen += 1;
            if seen == n {
                return Ok(ev.3);
            }
        }
    }
}

struct Row {
    n: u32,
    imp: &'static str,
    install: f64,
    remove: f64,
    note: String,
}

fn desired(n: u32) -> DesiredRoutes {
    (0..n)
        .map(|i| {
            (
                IpNet::from(IpAddr::V4(dst(i))),
                Target::Via(vec![NextHop {
                    gateway: "192.168.1.2".parse().unwrap(),
                    device: None,
                    onlink: false,
                }]),
            )
        })
        .collect()
}

async fn felix(n: u32) -> Result<(Row, f64, u64)> {
    let ns = host("fbench-felix")?;
    let cfg = || ReconcilerConfig {
        netns: Some(ns.path()),
        ..ReconcilerConfig::default()
    };
    let want = desired(n);
    let r = Reconciler::start(cfg()).await?;
    let t = Instant::now();
    let g = r.set_desired(want.clone());
    let p = r.wait_generation(g).await;
    let install = t.elapsed().as_secs_f64();
    if !p.failed.is_empty() || count(&ns, "80")? != n as usize {
        bail!("felix install incomplete: {} failed", p.failed.len());
    }
    drop(r);
    // A restart over the full table: dump, diff, no writes.
    let r = Reconciler::start(cfg()).await?;
    let t = Instant::now();
    let g = r.set_desired(want);
    r.wait_generation(g).await;
    let resync = t.elapsed().as_secs_f64();
    let resync_writes = r.stats().writes();
    let t = Instant::now();
    let g = r.set_desired(DesiredRoutes::new());
    r.wait_generation(g).await;
    let remove = t.elapsed().as_secs_f64();
    if count(&ns, "80")? != 0 {
        bail!("felix removal incomplete");
    }
    Ok((
        Row {
            n,
            imp: "felix",
            install,
            remove,
            note: format!("no-change resync (restart): {resync:.3} s, {resync_writes} writes"),
        },
        resync,
        resync_writes,
    ))
}

fn ip_batch(n: u32) -> Result<Row> {
    let ns = host("fbench-ip")?;
    let dir = tempfile::tempdir()?;
    let (add, del) = (dir.path().join("add"), dir.path().join("del"));
    let mut a = String::with_capacity(n as usize * 48);
    let mut d = String::with_capacity(n as usize * 40);
    for i in 0..n {
        writeln!(a, "route add {}/32 via 192.168.1.2 proto 80", dst(i))?;
        writeln!(d, "route del {}/32 proto 80", dst(i))?;
    }
    std::fs::write(&add, a)?;
    std::fs::write(&del, d)?;
    let run = |file: &std::path::Path| -> Result<f64> {
        let t = Instant::now();
        ns.ip(&["-batch", file.to_str().unwrap()])?;
        Ok(t.elapsed().as_secs_f64())
    };
    let install = run(&add)?;
    if count(&ns, "80")? != n as usize {
        bail!("ip -batch install incomplete");
    }
    let remove = run(&del)?;
    Ok(Row {
        n,
        imp: "ip -batch",
        install,
        remove,
        note: "one request per line, each acknowledged before the next".into(),
    })
}

async fn bird(n: u32) -> Result<Row> {
    let ns = host("fbench-bird")?;
    let mut rx = listener(&ns).await?;
    let mut conf = String::from(
        "protocol kernel bench_kernel { ipv4 { export all; import none; }; }\nprotocol static bench_static {\n  ipv4;\n",
    );
    for i in 0..n {
        writeln!(conf, "  route {}/32 via 192.168.1.2;", dst(i))?;
    }
    conf.push_str("}\n");
    let t = Instant::now();
    let b = Bird::builder(&ns)
        .router_id("192.168.1.1".parse().unwrap())
        .start(&conf)?;
    let last = wait_n(&mut rx, true, 12, n).await?;
    let install = last.duration_since(t).as_secs_f64();
    if count(&ns, "bird")? != n as usize {
        bail!("BIRD install incomplete");
    }
    let t = Instant::now();
    b.birdc("disable bench_static")?;
    let last = wait_n(&mut rx, false, 12, n).await?;
    let remove = last.duration_since(t).as_secs_f64();
    Ok(Row {
        n,
        imp: "BIRD 2 kernel protocol",
        install,
        remove,
        note: "install timed from starting bird (config parse included); removal from `disable bench_static`"
            .into(),
    })
}

async fn latency(writes: u32) -> Result<(Vec<f64>, String)> {
    let ns = host("fbench-lat")?;
    let etcd = Etcd::start()?;
    let mut ec = EtcdConfig::new(vec![etcd.endpoint()]);
    ec.request_timeout = Duration::from_secs(5);
    let ds = Datastore::connect(&ec).await?;
    let me = "bench-node";
    ds.create(
        "/calico/resources/v3/projectcalico.org/ippools/p",
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p"},"spec":{"cidr":"10.128.0.0/9"}}"#,
    )
    .await?;
    let confd = Confd::start(ds.clone(), ConfdConfig::new(me));
    confd.status_watch().wait_for(|s| s.in_sync).await?;
    let felix = Arc::new(
        Reconciler::start(ReconcilerConfig {
            netns: Some(ns.path()),
            ..ReconcilerConfig::default()
        })
        .await?,
    );
    let mut sub = confd.subscribe();
    let f = felix.clone();
    let pump = tokio::spawn(async move {
        loop {
            let inputs = calico::inputs(sub.snapshot(), me, BTreeMap::new(), false);
            f.set_desired(desired_routes(&inputs).routes);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    let mut rx = listener(&ns).await?;
    let mut out = Vec::with_capacity(writes as usize);
    for i in 0..writes {
        let block = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i * 64);
        let key = format!("/calico/ipam/v2/host/{me}/ipv4/block/{block}-26");
        let t = Instant::now();
        ds.create(&key, r#"{"state":"confirmed","deleted":false}"#)
            .await?;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("no route notification")?
                .context("listener gone")?;
            if ev.0 && ev.1 == 80 && ev.2 == block {
                out.push(ev.3.duration_since(t).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    pump.abort();
    let writes_done = felix.stats().upserts.load(Ordering::Relaxed);
    Ok((out, format!("{writes_done} felix writes")))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let load_before = loadavg();
    let mut rows = Vec::new();
    let mut resyncs = Vec::new();
    for &n in &args.sizes {
        for imp in &args.impls {
            eprintln!("felix-bench: {imp} {n}");
            match imp.as_str() {
                "felix" => {
                    let (row, resync, writes) = felix(n).await?;
                    resyncs.push((n, resync, writes));
                    rows.push(row);
                }
                "ip" => rows.push(ip_batch(n)?),
                "bird" => rows.push(bird(n).await?),
                other => bail!("unknown implementation {other}"),
            }
        }
    }
    let lat = if args.latency_writes > 0 {
        eprintln!("felix-bench: latency over {} writes", args.latency_writes);
        Some(latency(args.latency_writes).await?)
    } else {
        None
    };

    let mut t = String::new();
    writeln!(
        t,
        "\n## felix: kernel route programming, run of {}\n",
        sh("date", &[])
    )?;
    writeln!(t, "- machine: {}", machine())?;
    writeln!(
        t,
        "- versions: {}, {}, {}",
        manul_version(),
        sh("bird", &["--version"]),
        sh("ip", &["-V"])
    )?;
    writeln!(
        t,
        "- load: `/proc/loadavg` {load_before} at the start, {} at the end (the machine may be shared)",
        loadavg()
    )?;
    writeln!(
        t,
        "- routes `10.x.y.z/32 via 192.168.1.2` in a fresh namespace per cell; one run per cell (`bench/run-felix`)\n"
    )?;
    writeln!(
        t,
        "| routes | implementation | install (s) | remove (s) | notes |"
    )?;
    writeln!(t, "|---:|---|---:|---:|---|")?;
    for r in &rows {
        writeln!(
            t,
            "| {} | {} | {:.3} | {:.3} | {} |",
            r.n, r.imp, r.install, r.remove, r.note
        )?;
    }
    writeln!(
        t,
        "\nTargets (issue 5): at 100000 routes felix ≤ 0.75× BIRD's time, and a no-change resync of 100000 routes makes zero writes.\n"
    )?;
    for &n in &args.sizes {
        let f = rows.iter().find(|r| r.n == n && r.imp == "felix");
        let b = rows.iter().find(|r| r.n == n && r.imp.starts_with("BIRD"));
        if let (Some(f), Some(b)) = (f, b) {
            let ratio = f.install / b.install;
            let rr = f.remove / b.remove;
            writeln!(
                t,
                "- {n}: felix/BIRD install {ratio:.2}× ({}), remove {rr:.2}×",
                if ratio <= 0.75 { "met" } else { "NOT met" }
            )?;
        }
    }
    for (n, secs, writes) in &resyncs {
        writeln!(
            t,
            "- {n}: no-change resync {secs:.3} s with {writes} writes ({})",
            if *writes == 0 { "met" } else { "NOT met" }
        )?;
    }
    if let Some((mut l, note)) = lat {
        l.sort_by(f64::total_cmp);
        writeln!(
            t,
            "\netcd write of a confirmed block affinity → its blackhole route in the kernel (confd → felix; time to the netlink notification), {} writes one after another: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({}). Target p99 < 20 ms: {}.",
            l.len(),
            pct(&l, 0.5),
            pct(&l, 0.99),
            l.last().copied().unwrap_or_default(),
            note,
            if pct(&l, 0.99) < 20.0 {
                "met"
            } else {
                "NOT met"
            }
        )?;
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
