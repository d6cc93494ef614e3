//! confd against a real etcd: list then watch, typed deltas, malformed
//! values, compaction, an etcd restart and an outage.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Proxy, WAIT, connect};
use manul_confd::sync::Batch;
use manul_confd::{Cause, Confd, ConfdConfig, Item, ItemKey, Snapshot, Status, Subscription};
use manul_datastore::etcd::Datastore;
use manul_tests::{Etcd, Need, require};
use serde_json::json;

const R: &str = "/calico/resources/v3/projectcalico.org";
const ME: &str = "node-a";

fn cfg() -> ConfdConfig {
    let mut c = ConfdConfig::new(ME);
    c.backoff_max = Duration::from_millis(500);
    c
}

fn pool(name: &str, cidr: &str) -> String {
    json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
           "metadata":{"name":name},"spec":{"cidr":cidr}})
    .to_string()
}

fn affinity_key(cidr: &str) -> String {
    format!(
        "/calico/ipam/v2/host/{ME}/ipv4/block/{}",
        cidr.replace('/', "-")
    )
}

const CONFIRMED: &str = r#"{"state":"confirmed","deleted":false}"#;

fn wep(node: &str, ip: &str) -> String {
    json!({"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3",
           "metadata":{"name":format!("{node}-k8s-pod-eth0"),"namespace":"default"},
           "spec":{"node":node,"ipNetworks":[format!("{ip}/32")],"interfaceName":"cali0123456789a"}})
    .to_string()
}

async fn put(ds: &Datastore, key: &str, value: &str) -> i64 {
    match ds.get(key).await.unwrap() {
        Some(kv) => ds.update(key, value, kv.mod_revision).await.unwrap(),
        None => ds.create(key, value).await.unwrap(),
    }
}

async fn del(ds: &Datastore, key: &str) -> i64 {
    let kv = ds.get(key).await.unwrap().expect("exists");
    ds.delete(key, kv.mod_revision).await.unwrap()
}

async fn next(sub: &mut Subscription) -> Arc<Batch> {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("a batch in time")
        .expect("confd running")
}

/// `try_recv` until it has a batch (the status is published just before
/// its batch, so a subscriber may look in between).
async fn try_next(sub: &mut Subscription) -> Arc<Batch> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(b) = sub.try_recv() {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("a batch in time")
}

async fn wait_status(confd: &Confd, what: &str, f: impl Fn(&Status) -> bool) -> Arc<Status> {
    let mut rx = confd.status_watch();
    match tokio::time::timeout(WAIT, rx.wait_for(|s| f(s))).await {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("status never {what}; last: {:?}", confd.status()),
    }
}

fn keys(batch: &Batch) -> Vec<(ItemKey, bool, bool)> {
    batch
        .deltas
        .iter()
        .map(|d| (d.key.clone(), d.old.is_some(), d.new.is_some()))
        .collect()
}

