//! End to end on one host: Calico objects in a real etcd → confd → felix
//! → kernel routes in a namespace the test creates; and the routes stay
//! right (and are never flushed) through compaction and an etcd restart.

#[path = "../../confd/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Proxy, WAIT, connect};
use ipnet::IpNet;
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::Datastore;
use manul_felix::{Reconciler, ReconcilerConfig, calico, desired_routes};
use manul_tests::{Etcd, Need, Netns, require, try_wait_until};
use serde_json::json;
use tokio::task::JoinHandle;

const R: &str = "/calico/resources/v3/projectcalico.org";
const ME: &str = "host-a";
const CALI: &str = "cali0123456789a";

fn link(ns: &Netns, name: &str) {
    let peer = format!("{}p", &name[..name.len().min(14)]);
    ns.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])
        .unwrap();
    ns.link_up(name).unwrap();
    ns.link_up(&peer).unwrap();
}

fn host() -> Netns {
    let ns = Netns::new("felix-e2e").unwrap();
    link(&ns, "eth0");
    ns.add_addr("eth0", "192.168.1.1/24").unwrap();
    link(&ns, CALI);
    ns.ip(&[
        "route",
        "add",
        "10.200.0.0/24",
        "via",
        "192.168.1.5",
        "proto",
        "bird",
    ])
    .unwrap();
    ns
}

