//! felix as the node agent runs it ([`Felix`], fed from confd's snapshot
//! of a real etcd) drives the eBPF dataplane: maps and attachments follow
//! workloads and their interfaces, a felix restart detaches nothing, the
//! counters reach the metrics, and cleanup removes everything felix owns.
//! A host without bpffs under the pin directory runs routes only.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aya::programs::{SchedClassifier, TcAttachType};
use ipnet::IpNet;
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_felix::ebpf::{
    Dataplane, DataplaneConfig, DriverConfig, EbpfObserver, flags, kind, link::links_in,
};
use manul_felix::{Felix, FelixConfig, ReconcilerConfig};
use manul_status::EbpfMode;
use manul_tests::{Etcd, Need, Netns, PinDir, require, try_wait_until};
use pods::pod;
use serde_json::json;
use tokio::task::JoinHandle;

mod pods;

const R: &str = "/calico/resources/v3/projectcalico.org";
const ME: &str = "host-a";
const CALI: &str = "cali0123456789a";
const POD_MAC: &str = "02:00:00:00:00:0a";
const WAIT: Duration = Duration::from_secs(30);

fn host() -> Netns {
    let ns = Netns::new("felix-ebpf").unwrap();
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])
    .unwrap();
    ns.link_up("eth0").unwrap();
    ns.link_up("eth0p").unwrap();
    ns.add_addr("eth0", "192.168.1.1/24").unwrap();
    ns
}

fn seed(etcd: &Etcd) {
    etcd.put(
        &format!("{R}/ippools/default"),
        &json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
                "metadata":{"name":"default"},"spec":{"cidr":"10.65.0.0/16","natOutgoing":true}})
        .to_string(),
    )
    .unwrap();
    etcd.put(
        &format!("{R}/nodes/{ME}"),
        &json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":ME},
                "spec":{"bgp":{"ipv4Address":"192.168.1.1/24"}}})
        .to_string(),
    )
    .unwrap();
    etcd.put(
        &format!("/calico/ipam/v2/host/{ME}/ipv4/block/10.65.0.0-26"),
        r#"{"state":"confirmed","deleted":false}"#,
    )
    .unwrap();
}

fn wep_key() -> String {
    format!("{R}/workloadendpoints/default/{ME}-k8s-web-eth0")
}

fn put_wep(etcd: &Etcd) {
    etcd.put(
        &wep_key(),
        &json!({"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3",
                "metadata":{"name":format!("{ME}-k8s-web-eth0"),"namespace":"default"},
                "spec":{"node":ME,"orchestrator":"k8s","pod":"web","endpoint":"eth0",
                        "ipNetworks":["10.65.0.2/32","fd00:65::2/128"],
                        "interfaceName":CALI,"mac":POD_MAC}})
        .to_string(),
    )
    .unwrap();
}

