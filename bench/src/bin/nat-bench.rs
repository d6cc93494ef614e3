//! nat-bench: NAT outgoing (issue 15), in one run, in network namespaces
//! it creates (never outside them):
//!
//! - **pool change → rule in the kernel**: an etcd write flipping a pool's
//!   `natOutgoing`, through confd and felix (as the agent wires them), to
//!   the nftables notification of the set element change in manul's table
//!   (`masq-ipam-pools-v4`), read by a listener of its own in the
//!   namespace; p50/p99 over many changes, one after another;
//! - **throughput**: iperf3 (TCP, one stream) from a pod to a host outside
//!   every pool, masqueraded by felix's table, and from the same pod to a
//!   pod on the same host (not masqueraded: pool to pool), alternating,
//!   side by side. Both cross the host once (veth → forward → veth: the
//!   external host hangs off the host by a veth pair of its own); the
//!   external path adds the masquerade (conntrack's NAT on each packet).
//!
//! Results are appended to bench/RESULTS.md (`--no-write` prints only).
//! Needs root, etcd, iperf3.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use manul_bench::iperf::{iperf, number_after};
use manul_bench::machine::{loadavg, machine, manul_version, sh};
use manul_bench::pods::pod;
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_felix::desired::{Encap, Pool};
use manul_felix::nat::{self, NatConfig, NatDriver};
use manul_felix::{Felix, FelixConfig, ReconcilerConfig};
use manul_tests::{Etcd, Host, Netns};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nftables::{NfTablesMessage, SetElementList};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

#[derive(Parser, Debug)]
#[command(
    about = "NAT outgoing: pool change → nftables rule latency, and pod → external throughput with NAT vs pod → pod"
)]
struct Args {
    /// Pool changes for the latency measurement (0: skip).
    #[arg(long, default_value_t = 200)]
    changes: u32,
    /// iperf3 runs per path (alternating).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seconds per iperf3 run (0: skip the throughput part).
    #[arg(long, default_value_t = 5)]
    secs: u32,
    /// Print the results instead of appending them to bench/RESULTS.md.
    #[arg(long)]
    no_write: bool,
}

const POOL_KEY: &str = "/calico/resources/v3/projectcalico.org/ippools/p";
const MASQ_SET: &str = "masq-ipam-pools-v4";

fn pool_json(nat: bool) -> String {
    format!(
        r#"{{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{{"name":"p"}},"spec":{{"cidr":"10.65.0.0/16","natOutgoing":{nat}}}}}"#
    )
}

/// Element changes of manul's masquerade set in `ns`, as they are
/// notified: (added, when).
fn listen(ns: &Netns) -> Result<mpsc::Receiver<(bool, Instant)>> {
    let socket = ns.run(|| -> std::io::Result<Socket> {
        let mut s = Socket::new(NETLINK_NETFILTER)?;
        s.bind(&SocketAddr::new(0, 1 << (7 - 1)))?; // NFNLGRP_NFTABLES
        Ok(s)
    })?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let Ok(n) = socket.recv(&mut &mut buf[..], 0) else {
                return;
            };
            let at = Instant::now();
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                if len < 16 || off + len > n {
                    break;
                }
                if let Ok(NetlinkMessage {
                    payload:
                        NetlinkPayload::InnerMessage(NetfilterMessage {
                            inner: NetfilterMessageInner::NfTables(m),
                            ..
                        }),
                    ..
                }) = NetlinkMessage::<NetfilterMessage>::deserialize(&buf[off..off + len])
                {
                    let (added, e) = match &m {
                        NfTablesMessage::NewSetElement(e) => (true, e),
                        NfTablesMessage::DeleteSetElement(e) => (false, e),
                        _ => {
                            off += (len + 3) & !3;
                            continue;
                        }
                    };
                    if e.attributes.contains(&SetElementList::Set(MASQ_SET.into()))
                        && tx.send((added, at)).is_err()
                    {
                        return;
                    }
                }
                off += (len + 3) & !3;
            }
        }
    });
    Ok(rx)
}

