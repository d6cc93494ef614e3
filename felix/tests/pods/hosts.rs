//! Two hosts for the eBPF dataplane tests: pods A and B on host1, C on
//! host2 (Calico-style, [`super::pod`]), each host's kernel routed to the
//! other's blocks by felix's reconciler, and each host's felix inputs; a
//! dataplane fed and attached to a host's pods and uplink.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use manul_felix::desired::{Encap, Pool};
use manul_felix::ebpf::{Counters, Dataplane, DataplaneConfig, Endpoint, Hosts, link::links_in};
use manul_felix::{Inputs, Reconciler, ReconcilerConfig, desired_routes};
use manul_tests::{Host, PinDir};

use super::{Pod, pod};

/// Guard on waits: far above what any step takes.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn pools() -> Vec<Pool> {
    [("v4", "10.65.0.0/16"), ("v6", "fd00:65::/48")]
        .into_iter()
        .map(|(name, cidr)| Pool {
            name: name.into(),
            cidr: net(cidr),
            ipip: Encap::Never,
            vxlan: Encap::Never,
            nat_outgoing: false,
        })
        .collect()
}

pub fn inputs(pods: &[&Pod], blocks: [&str; 2], remote: [(&str, IpAddr); 2]) -> Inputs {
    Inputs {
        local_blocks: blocks.iter().map(|b| net(b)).collect(),
        workloads: pods.iter().map(|p| p.workload()).collect(),
        remote: remote
            .iter()
            .map(|(prefix, hop)| (net(prefix), vec![*hop]))
            .collect::<BTreeMap<_, _>>(),
        pools: pools(),
        local_subnets: vec![net("10.88.0.0/24"), net("fd00:88::/64")],
        ..Inputs::default()
    }
}

/// The kernel's routes from `inputs`, by felix's reconciler; the
/// reconciler is returned so it keeps running.
pub async fn program_routes(host: &Host, inputs: &Inputs) -> Reconciler {
    let r = Reconciler::start(ReconcilerConfig {
        netns: Some(host.ns.path()),
        retry_interval: Duration::from_millis(200),
        ..ReconcilerConfig::default()
    })
    .await
    .unwrap();
    let generation = r.set_desired(desired_routes(inputs).routes);
    let p = tokio::time::timeout(WAIT, r.wait_generation(generation))
        .await
        .expect("routes written in time");
    assert!(p.failed.is_empty(), "failed writes: {:?}", p.failed);
    r
}

/// The dataplane of `host`, fed and attached to its pods.
pub fn dataplane(host: &Host, pins: &PinDir, inputs: &Inputs, pods: &[&Pod]) -> Dataplane {
    let mut dp = Dataplane::open(DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        netns: Some(host.ns.path()),
        ..DataplaneConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let endpoints: Vec<Endpoint> = pods.iter().map(|p| p.endpoint()).collect();
    let desired = desired_routes(inputs).routes;
    dp.sync_desired(
        &desired,
        &Hosts::default(),
        &inputs.pools,
        &inputs.local_subnets,
        &endpoints,
    )
    .unwrap();
    for p in pods {
        dp.attach(&p.host_if).unwrap();
    }
    dp.attach_uplink(&host.iface).unwrap();
    dp
}

/// Pods A and B on `h1`, C on `h2`, each host's kernel routed to the
/// other's blocks (the reconcilers in `_routes` keep them), and each
/// host's felix inputs.
pub struct TwoHosts {
    pub a: Pod,
    pub b: Pod,
    pub c: Pod,
    pub in1: Inputs,
    pub in2: Inputs,
    /// The reconcilers keeping each host's routes.
    pub routes: (Reconciler, Reconciler),
}

pub async fn two_hosts(h1: &Host, h2: &Host) -> TwoHosts {
    let a = pod(&h1.ns, "podA", "caliaaaa", "10.65.0.2", "fd00:65::2");
    let b = pod(&h1.ns, "podB", "calibbbb", "10.65.0.3", "fd00:65::3");
    let c = pod(&h2.ns, "podC", "calicccc", "10.65.1.2", "fd00:65:1::2");
    let in1 = inputs(
        &[&a, &b],
        ["10.65.0.0/26", "fd00:65::/122"],
        [
            ("10.65.1.0/26", h2.ipv4_ip()),
            ("fd00:65:1::/122", h2.ipv6_ip()),
        ],
    );
    let in2 = inputs(
        &[&c],
        ["10.65.1.0/26", "fd00:65:1::/122"],
        [
            ("10.65.0.0/26", h1.ipv4_ip()),
            ("fd00:65::/122", h1.ipv6_ip()),
        ],
    );
    let r1 = program_routes(h1, &in1).await;
    let r2 = program_routes(h2, &in2).await;
    TwoHosts {
        a,
        b,
        c,
        in1,
        in2,
        routes: (r1, r2),
    }
}

/// The interface index of `name` in `host`.
pub fn ifindex(host: &Host, name: &str) -> u32 {
    links_in(Some(&host.ns.path()), &[name.to_string()]).unwrap()[0]
        .unwrap()
        .ifindex
}

/// The programs' counters of `pod`'s endpoint on `host`.
pub fn counters(dp: &Dataplane, host: &Host, pod: &Pod) -> Counters {
    dp.counters(ifindex(host, &pod.host_if)).unwrap()
}