/// A fresh confd's snapshot of the same etcd: what "right" means after
/// compaction, restarts and outages.
async fn fresh_snapshot(endpoint: String) -> Arc<Snapshot> {
    let ds = connect(endpoint).await;
    let rev = ds.current_revision().await.unwrap();
    let confd = Confd::start(ds, cfg());
    confd.wait_in_sync(rev).await;
    confd.status().snapshot.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_then_watches_with_typed_deltas() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    put(&ds, &format!("{R}/ippools/p1"), &pool("p1", "10.65.0.0/16")).await;
    put(&ds, &affinity_key("10.65.0.0/26"), CONFIRMED).await;
    put(
        &ds,
        &format!("{R}/workloadendpoints/default/a"),
        &wep(ME, "10.65.0.2"),
    )
    .await;
    put(
        &ds,
        &format!("{R}/workloadendpoints/default/b"),
        &wep("node-b", "10.65.1.2"),
    )
    .await;
    put(&ds, &format!("{R}/ippools/broken"), "{not json").await;
    put(
        &ds,
        "/calico/ipam/v2/host/node-b/ipv4/block/10.65.1.0-26",
        CONFIRMED,
    )
    .await;
    let rev = put(&ds, "/calico/ipam/v2/handle/k8s-pod-network.x", "{}").await;

    let confd = Confd::start(ds.clone(), cfg());
    confd.wait_in_sync(rev).await;
    let status = confd.status();
    let snap = &status.snapshot;
    assert_eq!(snap.pools().map(|(n, _)| n).collect::<Vec<_>>(), vec!["p1"]);
    assert_eq!(
        snap.confirmed_blocks()
            .map(|b| b.to_string())
            .collect::<Vec<_>>(),
        vec!["10.65.0.0/26"]
    );
    assert_eq!(snap.workloads().count(), 1, "only this node's workloads");
    assert_eq!(snap.len(), 3, "{snap:?}");
    assert_eq!((status.lists, status.resumes), (1, 0));

    let mut sub = confd.subscribe();
    // One transaction-sized change: one batch with one typed delta.
    put(&ds, &affinity_key("10.65.0.64/26"), CONFIRMED).await;
    let b = next(&mut sub).await;
    assert_eq!(b.cause, Cause::Watch);
    assert_eq!(
        keys(&b),
        vec![(
            ItemKey::Affinity("10.65.0.64/26".parse().unwrap()),
            false,
            true
        )]
    );
    assert!(matches!(b.deltas[0].new, Some(Item::Affinity(Some(_)))));
    // Another node's workload: nothing for this node.
    put(
        &ds,
        &format!("{R}/workloadendpoints/default/b"),
        &wep("node-b", "10.65.1.3"),
    )
    .await;
    del(&ds, &affinity_key("10.65.0.64/26")).await;
    let b = next(&mut sub).await;
    assert_eq!(
        keys(&b),
        vec![(
            ItemKey::Affinity("10.65.0.64/26".parse().unwrap()),
            true,
            false
        )]
    );
    // A pool turning malformed reads as gone; the sync carries on.
    put(&ds, &format!("{R}/ippools/p1"), "][").await;
    let b = next(&mut sub).await;
    assert_eq!(keys(&b), vec![(ItemKey::IpPool("p1".into()), true, false)]);
    put(&ds, &format!("{R}/ippools/p1"), &pool("p1", "10.65.0.0/16")).await;
    let b = next(&mut sub).await;
    assert_eq!(keys(&b), vec![(ItemKey::IpPool("p1".into()), false, true)]);
    assert!(confd.status().in_sync);
    assert_eq!(
        &*confd.status().snapshot,
        &*fresh_snapshot(etcd.endpoint()).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_relists_and_emits_only_the_true_difference() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    for i in 0..10 {
        put(
            &ds,
            &format!("{R}/ippools/p{i}"),
            &pool(&format!("p{i}"), &format!("10.{i}.0.0/16")),
        )
        .await;
    }
    let proxy = Proxy::start(&etcd.endpoint()).await;
    let confd = Confd::start(connect(proxy.endpoint()).await, cfg());
    let rev = ds.current_revision().await.unwrap();
    confd.wait_in_sync(rev).await;
    let mut sub = confd.subscribe();

    proxy.cut();
    wait_status(&confd, "out of sync", |s| !s.in_sync).await;
    // Meanwhile: one pool changed, one deleted, one added, one rewritten
    // identically, then everything before now compacted away.
    put(
        &ds,
        &format!("{R}/ippools/p1"),
        &pool("p1", "10.101.0.0/16"),
    )
    .await;
    del(&ds, &format!("{R}/ippools/p2")).await;
    put(
        &ds,
        &format!("{R}/ippools/p10"),
        &pool("p10", "10.10.0.0/16"),
    )
    .await;
    put(&ds, &format!("{R}/ippools/p3"), &pool("p3", "10.3.0.0/16")).await;
    let now = ds.current_revision().await.unwrap();
    etcd.etcdctl(&["compact", &now.to_string()]).unwrap();
    assert!(
        confd.status().snapshot.pools().count() == 10,
        "last state kept"
    );
    proxy.restore();

    let b = next(&mut sub).await;
    assert_eq!(b.cause, Cause::Relist);
    let got: BTreeSet<_> = keys(&b).into_iter().collect();
    let want: BTreeSet<_> = [
        (ItemKey::IpPool("p1".into()), true, true),
        (ItemKey::IpPool("p2".into()), true, false),
        (ItemKey::IpPool("p10".into()), false, true),
    ]
    .into();
    assert_eq!(got, want, "no spurious remove/add");
    let status = wait_status(&confd, "in sync", |s| s.in_sync).await;
    assert_eq!(status.lists, 2);
    assert_eq!(&*status.snapshot, &*fresh_snapshot(etcd.endpoint()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_and_outage_resume_by_revision_keeping_the_last_state() {
    require!(Need::Bin("etcd"));
    let mut etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    put(&ds, &format!("{R}/ippools/p1"), &pool("p1", "10.65.0.0/16")).await;
    let rev = put(&ds, &affinity_key("10.65.0.0/26"), CONFIRMED).await;
    let confd = Confd::start(ds.clone(), cfg());
    confd.wait_in_sync(rev).await;
    let before = confd.status().snapshot.clone();
    let mut sub = confd.subscribe();

    etcd.stop_member(0);
    let down = wait_status(&confd, "out of sync", |s| !s.in_sync).await;
    assert!(down.last_error.is_some());
    // A 20 s outage: the last state stays published, out of sync.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = confd.status();
    assert!(!during.in_sync);
    assert_eq!(&*during.snapshot, &*before);
    // Every failed attempt is counted by operation (the watch, as it resumes).
    assert!(
        during.errors.get("watch").is_some_and(|n| *n >= 2),
        "{:?}",
        during.errors
    );
    etcd.restart_member(0).unwrap();

    let rev = put(&ds, &affinity_key("10.65.0.64/26"), CONFIRMED).await;
    let b = next(&mut sub).await;
    assert_eq!(b.cause, Cause::Watch, "resumed, not re-listed");
    assert_eq!(
        keys(&b),
        vec![(
            ItemKey::Affinity("10.65.0.64/26".parse().unwrap()),
            false,
            true
        )]
    );
    confd.wait_in_sync(rev).await;
    let status = confd.status();
    assert_eq!(status.lists, 1);
    assert!(status.resumes >= 1);
    assert_eq!(&*status.snapshot, &*fresh_snapshot(etcd.endpoint()).await);
}

/// confd in sync over `etcd` with a broadcast channel of 2 batches (so
/// that subscribers lag easily), and its datastore.
async fn small_channel(etcd: &Etcd) -> (Datastore, Confd) {
    let ds = connect(etcd.endpoint()).await;
    let mut c = cfg();
    c.channel_capacity = 2;
    let confd = Confd::start(ds.clone(), c);
    confd.wait_in_sync(0).await;
    (ds, confd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_gets_the_difference_in_one_batch() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let (ds, confd) = small_channel(&etcd).await;
    let mut sub = confd.subscribe();
    let mut rev = 0;
    for i in 0..20 {
        rev = put(
            &ds,
            &format!("{R}/ippools/p{i}"),
            &pool(&format!("p{i}"), &format!("10.{i}.0.0/16")),
        )
        .await;
    }
    confd.wait_in_sync(rev).await;
    let mut seen = BTreeSet::new();
    let mut lagged = false;
    while seen.len() < 20 {
        let b = next(&mut sub).await;
        lagged |= b.cause == Cause::Lagged;
        for (k, _, new) in keys(&b) {
            assert!(new);
            seen.insert(k);
        }
    }
    assert!(lagged, "capacity 2 with 20 batches must lag");
    assert_eq!(sub.snapshot().pools().count(), 20);
}

/// A subscriber that has not called `recv` since subscribing holds the
/// snapshot of then; `try_recv` takes what was published since, without
/// waiting, lagged or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_recv_takes_what_was_published_since_without_waiting() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let (ds, confd) = small_channel(&etcd).await;
    let mut sub = confd.subscribe();
    assert!(sub.try_recv().is_none(), "nothing published yet");
    let rev = put(
        &ds,
        &format!("{R}/workloadendpoints/default/a"),
        &wep(ME, "10.65.0.2"),
    )
    .await;
    confd.wait_in_sync(rev).await;
    assert_eq!(sub.snapshot().workloads().count(), 0, "as of subscribing");
    let b = try_next(&mut sub).await;
    assert_eq!(b.cause, Cause::Watch);
    assert_eq!(sub.snapshot().workloads().count(), 1);
    assert!(sub.try_recv().is_none());

    // More batches than the channel holds: one lagged batch catches up.
    let mut rev = 0;
    for i in 0..5 {
        rev = put(
            &ds,
            &format!("{R}/ippools/p{i}"),
            &pool(&format!("p{i}"), &format!("10.{i}.0.0/16")),
        )
        .await;
    }
    confd.wait_in_sync(rev).await;
    let mut causes = vec![try_next(&mut sub).await.cause];
    while sub.snapshot().pools().count() < 5 {
        causes.push(try_next(&mut sub).await.cause);
    }
    assert_eq!(causes.first(), Some(&Cause::Lagged), "{causes:?}");
    assert_eq!(sub.snapshot().pools().count(), 5);
    assert_eq!(sub.snapshot().workloads().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_etcd_each_derive_the_mesh_with_one_passive_side_per_pair() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    let nodes = [
        ("n1", "10.0.0.1"),
        ("n2", "10.0.0.2"),
        ("n3", "10.0.0.9"),
        ("n4", "10.0.0.10"),
        ("n5", "10.0.0.100"),
    ];
    let mut rev = 0;
    for (name, ip) in nodes {
        rev = put(
            &ds,
            &format!("{R}/nodes/{name}"),
            &json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":name},
                    "spec":{"bgp":{"ipv4Address":format!("{ip}/24")}}})
            .to_string(),
        )
        .await;
    }
    let mut views = Vec::new();
    for (name, _) in nodes {
        let confd = Confd::start(ds.clone(), ConfdConfig::new(name));
        confd.wait_in_sync(rev).await;
        views.push(manul_confd::bgp::derive(&confd.status().snapshot, name));
    }
    for (i, (a, ip_a)) in nodes.iter().enumerate() {
        let peers: BTreeSet<String> = views[i].peers.keys().map(|p| p.to_string()).collect();
        let want: BTreeSet<String> = nodes
            .iter()
            .filter(|(n, _)| n != a)
            .map(|(_, ip)| ip.to_string())
            .collect();
        assert_eq!(peers, want, "peers of {a}");
        for (j, (b, ip_b)) in nodes.iter().enumerate().skip(i + 1) {
            let a_passive = views[i].peers[&ip_b.parse().unwrap()].passive;
            let b_passive = views[j].peers[&ip_a.parse().unwrap()].passive;
            assert!(
                a_passive != b_passive,
                "{a}<->{b}: exactly one side passive"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bgp_view_task_reports_one_peer_for_one_bgppeer() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    let mut rev = 0;
    for (name, ip) in [("node-a", "10.0.0.1"), ("node-b", "10.0.0.2")] {
        rev = put(
            &ds,
            &format!("{R}/nodes/{name}"),
            &json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":name},
                    "spec":{"bgp":{"ipv4Address":format!("{ip}/24")}}})
            .to_string(),
        )
        .await;
    }
    let confd = Confd::start(ds.clone(), cfg());
    confd.wait_in_sync(rev).await;
    let mut task = manul_confd::bgp::BgpViewTask::spawn(confd.subscribe(), ME);
    let first = tokio::time::timeout(WAIT, task.changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.peers.len(), 1, "the mesh peer");
    put(
        &ds,
        &format!("{R}/bgppeers/tor"),
        &json!({"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor"},
                "spec":{"peerIP":"10.0.0.254","asNumber":65000}})
        .to_string(),
    )
    .await;
    let ch = tokio::time::timeout(WAIT, task.changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ch.peers.keys().map(|a| a.to_string()).collect::<Vec<_>>(),
        vec!["10.0.0.254"]
    );
    assert!(!ch.globals && ch.prefixes.is_empty());
    assert_eq!(task.view.borrow().peers.len(), 2);
}
