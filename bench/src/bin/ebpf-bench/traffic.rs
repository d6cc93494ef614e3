//! The throughput and latency part of ebpf-bench: a two-host rack with
//! pods, iperf3 and ping through plain kernel routing, then through the
//! programs, and host to host as the limit.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use anyhow::{Result, anyhow};
use ipnet::IpNet;
use manul_bench::iperf::iperf;
use manul_bench::pods::{Pod, Rack};
use manul_felix::desired::{Encap, Pool};
use manul_felix::ebpf::{Counters, Dataplane, DataplaneConfig};
use manul_felix::{DesiredRoutes, NextHop, Target};
use manul_tests::{Host, Netns, PinDir};

/// One measurement: Gbit/s, and ping avg / mdev in ms.
struct Cell {
    gbps: f64,
    avg_ms: f64,
    mdev_ms: f64,
}

fn ping(client: &Netns, addr: Ipv4Addr) -> Result<(f64, f64)> {
    let out = client.exec(
        "ping",
        &["-n", "-q", "-c", "1000", "-i", "0.001", &addr.to_string()],
    )?;
    let line = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .ok_or_else(|| anyhow!("no rtt line: {out}"))?;
    let nums: Vec<f64> = line
        .split('=')
        .nth(1)
        .unwrap_or("")
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .filter_map(|n| n.parse().ok())
        .collect();
    match nums[..] {
        [_, avg, _, mdev] => Ok((avg, mdev)),
        _ => Err(anyhow!("rtt line: {line}")),
    }
}

fn cell(server: &Netns, client: &Netns, addr: Ipv4Addr, secs: u32) -> Result<Cell> {
    let (avg_ms, mdev_ms) = ping(client, addr)?;
    Ok(Cell {
        gbps: iperf(server, client, addr, secs)?,
        avg_ms,
        mdev_ms,
    })
}

/// The dataplane of `host`: its pods' host routes, the other host's block,
/// programs on the pods' interfaces and the uplink.
fn program(
    host: &Host,
    pins: &PinDir,
    pods: &[&Pod],
    remote: (&str, Ipv4Addr),
) -> Result<Dataplane> {
    let mut dp = Dataplane::open(DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        netns: Some(host.ns.path()),
        ..DataplaneConfig::default()
    })?;
    let mut routes = DesiredRoutes::new();
    for p in pods {
        routes.insert(
            IpNet::from(std::net::IpAddr::V4(p.ip)),
            Target::Device(p.host_if.clone()),
        );
    }
    routes.insert(
        remote.0.parse()?,
        Target::Via(vec![NextHop {
            gateway: remote.1.into(),
            device: None,
            onlink: false,
        }]),
    );
    let pools = vec![Pool {
        name: "bench".into(),
        cidr: "10.65.0.0/16".parse()?,
        ipip: Encap::Never,
        vxlan: Encap::Never,
        nat_outgoing: false,
    }];
    let endpoints = pods
        .iter()
        .map(|p| p.endpoint())
        .collect::<Result<Vec<_>>>()?;
    dp.sync_desired(
        &routes,
        &Default::default(),
        &pools,
        &["10.88.0.0/24".parse()?],
        &endpoints,
    )?;
    for p in pods {
        dp.attach(&p.host_if)?;
    }
    dp.attach_uplink(&host.iface)?;
    Ok(dp)
}

fn counters(dp: &Dataplane) -> Result<Counters> {
    let mut sum = Counters::default();
    for c in dp.all_counters()?.values() {
        sum.add(c);
    }
    Ok(sum)
}

/// Build the rack, measure, append a table to `t`.
pub fn run(t: &mut String, secs: u32) -> Result<()> {
    let rack = Rack::build()?;
    let (h1, h2) = (rack.lab.host(1), rack.lab.host(2));
    // Warm up neighbours and routes.
    for (from, to) in [(&rack.a, rack.b.ip), (&rack.a, rack.c.ip)] {
        let _ = from.ns.ping(to.into(), 3);
    }
    let limit = cell(&h2.ns, &h1.ns, h2.ipv4, secs)?;
    let plain_same = cell(&rack.b.ns, &rack.a.ns, rack.b.ip, secs)?;
    let plain_cross = cell(&rack.c.ns, &rack.a.ns, rack.c.ip, secs)?;
    let pins1 = PinDir::new("bench1")?;
    let pins2 = PinDir::new("bench2")?;
    let dp1 = program(h1, &pins1, &[&rack.a, &rack.b], ("10.65.1.0/26", h2.ipv4))?;
    let dp2 = program(h2, &pins2, &[&rack.c], ("10.65.0.0/26", h1.ipv4))?;
    let ebpf_same = cell(&rack.b.ns, &rack.a.ns, rack.b.ip, secs)?;
    let ebpf_cross = cell(&rack.c.ns, &rack.a.ns, rack.c.ip, secs)?;
    let (c1, c2) = (counters(&dp1)?, counters(&dp2)?);
    writeln!(
        t,
        "\nThroughput (iperf3, TCP, 1 stream, {secs} s) and latency (ping, 1000 x 1 ms):\n"
    )?;
    writeln!(
        t,
        "| path | dataplane | Gbit/s | ping avg (ms) | ping mdev (ms) |"
    )?;
    writeln!(t, "|---|---|---:|---:|---:|")?;
    for (path, dp, c) in [
        ("host to host (no veth; the limit)", "kernel", &limit),
        ("pod to pod, same host", "kernel routes", &plain_same),
        ("pod to pod, same host", "eBPF programs", &ebpf_same),
        ("pod to pod, cross host", "kernel routes", &plain_cross),
        ("pod to pod, cross host", "eBPF programs", &ebpf_cross),
    ] {
        writeln!(
            t,
            "| {path} | {dp} | {:.2} | {:.3} | {:.3} |",
            c.gbps, c.avg_ms, c.mdev_ms
        )?;
    }
    writeln!(
        t,
        "\nTarget (issue 6): with the programs within 10% of host to host. Same host: {:.0}% of the limit ({}); cross host: {:.0}% ({}).",
        100.0 * ebpf_same.gbps / limit.gbps,
        if ebpf_same.gbps >= 0.9 * limit.gbps {
            "met"
        } else {
            "NOT met"
        },
        100.0 * ebpf_cross.gbps / limit.gbps,
        if ebpf_cross.gbps >= 0.9 * limit.gbps {
            "met"
        } else {
            "NOT met"
        },
    )?;
    writeln!(
        t,
        "Program counters (proof the fast path ran): host1 forwarded {} packets, delivered {}; host2 forwarded {}, delivered {}.\n",
        c1.forwarded_packets, c1.delivered_packets, c2.forwarded_packets, c2.delivered_packets
    )?;
    drop((dp1, dp2));
    Ok(())
}