/// confd and felix wired as manul-node wires them (no BGP: no remote
/// prefixes).
struct Agent {
    _confd: Confd,
    felix: Arc<Felix>,
    pump: JoinHandle<()>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

async fn agent(etcd: &Etcd, ns: &Netns, pins: &Path, observer: EbpfObserver) -> Agent {
    let mut c = EtcdConfig::new(vec![etcd.endpoint()]);
    c.dial_timeout = Duration::from_secs(1);
    let ds = Datastore::connect(&c).await.unwrap();
    let confd = Confd::start(ds, ConfdConfig::new(ME));
    let felix = Arc::new(
        Felix::start(FelixConfig {
            routes: ReconcilerConfig {
                netns: Some(ns.path()),
                ..ReconcilerConfig::default()
            },
            ebpf: Some(DriverConfig {
                dataplane: DataplaneConfig {
                    pin_dir: pins.to_path_buf(),
                    ..DataplaneConfig::default()
                },
                ..DriverConfig::default()
            }),
            observer,
            ..FelixConfig::default()
        })
        .await
        .unwrap(),
    );
    confd.status_watch().wait_for(|s| s.in_sync).await.unwrap();
    let mut sub = confd.subscribe();
    let f = Arc::clone(&felix);
    let pump = tokio::spawn(async move {
        loop {
            f.update(sub.snapshot(), ME, BTreeMap::new(), BTreeMap::new(), false);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    Agent {
        _confd: confd,
        felix,
        pump,
    }
}

/// The interfaces with a pinned link.
fn pinned_links(pins: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(pins.join("links"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The TCX revision and program names at ingress of `dev`, from the kernel.
fn tcx(ns: &Netns, dev: &str) -> (u64, Vec<String>) {
    match ns.run(|| SchedClassifier::query_tcx(dev, TcAttachType::Ingress)) {
        Ok((rev, progs)) => (
            rev,
            progs
                .iter()
                .map(|p| p.name_as_str().unwrap_or("?").to_string())
                .collect(),
        ),
        Err(_) => (0, Vec::new()),
    }
}

fn ifindex(ns: &Netns, dev: &str) -> Option<u32> {
    links_in(Some(&ns.path()), &[dev.to_string()]).unwrap()[0].map(|l| l.ifindex)
}

/// What the maps hold: (route kind and ifindex of 10.65.0.2/32, endpoint
/// keys, whether the block is a blackhole entry in a NAT-outgoing pool and
/// the node's address a local host entry).
fn maps(ns: &Netns, pins: &Path) -> (Option<(u8, u32)>, Vec<u32>, bool) {
    let dp = Dataplane::open(DataplaneConfig {
        pin_dir: pins.to_path_buf(),
        netns: Some(ns.path()),
        ..DataplaneConfig::default()
    })
    .unwrap();
    let (routes, eps) = dp.dump().unwrap();
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    (
        routes
            .get(&net("10.65.0.2/32"))
            .map(|r| (r.kind, r.ifindex)),
        eps.keys().copied().collect(),
        routes.get(&net("10.65.0.0/26")).is_some_and(|r| {
            r.kind == kind::BLACKHOLE && r.flags == flags::IN_POOL | flags::NAT_OUTGOING
        }) && routes
            .get(&net("192.168.1.1/32"))
            .is_some_and(|r| r.kind == kind::LOCAL_HOST),
    )
}

/// Give the pod's eth0 the WorkloadEndpoint's MAC (which flushes its
/// neighbours: the gateway's entry is made again).
fn set_pod_mac(host: &Netns, pod: &Netns) {
    pod.ip(&["link", "set", "eth0", "address", POD_MAC])
        .unwrap();
    let mac = links_in(Some(&host.path()), &[CALI.to_string()]).unwrap()[0]
        .unwrap()
        .mac
        .map(|b| format!("{b:02x}"))
        .join(":");
    pod.ip(&[
        "neigh",
        "replace",
        "169.254.1.1",
        "lladdr",
        &mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])
    .unwrap();
}

fn wait(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    try_wait_until(WAIT, what, &mut f).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn felix_attaches_follows_workloads_survives_restart_and_cleans_up() {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let ns = host();
    let etcd = Etcd::start().unwrap();
    seed(&etcd);
    let pins = PinDir::new("felix").unwrap();
    let observer = EbpfObserver::default();
    let node = agent(&etcd, &ns, pins.path(), observer.clone()).await;
    assert!(node.felix.ebpf_running());

    // The workload is in etcd before its interface exists: nothing to
    // attach, no endpoint; the uplink (eth0 holds 192.168.1.1/24) has its
    // program and the block its blackhole entry.
    put_wep(&etcd);
    wait("the uplink attached, the block in the map", || {
        let got = (pinned_links(pins.path()), maps(&ns, pins.path()));
        match got {
            (l, (None, e, true)) if l == ["eth0"] && e.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(tcx(&ns, "eth0").1, ["uplink_ingress"]);

    // The interface appears (CNI made the pod): attached at once, its
    // endpoint and route entries written.
    let p = pod(&ns, "pod", CALI, "10.65.0.2", "fd00:65::2");
    set_pod_mac(&ns, &p.ns);
    let cali = ifindex(&ns, CALI).unwrap();
    wait("the workload attached with its entries", || {
        match (pinned_links(pins.path()), maps(&ns, pins.path())) {
            (l, (Some((k, i)), e, _))
                if l == [CALI, "eth0"] && k == kind::LOCAL_WORKLOAD && i == cali && e == [cali] =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        tcx(&ns, CALI).1,
        ["workload_ingres"],
        "(kernel names: 15 chars)"
    );

    // Traffic from the pod to the host goes through the program (passed to
    // the stack) and shows in the metrics.
    wait("the pod reaches the host", || {
        p.ns.ping("192.168.1.1".parse().unwrap(), 3).map_err(|e| {
            format!(
                "{e}\nhost routes: {}\nhost neigh: {}\npod: {}\n{:?}",
                ns.ip(&["route"]).unwrap_or_default(),
                ns.ip(&["neigh"]).unwrap_or_default(),
                p.ns.ip(&["-d", "link"]).unwrap_or_default(),
                observer.counters()
            )
        })
    });
    let c = observer.counters();
    assert!(c[CALI].passed_packets >= 3, "{c:?}");
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(observer.clone()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let passed = format!("manul_ebpf_passed_packets_total{{interface=\"{CALI}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&passed))
        .unwrap_or_else(|| panic!("{passed} in\n{text}"));
    assert!(line[passed.len()..].parse::<u64>().unwrap() >= 3, "{line}");
    for want in [
        "manul_ebpf_mode{mode=\"ebpf\"} 1",
        "manul_ebpf_attached_interfaces 2",
        "manul_ebpf_endpoint_entries 1",
    ] {
        assert!(text.lines().any(|l| l == want), "{want} in\n{text}");
    }
    let s = observer.summary();
    assert_eq!(
        (s.mode, s.attach_mode.as_deref()),
        (EbpfMode::Ebpf, Some("tcx"))
    );

    // A felix restart: the new felix reuses the pins; nothing is detached
    // or attached again (the TCX revision of the interface stands still).
    let before = (tcx(&ns, CALI), tcx(&ns, "eth0"));
    drop(node);
    let node = agent(&etcd, &ns, pins.path(), EbpfObserver::default()).await;
    wait("the restarted felix synced", || {
        let s = node.felix.observer().summary();
        if s.attached_interfaces == 2 && s.endpoint_entries == 1 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    assert_eq!(
        (tcx(&ns, CALI), tcx(&ns, "eth0")),
        before,
        "a restart neither detaches nor re-attaches"
    );

    // The interface goes (the pod is deleted, its WorkloadEndpoint not yet):
    // detached, entries gone.
    drop(p);
    wait("the workload detached with its entries", || {
        match (pinned_links(pins.path()), maps(&ns, pins.path())) {
            (l, (None, e, true)) if l == ["eth0"] && e.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // It comes back, then its WorkloadEndpoint goes: attached, detached.
    let p = pod(&ns, "pod2", CALI, "10.65.0.2", "fd00:65::2");
    set_pod_mac(&ns, &p.ns);
    wait("attached again", || {
        let l = pinned_links(pins.path());
        (l == [CALI, "eth0"]).then_some(()).ok_or(format!("{l:?}"))
    });
    etcd.etcdctl(&["del", &wep_key()]).unwrap();
    wait("detached when the WorkloadEndpoint goes", || {
        match (pinned_links(pins.path()), tcx(&ns, CALI).1) {
            (l, t) if l == ["eth0"] && t.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // Cleanup (manul-node --cleanup): routes, programs, maps, links gone.
    put_wep(&etcd);
    wait("attached before the cleanup", || {
        let l = pinned_links(pins.path());
        (l == [CALI, "eth0"]).then_some(()).ok_or(format!("{l:?}"))
    });
    drop(node);
    let done = manul_felix::cleanup(
        ReconcilerConfig {
            netns: Some(ns.path()),
            ..ReconcilerConfig::default()
        },
        pins.path(),
    )
    .await
    .unwrap();
    assert!(done.ebpf_removed && done.routes_failed == 0, "{done:?}");
    assert!(!pins.path().exists());
    assert!(tcx(&ns, CALI).1.is_empty() && tcx(&ns, "eth0").1.is_empty());
    let routes = ns.ip(&["route", "show", "proto", "80"]).unwrap();
    assert!(routes.trim().is_empty(), "felix's routes remain: {routes}");
    drop(p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_bpffs_under_the_pin_dir_runs_routes_only() {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let ns = host();
    let etcd = Etcd::start().unwrap();
    seed(&etcd);
    let dir = manul_tests::scratch::run().tempdir("not-bpffs").unwrap();
    let observer = EbpfObserver::default();
    let node = agent(&etcd, &ns, &dir.path().join("pins"), observer.clone()).await;
    assert!(!node.felix.ebpf_running());
    let s = observer.summary();
    assert_eq!(s.mode, EbpfMode::RoutesOnly);
    assert!(
        s.reason.as_deref().unwrap_or("").contains("bpf filesystem"),
        "{s:?}"
    );
    wait("the block's route written all the same", || {
        let r = ns.ip(&["route", "show", "proto", "80"]).unwrap();
        r.contains("10.65.0.0/26").then_some(()).ok_or(r)
    });
}