/// Destinations of felix's routes in the namespace.
fn owned(ns: &Netns) -> BTreeSet<IpNet> {
    let text = ns.ip(&["-o", "route", "show", "proto", "80"]).unwrap();
    text.lines()
        .filter_map(|l| {
            let first = l.split_whitespace().find(|w| *w != "blackhole")?;
            first
                .parse::<IpNet>()
                .ok()
                .or_else(|| first.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

fn nets(list: &[&str]) -> BTreeSet<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn wait_routes(ns: &Netns, what: &str, want: &BTreeSet<IpNet>) {
    try_wait_until(WAIT, what, || {
        let got = owned(ns);
        if &got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .unwrap();
}

/// confd feeding felix, as the node agent will wire them.
struct Agent {
    confd: Confd,
    felix: Arc<Reconciler>,
    pump: JoinHandle<()>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

async fn agent(ds: Datastore, ns: &Netns) -> Agent {
    let mut cfg = ConfdConfig::new(ME);
    cfg.backoff_max = Duration::from_millis(500);
    let confd = Confd::start(ds, cfg);
    let felix = Arc::new(
        Reconciler::start(ReconcilerConfig {
            netns: Some(ns.path()),
            ..ReconcilerConfig::default()
        })
        .await
        .unwrap(),
    );
    // Nothing reaches felix before confd's first full list: an empty
    // snapshot must never read as "delete every route".
    let mut status = confd.status_watch();
    status.wait_for(|s| s.in_sync).await.unwrap();
    let mut sub = confd.subscribe();
    let f = felix.clone();
    let pump = tokio::spawn(async move {
        loop {
            let inputs = calico::inputs(sub.snapshot(), ME, BTreeMap::new(), false);
            f.set_desired(desired_routes(&inputs).routes);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    Agent { confd, felix, pump }
}

async fn put(ds: &Datastore, key: &str, value: String) -> i64 {
    match ds.get(key).await.unwrap() {
        Some(kv) => ds.update(key, value, kv.mod_revision).await.unwrap(),
        None => ds.create(key, value).await.unwrap(),
    }
}

async fn del(ds: &Datastore, key: &str) -> i64 {
    let kv = ds.get(key).await.unwrap().expect("exists");
    ds.delete(key, kv.mod_revision).await.unwrap()
}

fn affinity(cidr: &str) -> String {
    format!(
        "/calico/ipam/v2/host/{ME}/ipv4/block/{}",
        cidr.replace('/', "-")
    )
}

const CONFIRMED: &str = r#"{"state":"confirmed","deleted":false}"#;

async fn seed(ds: &Datastore) {
    put(
        ds,
        &format!("{R}/ippools/default"),
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
               "metadata":{"name":"default"},"spec":{"cidr":"10.65.0.0/16"}})
        .to_string(),
    )
    .await;
    put(
        ds,
        &format!("{R}/nodes/{ME}"),
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":ME},
               "spec":{"bgp":{"ipv4Address":"192.168.1.1/24"}}})
        .to_string(),
    )
    .await;
}

fn wep_key() -> String {
    format!("{R}/workloadendpoints/default/{ME}-k8s-web-eth0")
}

fn wep() -> String {
    json!({"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3",
           "metadata":{"name":format!("{ME}-k8s-web-eth0"),"namespace":"default"},
           "spec":{"node":ME,"orchestrator":"k8s","pod":"web","endpoint":"eth0",
                   "ipNetworks":["10.65.0.2/32"],"interfaceName":CALI}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_objects_become_kernel_routes_and_go_away_again() {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let ns = host();
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    seed(&ds).await;
    let node = agent(ds.clone(), &ns).await;
    put(&ds, &affinity("10.65.0.0/26"), CONFIRMED.into()).await;
    put(&ds, &wep_key(), wep()).await;
    wait_routes(
        &ns,
        "block and workload routes",
        &nets(&["10.65.0.0/26", "10.65.0.2/32"]),
    );
    put(
        &ds,
        &affinity("10.65.0.64/26"),
        r#"{"state":"pending","deleted":false}"#.into(),
    )
    .await;
    put(&ds, &affinity("10.65.0.64/26"), CONFIRMED.into()).await;
    wait_routes(
        &ns,
        "the second block once confirmed",
        &nets(&["10.65.0.0/26", "10.65.0.64/26", "10.65.0.2/32"]),
    );
    del(&ds, &wep_key()).await;
    del(&ds, &affinity("10.65.0.0/26")).await;
    wait_routes(
        &ns,
        "routes of deleted objects gone",
        &nets(&["10.65.0.64/26"]),
    );
    let bird = ns.ip(&["route", "show", "proto", "bird"]).unwrap();
    assert!(
        bird.contains("10.200.0.0/24"),
        "BIRD's route untouched: {bird}"
    );
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_an_etcd_restart_never_flush_and_end_where_a_fresh_start_would() {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let ns = host();
    let mut etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    seed(&ds).await;
    for b in ["10.65.0.0/26", "10.65.0.64/26", "10.65.0.128/26"] {
        put(&ds, &affinity(b), CONFIRMED.into()).await;
    }
    put(&ds, &wep_key(), wep()).await;
    let proxy = Proxy::start(&etcd.endpoint()).await;
    let node = agent(connect(proxy.endpoint()).await, &ns).await;
    let before = nets(&[
        "10.65.0.0/26",
        "10.65.0.64/26",
        "10.65.0.128/26",
        "10.65.0.2/32",
    ]);
    wait_routes(&ns, "initial routes", &before);
    let deletes = || node.felix.stats().deletes.load(Ordering::Relaxed);
    let upserts = || node.felix.stats().upserts.load(Ordering::Relaxed);
    let (d0, u0) = (deletes(), upserts());

    // Cut off: one block released, one claimed, history compacted.
    proxy.cut();
    let mut status = node.confd.status_watch();
    status.wait_for(|s| !s.in_sync).await.unwrap();
    del(&ds, &affinity("10.65.0.64/26")).await;
    put(&ds, &affinity("10.65.0.192/26"), CONFIRMED.into()).await;
    let now = ds.current_revision().await.unwrap();
    etcd.etcdctl(&["compact", &now.to_string()]).unwrap();
    assert_eq!(owned(&ns), before, "routes kept while etcd is out of reach");
    proxy.restore();
    let after = nets(&[
        "10.65.0.0/26",
        "10.65.0.128/26",
        "10.65.0.192/26",
        "10.65.0.2/32",
    ]);
    wait_routes(&ns, "routes after the re-list", &after);
    assert_eq!(
        (deletes() - d0, upserts() - u0),
        (1, 1),
        "only the true difference was written"
    );
    assert_eq!(node.confd.status().lists, 2);

    // etcd restarts: routes stay, then follow the next change.
    etcd.stop_member(0);
    status.wait_for(|s| !s.in_sync).await.unwrap();
    assert_eq!(owned(&ns), after);
    assert_eq!(deletes() - d0, 1, "nothing deleted while etcd was down");
    etcd.restart_member(0).unwrap();
    put(&ds, &affinity("10.65.1.0/26"), CONFIRMED.into()).await;
    let last = nets(&[
        "10.65.0.0/26",
        "10.65.0.128/26",
        "10.65.0.192/26",
        "10.65.1.0/26",
        "10.65.0.2/32",
    ]);
    wait_routes(&ns, "routes after the restart", &last);

    // What a fresh start computes from etcd is what the kernel holds.
    let fresh = Confd::start(connect(etcd.endpoint()).await, ConfdConfig::new(ME));
    fresh
        .wait_in_sync(ds.current_revision().await.unwrap())
        .await;
    let want: BTreeSet<IpNet> = desired_routes(&calico::inputs(
        &fresh.status().snapshot,
        ME,
        BTreeMap::new(),
        false,
    ))
    .routes
    .into_keys()
    .collect();
    assert_eq!(owned(&ns), want);
    drop(node);
}
