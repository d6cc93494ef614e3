//! The etcd client wrapper against a real etcd 3.4 (one per test).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use manul_datastore::etcd::{Datastore, Error, EtcdConfig, Watch, WatchEvent};
use manul_tests::{Etcd, Need, require};

/// How long a test waits for one watch event.
const EVENT_WAIT: Duration = Duration::from_secs(5);

fn config(endpoints: Vec<String>) -> EtcdConfig {
    let mut c = EtcdConfig::new(endpoints);
    c.dial_timeout = Duration::from_secs(1);
    c.request_timeout = Duration::from_secs(3);
    c
}

async fn connect(etcd: &Etcd) -> Datastore {
    Datastore::connect(&config(vec![etcd.endpoint()]))
        .await
        .expect("connect")
}

async fn next(watch: &mut Watch) -> WatchEvent {
    match tokio::time::timeout(EVENT_WAIT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_WAIT:?}"),
    }
}

fn put_of(event: &WatchEvent) -> (&str, &[u8]) {
    match event {
        WatchEvent::Put(kv) => (kv.key.as_str(), kv.value.as_slice()),
        other => panic!("expected a put, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_if_absent_then_conflict() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/handle/k8s-pod-network.abc";
    let rev = ds.create(key, r#"{"block":{}}"#).await.unwrap();
    let kv = ds.get(key).await.unwrap().expect("created");
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(kv.create_revision, rev);
    assert_eq!(kv.version, 1);
    assert_eq!(kv.value, br#"{"block":{}}"#);

    match ds.create(key, "other").await {
        Err(Error::Conflict { key: k }) => assert_eq!(k, key),
        other => panic!("second create: {other:?}"),
    }
    assert_eq!(etcd.get(key).unwrap().as_deref(), Some(r#"{"block":{}}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_guarded_by_mod_revision() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/config";
    let r1 = ds
        .create_json(key, &serde_json::json!({"strict_affinity": false}))
        .await
        .unwrap();
    let r2 = ds
        .update_json(key, &serde_json::json!({"strict_affinity": true}), r1)
        .await
        .unwrap();
    assert!(r2 > r1);
    let v = ds
        .get_json::<serde_json::Value>(key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.value["strict_affinity"], true);
    assert_eq!(v.mod_revision, r2);

    // A writer holding the old revision loses.
    match ds.update(key, "{}", r1).await {
        Err(Error::Conflict { key: k }) => assert_eq!(k, key),
        other => panic!("stale update: {other:?}"),
    }
    // Updating an absent key is NotFound, whatever the revision (0 too).
    for rev in [0, r2] {
        match ds.update("/calico/ipam/v2/handle/none", "{}", rev).await {
            Err(Error::NotFound { key }) => assert_eq!(key, "/calico/ipam/v2/handle/none"),
            other => panic!("update of absent key at {rev}: {other:?}"),
        }
    }
    assert_eq!(ds.get(key).await.unwrap().unwrap().mod_revision, r2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_guarded_by_mod_revision() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/host/node-1/ipv4/block/10.65.0.0-26";
    let r1 = ds.create(key, r#"{"state":"pending"}"#).await.unwrap();
    let r2 = ds
        .update(key, r#"{"state":"confirmed"}"#, r1)
        .await
        .unwrap();
    match ds.delete(key, r1).await {
        Err(Error::Conflict { key: k }) => assert_eq!(k, key),
        other => panic!("stale delete: {other:?}"),
    }
    assert!(ds.get(key).await.unwrap().is_some());
    let r3 = ds.delete(key, r2).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(ds.get(key).await.unwrap(), None);
    match ds.delete(key, r2).await {
        Err(Error::NotFound { key: k }) => assert_eq!(k, key),
        other => panic!("delete of deleted key: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_of_missing_key_is_none() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    assert_eq!(
        ds.get("/calico/resources/v3/projectcalico.org/ippools/none")
            .await
            .unwrap(),
        None
    );
    assert!(
        ds.get_json::<serde_json::Value>("/nothing")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_a_large_prefix_at_one_revision() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let prefix = "/calico/ipam/v2/handle/";
    let key = |i: usize| format!("{prefix}h-{i:05}");
    let results: Vec<_> = futures_util::stream::iter(0..2500)
        .map(|i| {
            let ds = ds.clone();
            async move { ds.create(&key(i), format!(r#"{{"n":{i}}}"#)).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    // Neighbours that must stay out: a sibling whose name extends the prefix
    // without its slash, and the keys on either side.
    ds.create("/calico/ipam/v2/handle", "{}").await.unwrap();
    ds.create("/calico/ipam/v2/handlez/x", "{}").await.unwrap();
    ds.create("/calico/ipam/v2/config", "{}").await.unwrap();

    let (kvs, rev) = ds.list(prefix, None).await.unwrap();
    assert_eq!(kvs.len(), 2500);
    let keys: Vec<String> = kvs.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = (0..2500).map(key).collect();
    assert_eq!(keys, expected, "every key once, in key order");
    assert!(kvs.iter().all(|kv| kv.mod_revision <= rev));

    // Small pages give the same answer.
    let (small, small_rev) = ds
        .clone()
        .with_page_size(7)
        .list(&key(0)[..prefix.len() + 4], None)
        .await
        .unwrap();
    assert_eq!(small.len(), 1000, "h-00xxx");
    assert!(small_rev >= rev);

    // Later writes are invisible at the old revision, visible now.
    for i in 2500..2510 {
        ds.create(&key(i), "{}").await.unwrap();
    }
    let first = ds.get(&key(0)).await.unwrap().unwrap();
    ds.delete(&key(0), first.mod_revision).await.unwrap();
    let (old, old_rev) = ds
        .clone()
        .with_page_size(300)
        .list(prefix, Some(rev))
        .await
        .unwrap();
    assert_eq!(old_rev, rev);
    assert_eq!(old, kvs, "the old set, byte for byte");
    let (now, now_rev) = ds.list(prefix, None).await.unwrap();
    assert!(now_rev > rev);
    assert_eq!(now.len(), 2509);
    assert_eq!(now[0].key, key(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_revision_sees_puts_and_deletes_in_order() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let p = "/calico/resources/v3/projectcalico.org/bgppeers/";
    let a = format!("{p}a");
    let b = format!("{p}b");
    let r1 = ds.create(&a, "1").await.unwrap();
    let r2 = ds.update(&a, "2", r1).await.unwrap();
    ds.create("/calico/resources/v3/projectcalico.org/nodes/n1", "{}")
        .await
        .unwrap();
    let r3 = ds.delete(&a, r2).await.unwrap();
    let r4 = ds.create(&b, "3").await.unwrap();

    let mut watch = ds.watch(p, r1).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), (a.as_str(), &b"1"[..]));
    assert_eq!(put_of(&next(&mut watch).await), (a.as_str(), &b"2"[..]));
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Delete {
            key: a.clone(),
            mod_revision: r3
        }
    );
    match next(&mut watch).await {
        WatchEvent::Put(kv) => {
            assert_eq!(
                (kv.key.as_str(), kv.mod_revision, kv.version),
                (b.as_str(), r4, 1)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(watch.revision(), r4);

    // Live changes after the history.
    let r5 = ds.update(&b, "4", r4).await.unwrap();
    let event = next(&mut watch).await;
    assert_eq!(put_of(&event), (b.as_str(), &b"4"[..]));
    assert_eq!(watch.revision(), r5);

    // Resuming from the last revision + 1 misses nothing and repeats nothing.
    drop(watch);
    ds.delete(&b, r5).await.unwrap();
    let mut resumed = ds.watch(p, r5 + 1).await.unwrap();
    assert!(matches!(next(&mut resumed).await, WatchEvent::Delete { key, .. } if key == b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_list_from_a_compacted_revision_report_compacted() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26";
    let r1 = ds.create(key, "1").await.unwrap();
    let mut rev = r1;
    for v in 2..6 {
        rev = ds.update(key, v.to_string(), rev).await.unwrap();
    }
    etcd.etcdctl(&["compact", &rev.to_string()]).unwrap();

    let mut watch = ds.watch("/calico/ipam/v2/", r1).await.unwrap();
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Compacted {
            compact_revision: rev
        }
    );
    assert!(
        tokio::time::timeout(EVENT_WAIT, watch.next())
            .await
            .unwrap()
            .is_none()
    );

    match ds.list("/calico/ipam/v2/", Some(r1)).await {
        Err(Error::Compacted { revision }) => assert_eq!(revision, r1),
        other => panic!("list at compacted revision: {other:?}"),
    }
    // From the compaction revision on, all is still there.
    let (kvs, _) = ds.list("/calico/ipam/v2/", Some(rev)).await.unwrap();
    assert_eq!(kvs[0].value, b"5");
    let mut watch = ds.watch("/calico/ipam/v2/", rev).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), (key, &b"5"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_names_the_key() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/assignment/ipv4/block/10.65.0.64-26";
    etcd.put(key, "{\"cidr\": 10.65").unwrap();
    match ds.get_json::<serde_json::Value>(key).await {
        Err(Error::Malformed { key: k, error }) => {
            assert_eq!(k, key);
            assert!(!error.is_empty());
            let shown = Error::Malformed { key: k, error }.to_string();
            assert!(shown.contains(key), "{shown}");
        }
        other => panic!("{other:?}"),
    }
    // The raw read still works, so a caller can log and skip.
    assert!(ds.get(key).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_is_unavailable_within_the_deadline() {
    // Nothing listens on a port we just had and closed.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut c = config(vec![endpoint.clone()]);
    c.request_timeout = Duration::from_secs(1);
    let ds = Datastore::connect(&c).await.expect("connecting is lazy");
    let slack = Duration::from_millis(1500);

    let t = Instant::now();
    let err = ds.get("/calico/ipam/v2/config").await.unwrap_err();
    assert!(
        t.elapsed() < c.request_timeout + slack,
        "took {:?}",
        t.elapsed()
    );
    match &err {
        Error::Unavailable { endpoints, .. } => assert_eq!(endpoints, &vec![endpoint.clone()]),
        other => panic!("get: {other:?}"),
    }
    assert!(err.to_string().contains(&endpoint), "{err}");

    let t = Instant::now();
    assert!(matches!(
        ds.create("/k", "v").await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        ds.list("/", None).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        ds.watch("/", 0).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(
        t.elapsed() < 3 * c.request_timeout + slack,
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_cluster_keeps_serving_when_one_member_stops() {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let mut etcd = Etcd::start_cluster(3).unwrap();
    let ds = Datastore::connect(&config(etcd.endpoints())).await.unwrap();
    let p = "/calico/resources/v3/projectcalico.org/nodes/";
    let r0 = ds.create(&format!("{p}before"), "{}").await.unwrap();
    let mut watch = ds.watch(p, r0 + 1).await.unwrap();

    // Stop the leader: the harder case (an election must happen).
    let leader = leader_index(&etcd);
    etcd.stop_member(leader);
    let t = Instant::now();
    let mut written = BTreeMap::new();
    for i in 0..20 {
        let key = format!("{p}n{i:02}");
        let rev = ds
            .create(&key, "{}")
            .await
            .unwrap_or_else(|e| panic!("create {key}: {e}"));
        written.insert(key, rev);
    }
    let (kvs, _) = ds.list(p, None).await.unwrap();
    assert_eq!(kvs.len(), 21);
    let kv = ds.get(&format!("{p}n00")).await.unwrap().unwrap();
    ds.update(&kv.key, "{\"spec\":{}}", kv.mod_revision)
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );

    // The watch either lives on another member or fails; resumed from its
    // revision it misses none of the writes.
    let mut seen = BTreeMap::new();
    while seen.len() < written.len() {
        match tokio::time::timeout(EVENT_WAIT, watch.next())
            .await
            .expect("watch stalled")
        {
            Some(Ok(WatchEvent::Put(kv))) => {
                assert!(seen.insert(kv.key, kv.mod_revision).is_none(), "no repeats");
            }
            Some(Ok(WatchEvent::Progress { .. })) => {}
            Some(Ok(other)) => panic!("{other:?}"),
            Some(Err(e)) => {
                assert!(e.is_unavailable(), "{e}");
                watch = ds.watch(p, watch.revision() + 1).await.unwrap();
            }
            None => watch = ds.watch(p, watch.revision() + 1).await.unwrap(),
        }
    }
    assert_eq!(seen, written);
}

/// Which member of `etcd` leads, from `etcdctl endpoint status`.
fn leader_index(etcd: &Etcd) -> usize {
    let out = etcd.etcdctl(&["endpoint", "status", "-w", "json"]).unwrap();
    let statuses: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let leader = statuses
        .iter()
        .find(|s| s["Status"]["header"]["member_id"] == s["Status"]["leader"])
        .unwrap_or_else(|| panic!("no leader in {out}"));
    let endpoint = leader["Endpoint"].as_str().unwrap();
    etcd.endpoints()
        .iter()
        .position(|e| e == endpoint)
        .unwrap_or_else(|| panic!("leader {endpoint} is not a member"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_swap_returns_the_current_value() {
    use manul_datastore::etcd::Swap;
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let key = "/calico/ipam/v2/handle/k8s-pod-network.swap";
    let Swap::Written(r1) = ds.create_or_current(key, "one").await.unwrap() else {
        panic!("first create lost")
    };
    let Swap::Lost(Some(kv)) = ds.create_or_current(key, "two").await.unwrap() else {
        panic!("second create did not return the current value")
    };
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"one"[..], r1));
    let Swap::Written(r2) = ds.update_or_current(key, "three", r1).await.unwrap() else {
        panic!("update at the current revision lost")
    };
    // A stale revision: the current value comes back, nothing is written.
    match ds.update_or_current(key, "four", r1).await.unwrap() {
        Swap::Lost(Some(kv)) => {
            assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"three"[..], r2))
        }
        other => panic!("stale update: {other:?}"),
    }
    assert!(matches!(
        ds.delete_or_current(key, r1).await.unwrap(),
        Swap::Lost(Some(_))
    ));
    assert!(matches!(
        ds.delete_or_current(key, r2).await.unwrap(),
        Swap::Written(_)
    ));
    assert_eq!(
        ds.update_or_current(key, "five", r2).await.unwrap(),
        Swap::Lost(None),
        "gone: nothing to return"
    );
    assert_eq!(etcd.get(key).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_revision_and_progress_on_request() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let rev = ds.create("/calico/ipam/v2/config", "{}").await.unwrap();
    assert_eq!(ds.current_revision().await.unwrap(), rev);
    let mut watch = ds.watch("/calico/resources/", rev + 1).await.unwrap();
    watch.request_progress().await.unwrap();
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Progress { revision: rev }
    );
    assert_eq!(watch.revision(), rev);
}
