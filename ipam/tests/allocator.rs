//! The allocator against a real etcd: Calico's JSON, cost per assignment,
//! exhaustion, borrowing, strict affinity, the block limit, node removal,
//! the sequence guard and specific-address assignment.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::*;
use manul_datastore::ipam::IpamConfig;
use manul_ipam::{AutoAssignArgs, IpamError, Released};
use manul_tests::{Etcd, Need, require};

fn args(handle: &str, host: &str, n: usize) -> AutoAssignArgs {
    AutoAssignArgs {
        handle_id: format!("k8s-pod-network.{handle}"),
        num_v4: n,
        host: host.into(),
        ..AutoAssignArgs::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn raw(ds: &manul_datastore::Datastore, key: &str) -> String {
    let kv = ds
        .get(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} missing"));
    String::from_utf8(kv.value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_calicos_json() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    let ds = ipam.datastore().clone();
    add_pool(&ds, "p", "10.65.0.0/30", 30, |_| {}).await;
    set_config(&ipam, true, 3).await;
    assert_eq!(
        raw(&ds, "/calico/ipam/v2/config").await,
        include_str!("fixtures/config.json")
    );
    let mut a = args("abc", "node-1", 1);
    a.attrs = BTreeMap::from([
        ("namespace".into(), "default".into()),
        ("pod".into(), "p1".into()),
        ("timestamp".into(), "2024-05-01 10:02:13.5 +0000 UTC".into()),
    ]);
    assert_eq!(ipam.auto_assign(&a).await.unwrap(), [ip("10.65.0.0")]);
    assert_eq!(
        raw(&ds, "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-30").await,
        include_str!("fixtures/block.json")
    );
    assert_eq!(
        raw(&ds, "/calico/ipam/v2/host/node-1/ipv4/block/10.65.0.0-30").await,
        include_str!("fixtures/affinity.json")
    );
    assert_eq!(
        raw(&ds, "/calico/ipam/v2/handle/k8s-pod-network.abc").await,
        include_str!("fixtures/handle.json")
    );

    // Release: block first (sequence bumped, ordinal to the back), handle gone.
    let r = ipam
        .release_ips(&[(ip("10.65.0.0"), Some(0))])
        .await
        .unwrap();
    assert!(matches!(r[0].1, Released::Freed { .. }), "{r:?}");
    let block: serde_json::Value =
        serde_json::from_str(&raw(&ds, "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-30").await)
            .unwrap();
    assert_eq!(block["sequenceNumber"], 2);
    assert_eq!(block["unallocated"], serde_json::json!([1, 2, 3, 0]));
    assert_eq!(block["attributes"], serde_json::json!([]));
    assert_eq!(block["sequenceNumberForAllocation"], serde_json::json!({}));
    assert!(
        ds.get("/calico/ipam/v2/handle/k8s-pod-network.abc")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_assignment_costs_two_writes_and_no_block_listing() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "p", "10.70.0.0/16", 26, |_| {}).await;
    ipam.auto_assign(&args("a", "h1", 1)).await.unwrap();
    let before = ipam.stats();
    ipam.auto_assign(&args("b", "h1", 1)).await.unwrap();
    let after = ipam.stats();
    assert!(after.writes - before.writes <= 2, "{before:?} -> {after:?}");
    assert_eq!(
        (after.gets - before.gets, after.lists - before.lists),
        (0, 1),
        "a warm assignment reads only the IPReservations (config, pools, the block cached): {before:?} -> {after:?}"
    );

    // Another process wrote the block meanwhile: the stale cached block
    // loses its compare-and-swap, which returns the current block, and the
    // next write wins; still no read and no block listing (the one list
    // is the IPReservations').
    let other = common::ipam(&etcd).await;
    let theirs = other.auto_assign(&args("x", "h1", 1)).await.unwrap();
    let before = ipam.stats();
    let mine = ipam.auto_assign(&args("y", "h1", 1)).await.unwrap();
    let after = ipam.stats();
    assert_ne!(mine, theirs);
    assert_eq!(
        after.conflicts - before.conflicts,
        1,
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.writes - before.writes, 3, "{before:?} -> {after:?}");
    assert_eq!(after.gets - before.gets, 0, "{before:?} -> {after:?}");
    assert_eq!(after.lists - before.lists, 1, "{before:?} -> {after:?}");

    // Release by handle: one read (the handle), two writes.
    let before = ipam.stats();
    assert_eq!(
        ipam.release_by_handle("k8s-pod-network.y").await.unwrap(),
        mine
    );
    let after = ipam.stats();
    assert_eq!(
        (
            after.gets - before.gets,
            after.lists - before.lists,
            after.writes - before.writes
        ),
        (1, 0, 2),
        "{before:?} -> {after:?}"
    );

    // A fresh allocator lists the host's affinities once, not the blocks.
    let cold = common::ipam(&etcd).await;
    cold.auto_assign(&args("c", "h1", 1)).await.unwrap();
    let s = cold.stats();
    assert_eq!(s.writes, 2, "{s:?}");
    assert!(
        s.lists <= 3,
        "pools + host affinities + reservations: {s:?}"
    );
    let u = ipam.utilization().await.unwrap();
    assert_eq!(u.pools[0].blocks.len(), 1, "one block for four addresses");
    assert_eq!(u.pools[0].in_use, 4);
    assert!(
        ipam.check()
            .await
            .unwrap()
            .problems
            .iter()
            .all(|p| matches!(p, manul_ipam::Problem::Leaked { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrows_without_strict_affinity_then_exhausts() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "small", "10.66.0.0/28", 30, |_| {}).await;
    let mine = ipam.auto_assign(&args("a", "host-a", 16)).await.unwrap();
    assert_eq!(mine.len(), 16);
    ipam.release_ips(&[(mine[0], None), (mine[5], None)])
        .await
        .unwrap();

    let got = ipam.auto_assign(&args("b", "host-b", 2)).await.unwrap();
    assert_eq!(got.len(), 2);
    for g in &got {
        let info = ipam.ip_info(*g).await.unwrap();
        assert_eq!(info.block_host.as_deref(), Some("host-a"));
        assert!(info.borrowed, "{info:?}");
        assert_eq!(
            info.attributes.get("node").map(String::as_str),
            Some("host-b")
        );
    }
    let u = ipam.utilization().await.unwrap();
    assert_eq!(u.pools[0].in_use, 16);
    assert_eq!(u.pools[0].blocks.iter().map(|b| b.borrowed).sum::<u64>(), 2);

    let err = ipam.auto_assign(&args("c", "host-b", 1)).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pool exhausted") && msg.contains("10.66.0.0/28"),
        "{msg}"
    );
    assert!(
        matches!(err, IpamError::PoolExhausted { ref pools_tried } if pools_tried == &[net("10.66.0.0/28")])
    );

    // All or nothing: asking for more than is free assigns nothing.
    ipam.release_ips(&[(got[0], None)]).await.unwrap();
    assert!(ipam.auto_assign(&args("d", "host-c", 2)).await.is_err());
    assert_eq!(ipam.utilization().await.unwrap().pools[0].in_use, 15);
    assert!(
        ipam.check()
            .await
            .unwrap()
            .problems
            .iter()
            .all(|p| matches!(p, manul_ipam::Problem::Leaked { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_affinity_never_borrows_and_the_block_limit_holds() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    let ds = ipam.datastore().clone();
    add_pool(&ds, "small", "10.67.0.0/28", 30, |_| {}).await;
    add_pool(&ds, "big", "10.68.0.0/24", 30, |s| {
        s.node_selector = "rack == 'b'".into()
    })
    .await;
    set_config(&ipam, true, 0).await;
    let mine = ipam.auto_assign(&args("a", "host-a", 16)).await.unwrap();
    ipam.release_ips(&[(mine[3], None)]).await.unwrap();
    let err = ipam.auto_assign(&args("b", "host-b", 1)).await.unwrap_err();
    assert!(matches!(err, IpamError::PoolExhausted { .. }), "{err}");
    // The pool host-b's labels do not select is not tried.
    assert!(
        err.to_string().contains("10.67.0.0/28") && !err.to_string().contains("10.68"),
        "{err}"
    );
    // host-a still has room in its own block.
    assert_eq!(
        ipam.auto_assign(&args("c", "host-a", 1)).await.unwrap(),
        [mine[3]]
    );

    // maxBlocksPerHost = 1 on a pool with room.
    set_config(&ipam, true, 1).await;
    let pools = vec![net("10.68.0.0/24")];
    let mut a = args("d", "host-d", 4);
    a.pools = pools.clone();
    assert_eq!(ipam.auto_assign(&a).await.unwrap().len(), 4);
    let mut a = args("e", "host-d", 1);
    a.pools = pools.clone();
    let err = ipam.auto_assign(&a).await.unwrap_err();
    assert!(
        matches!(err, IpamError::BlockLimit { limit: 1, .. }),
        "{err}"
    );
    let mut a = args("f", "host-f", 1);
    a.pools = pools;
    assert_eq!(
        ipam.auto_assign(&a).await.unwrap().len(),
        1,
        "another host is not limited"
    );

    // Calico's config rules.
    let bad = IpamConfig {
        strict_affinity: Some(false),
        auto_allocate_blocks: Some(true),
        max_blocks_per_host: Some(2),
        extra: Default::default(),
    };
    assert!(matches!(
        ipam.set_config(&bad).await,
        Err(IpamError::InvalidConfig(_))
    ));
    let bad = IpamConfig {
        strict_affinity: Some(false),
        auto_allocate_blocks: Some(false),
        max_blocks_per_host: Some(0),
        extra: Default::default(),
    };
    assert!(matches!(
        ipam.set_config(&bad).await,
        Err(IpamError::InvalidConfig(_))
    ));
    assert_eq!(ipam.config().await.unwrap().max_blocks_per_host(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_host_deletes_empty_blocks_and_unaffines_the_others() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "p", "10.69.0.0/26", 30, |_| {}).await;
    let got = ipam.auto_assign(&args("a", "gone", 5)).await.unwrap();
    let b1 = ipam.ip_info(got[0]).await.unwrap().block.unwrap();
    let b2 = ipam.ip_info(got[4]).await.unwrap().block.unwrap();
    assert_ne!(b1, b2);
    ipam.release_ips(&[(got[4], None)]).await.unwrap();
    let r = ipam.release_host("gone").await.unwrap();
    assert_eq!(r.released, [b2]);
    assert_eq!(r.unaffined, [b1]);
    assert!(r.not_empty.is_empty());
    // b1 keeps its addresses, with no affinity (Calico's RemoveIPAMHost).
    let info = ipam.ip_info(got[0]).await.unwrap();
    assert!(info.assigned);
    assert_eq!(info.block_host, None);
    let usage = ipam.utilization().await.unwrap();
    assert_eq!(usage.pools[0].blocks.len(), 1);
    assert_eq!(usage.pools[0].blocks[0].host, None);
    let report = ipam.check().await.unwrap();
    assert_eq!(report.summary.affinities, 0);
    assert!(
        report
            .problems
            .iter()
            .all(|p| matches!(p, manul_ipam::Problem::Leaked { .. })),
        "{report:?}"
    );

    ipam.release_by_handle("k8s-pod-network.a").await.unwrap();
    assert!(ipam.utilization().await.unwrap().pools[0].blocks.is_empty());
    let r = ipam.release_host("gone").await.unwrap();
    assert_eq!(r, manul_ipam::HostRelease::default());
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.summary.affinities + report.summary.handles, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_sequence_number_leaves_a_reused_address_alone() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "p", "10.71.0.0/30", 30, |_| {}).await;
    let all = ipam.auto_assign(&args("a", "h", 4)).await.unwrap();
    let x = all[2];
    let old = ipam.ip_info(x).await.unwrap().sequence_number;
    assert!(old.is_some());
    ipam.release_ips(&[(x, old)]).await.unwrap();
    assert_eq!(ipam.auto_assign(&args("b", "h", 1)).await.unwrap(), [x]);
    let now = ipam.ip_info(x).await.unwrap();
    assert_ne!(now.sequence_number, old);

    let r = ipam.release_ips(&[(x, old)]).await.unwrap();
    assert_eq!(r, [(x, Released::Reused)]);
    let info = ipam.ip_info(x).await.unwrap();
    assert_eq!(info.handle.as_deref(), Some("k8s-pod-network.b"));
    let r = ipam.release_ips(&[(x, now.sequence_number)]).await.unwrap();
    assert!(matches!(r[0].1, Released::Freed { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_ip_claims_the_block_and_refuses_taken_or_foreign_addresses() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "p", "10.72.0.0/24", 26, |_| {}).await;
    let attrs = BTreeMap::new();
    ipam.assign_ip(ip("10.72.0.77"), "tunnel-h1", &attrs, "h1")
        .await
        .unwrap();
    let info = ipam.ip_info(ip("10.72.0.77")).await.unwrap();
    assert_eq!(info.block, Some(net("10.72.0.64/26")));
    assert_eq!(info.block_host.as_deref(), Some("h1"));
    assert_eq!(info.handle.as_deref(), Some("tunnel-h1"));
    assert!(matches!(
        ipam.assign_ip(ip("10.72.0.77"), "x", &attrs, "h1").await,
        Err(IpamError::AlreadyAssigned { .. })
    ));
    // Borrowing a specific address from h1's block is fine without strict affinity...
    ipam.assign_ip(ip("10.72.0.78"), "x", &attrs, "h2")
        .await
        .unwrap();
    // ...and refused with it.
    set_config(&ipam, true, 0).await;
    assert!(matches!(
        ipam.assign_ip(ip("10.72.0.79"), "y", &attrs, "h2").await,
        Err(IpamError::StrictAffinity { .. })
    ));
    assert!(matches!(
        ipam.assign_ip(ip("10.99.0.1"), "y", &attrs, "h2").await,
        Err(IpamError::NotInPool(_))
    ));
    // Tunnel handles are not pod handles: not leaked.
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}