/// Pool change → set element change in the kernel, `changes` times: ms.
async fn latency(changes: u32) -> Result<(Vec<f64>, String)> {
    let ns = Netns::new("natbench-lat")?;
    let etcd = Etcd::start()?;
    let mut ec = EtcdConfig::new(vec![etcd.endpoint()]);
    ec.request_timeout = Duration::from_secs(5);
    let ds = Datastore::connect(&ec).await?;
    let me = "bench-node";
    let mut rev = ds.create(POOL_KEY, pool_json(true)).await?;
    let confd = Confd::start(ds.clone(), ConfdConfig::new(me));
    confd.status_watch().wait_for(|s| s.in_sync).await?;
    let felix = Arc::new(
        Felix::start(FelixConfig {
            routes: ReconcilerConfig {
                netns: Some(ns.path()),
                ..ReconcilerConfig::default()
            },
            ..FelixConfig::default()
        })
        .await?,
    );
    let rx = listen(&ns)?;
    let mut sub = confd.subscribe();
    let f = felix.clone();
    let pump = tokio::spawn(async move {
        loop {
            f.update(sub.snapshot(), me, BTreeMap::new(), BTreeMap::new(), false);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    // The first table, made whole.
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut w = felix.watch_nat();
        w.wait_for(|p| p.in_sync).await.map(|_| ())
    })
    .await
    .context("the NAT table was never made")??;
    while rx.try_recv().is_ok() {}
    let mut out = Vec::with_capacity(changes as usize);
    let mut on = true;
    for _ in 0..changes {
        on = !on;
        let t = Instant::now();
        rev = ds.update(POOL_KEY, pool_json(on), rev).await?;
        loop {
            let (added, at) = rx
                .recv_timeout(Duration::from_secs(10))
                .context("no set element notification")?;
            if added == on {
                out.push(at.duration_since(t).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    pump.abort();
    let p = felix.watch_nat().borrow().clone();
    Ok((
        out,
        format!(
            "{} NAT transactions written, {} failures, {} repairs",
            p.writes, p.failures, p.repairs
        ),
    ))
}

/// (pod → external with NAT, pod → pod) in Gbit/s, `runs` each, alternating.
async fn throughput(runs: u32, secs: u32) -> Result<(Vec<f64>, Vec<f64>, String)> {
    // The host and the external host joined by one veth pair, as each pod
    // is joined to the host: both paths cross the same kind of link twice.
    let host = Host {
        name: "host".into(),
        ns: Netns::new("natbench-host")?,
        iface: "eth0".into(),
        ipv4: Ipv4Addr::new(192, 168, 1, 1),
        ipv6: "fd00:88::1".parse()?,
    };
    let ext = Netns::new("natbench-ext")?;
    let ext_ip = Ipv4Addr::new(192, 168, 1, 2);
    host.ns.veth("eth0", &ext, "eth0")?;
    host.ns.add_addr("eth0", "192.168.1.1/24")?;
    ext.add_addr("eth0", "192.168.1.2/24")?;
    host.ns.sysctl("net.ipv4.ip_forward", "1")?;
    let host = &host;
    let a = pod(host, "natbenchA", "caliaaaa", "10.65.0.2")?;
    let b = pod(host, "natbenchB", "calibbbb", "10.65.0.3")?;
    let nat = NatDriver::start(NatConfig {
        netns: Some(host.ns.path()),
        ..NatConfig::default()
    });
    let g = nat.set_desired(nat::desired(&[Pool {
        name: "p".into(),
        cidr: "10.65.0.0/16".parse()?,
        ipip: Encap::Never,
        vxlan: Encap::Never,
        nat_outgoing: true,
    }]));
    let p = tokio::time::timeout(Duration::from_secs(10), nat.wait_generation(g)).await?;
    if !p.in_sync {
        bail!("NAT table not made: {:?}", p.last_error);
    }
    let (mut to_ext, mut to_pod) = (Vec::new(), Vec::new());
    for i in 0..runs {
        eprintln!("nat-bench: throughput run {}/{runs}", i + 1);
        let (an, en, bn) = (a.ns.clone(), ext.clone(), b.ns.clone());
        let b_ip = b.ip;
        let (e, p) = tokio::task::spawn_blocking(move || -> Result<(f64, f64)> {
            Ok((iperf(&en, &an, ext_ip, secs)?, iperf(&bn, &an, b_ip, secs)?))
        })
        .await??;
        to_ext.push(e);
        to_pod.push(p);
    }
    let counter = host
        .ns
        .exec("nft", &["list", "chain", "inet", "manul", "nat-outgoing"])
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("ip saddr"))
        .and_then(|l| number_after(l, "counter packets"))
        .map_or_else(
            || "masquerade counter unread (nft missing)".to_string(),
            |n| format!("the masquerade rule counted {n} packets (first packets of flows only: the rest are NATed by conntrack)"),
        );
    drop(nat);
    nat::cleanup(Some(&host.ns.path())).await?;
    Ok((to_ext, to_pod, counter))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    pct(&s, 0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let load_before = loadavg();
    let lat = if args.changes > 0 {
        eprintln!("nat-bench: latency over {} pool changes", args.changes);
        Some(latency(args.changes).await?)
    } else {
        None
    };
    let tput = if args.secs > 0 && args.runs > 0 {
        Some(throughput(args.runs, args.secs).await?)
    } else {
        None
    };

    let mut t = String::new();
    writeln!(
        t,
        "\n## NAT outgoing (issue 15), run of {}\n",
        sh("date", &[])
    )?;
    writeln!(t, "- machine: {}", machine())?;
    writeln!(
        t,
        "- versions: {}, {}",
        manul_version(),
        sh("iperf3", &["--version"]).lines().next().unwrap_or("")
    )?;
    writeln!(
        t,
        "- load: `/proc/loadavg` {load_before} at the start, {} at the end (the machine may be shared)",
        loadavg()
    )?;
    writeln!(t, "- `bench/run-nat`\n")?;
    if let Some((mut l, note)) = lat {
        l.sort_by(f64::total_cmp);
        let p99 = pct(&l, 0.99);
        writeln!(
            t,
            "Pool change → rule in the kernel: etcd write flipping `natOutgoing` of 10.65.0.0/16 → the nftables notification of `{MASQ_SET}`'s element change (confd → felix → one nftables transaction), {} changes one after another: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({note}). Target p99 < 20 ms: {}.\n",
            l.len(),
            pct(&l, 0.5),
            p99,
            l.last().copied().unwrap_or_default(),
            if p99 < 20.0 { "met" } else { "NOT met" }
        )?;
    }
    if let Some((e, p, counter)) = tput {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (me, mp) = (median(&e), median(&p));
        let ratio = me / mp;
        writeln!(
            t,
            "Throughput (iperf3, TCP, 1 stream, {} s per run, {} runs each, alternating), both paths crossing the host once:\n",
            args.secs, args.runs
        )?;
        writeln!(t, "| path | runs (Gbit/s) | median (Gbit/s) |")?;
        writeln!(t, "|---|---|---:|")?;
        writeln!(
            t,
            "| pod → external host, masqueraded (natOutgoing) | {} | {me:.2} |",
            list(&e)
        )?;
        writeln!(
            t,
            "| pod → pod on the same host, not masqueraded | {} | {mp:.2} |",
            list(&p)
        )?;
        writeln!(
            t,
            "\nNAT / no NAT: {ratio:.2}× ({counter}). Target within 10 %: {}.",
            if ratio >= 0.9 { "met" } else { "NOT met" }
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
