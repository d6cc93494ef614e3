//! The legacy attachment path (clsact + a `cls_bpf` filter, for kernels
//! before 6.6), forced by configuration on this kernel and driven by
//! felix's real loop ([`Felix`]): two pods on one host talk through the
//! programs, a felix restart leaves the filters as they are, a workload
//! that goes loses its filter, and cleanup removes the rest.

use std::time::Duration;

use ipnet::IpNet;
use manul_felix::desired::{Encap, Pool};
use manul_felix::ebpf::link::links_in;
use manul_felix::ebpf::{AttachMode, DataplaneConfig, DriverConfig, EbpfObserver, Hosts};
use manul_felix::{Felix, FelixConfig, Inputs, ReconcilerConfig};
use manul_tests::{Need, Netns, PinDir, require, try_wait_until};
use pods::{Pod, pod};

mod pods;

const WAIT: Duration = Duration::from_secs(30);

fn inputs(pods: &[&Pod]) -> Inputs {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    Inputs {
        local_blocks: vec![net("10.65.0.0/26"), net("fd00:65::/122")],
        workloads: pods.iter().map(|p| p.workload()).collect(),
        pools: [("v4", "10.65.0.0/16"), ("v6", "fd00:65::/48")]
            .into_iter()
            .map(|(name, cidr)| Pool {
                name: name.into(),
                cidr: net(cidr),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: false,
            })
            .collect(),
        ..Inputs::default()
    }
}

async fn felix(host: &Netns, pins: &PinDir, observer: EbpfObserver) -> Felix {
    Felix::start(FelixConfig {
        routes: ReconcilerConfig {
            netns: Some(host.path()),
            ..ReconcilerConfig::default()
        },
        ebpf: Some(DriverConfig {
            dataplane: DataplaneConfig {
                pin_dir: pins.path().to_path_buf(),
                attach: AttachMode::Tc,
                ..DataplaneConfig::default()
            },
            uplinks: Some(Vec::new()),
            ..DriverConfig::default()
        }),
        observer,
        ..FelixConfig::default()
    })
    .await
    .unwrap()
}

async fn feed(f: &Felix, pods: &[&Pod]) {
    let u = f.set_inputs(
        &inputs(pods),
        pods.iter().map(|p| p.endpoint()).collect(),
        Hosts::default(),
    );
    let p = tokio::time::timeout(WAIT, f.wait(u)).await.expect("synced");
    assert!(p.failed.is_empty(), "{p:?}");
}

/// `tc filter show dev <dev> ingress`, in the host.
fn filters(host: &Netns, dev: &str) -> String {
    host.exec("tc", &["filter", "show", "dev", dev, "ingress"])
        .unwrap_or_default()
}

fn tcx_count(host: &Netns, dev: &str) -> usize {
    host.run(|| {
        aya::programs::SchedClassifier::query_tcx(dev, aya::programs::TcAttachType::Ingress)
    })
    .map(|(_, p)| p.len())
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_tc_filters_forward_survive_a_restart_and_clean_up() {
    require!(
        Need::Root,
        Need::Bin("ip"),
        Need::Bin("tc"),
        Need::Bin("ping")
    );
    let host = Netns::new("legacy").unwrap();
    let a = pod(&host, "podA", "caliaaaa", "10.65.0.2", "fd00:65::2");
    let b = pod(&host, "podB", "calibbbb", "10.65.0.3", "fd00:65::3");
    let pins = PinDir::new("legacy").unwrap();
    let observer = EbpfObserver::default();
    let f = felix(&host, &pins, observer.clone()).await;
    feed(&f, &[&a, &b]).await;
    let s = observer.summary();
    assert_eq!(
        (s.attach_mode.as_deref(), s.attached_interfaces),
        (Some("tc"), 2),
        "{s:?}"
    );
    for p in [&a, &b] {
        let shown = filters(&host, &p.host_if);
        assert!(
            shown.contains("pref 28014")
                && shown.contains("workload_ingres")
                && shown.contains("direct-action"),
            "felix's filter on {}: {shown}",
            p.host_if
        );
        assert_eq!(tcx_count(&host, &p.host_if), 0, "no TCX link");
    }

    // Traffic both ways, both families, through the programs.
    for (from, to) in [(&a, &b), (&b, &a)] {
        for ip in to.ips() {
            try_wait_until(WAIT, &format!("ping {ip}"), || {
                from.ns.ping(ip, 3).map_err(|e| e.to_string())
            })
            .unwrap();
        }
    }
    let c = observer.counters();
    assert!(c["caliaaaa"].forwarded_packets >= 6, "{c:?}");
    assert!(c["calibbbb"].forwarded_packets >= 6, "{c:?}");

    // A felix restart: same filters (same program ids), nothing re-added.
    let before = (filters(&host, "caliaaaa"), filters(&host, "calibbbb"));
    drop(f);
    let f = felix(&host, &pins, EbpfObserver::default()).await;
    feed(&f, &[&a, &b]).await;
    assert_eq!(
        (filters(&host, "caliaaaa"), filters(&host, "calibbbb")),
        before
    );
    assert_eq!(f.observer().summary().attached_interfaces, 2);

    // B's workload goes: its filter goes; A's stays.
    feed(&f, &[&a]).await;
    assert!(filters(&host, "calibbbb").trim().is_empty());
    assert!(filters(&host, "caliaaaa").contains("pref 28014"));
    assert!(links_in(Some(&host.path()), &["calibbbb".to_string()]).unwrap()[0].is_some());

    // Cleanup removes A's filter with the pins.
    drop(f);
    let done = manul_felix::cleanup(
        ReconcilerConfig {
            netns: Some(host.path()),
            ..ReconcilerConfig::default()
        },
        pins.path(),
    )
    .await
    .unwrap();
    assert!(done.ebpf_removed);
    assert!(filters(&host, "caliaaaa").trim().is_empty());
    assert!(!pins.path().exists());
}
