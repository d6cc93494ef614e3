//! Reclaiming another host's empty block when every block of the pool is
//! claimed: only a block seen empty and unchanged for the grace period,
//! never one in use; the old host's stale cache does not get it back.

mod common;

use std::time::Duration;

use common::*;
use manul_ipam::{AutoAssignArgs, IpamError, Problem};
use manul_tests::{Etcd, Need, require};

fn args(handle: &str, host: &str) -> AutoAssignArgs {
    AutoAssignArgs {
        handle_id: format!("k8s-pod-network.{handle}"),
        num_v4: 1,
        host: host.into(),
        ..AutoAssignArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_block_of_another_host_is_reclaimed_only_when_none_is_free() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let a = ipam(&etcd).await;
    let ds = a.datastore().clone();
    // Two blocks of four; strict affinity, so nobody borrows.
    add_pool(&ds, "p", "10.110.0.0/29", 30, |_| {}).await;
    set_config(&a, true, 0).await;
    let got_a = a.auto_assign(&args("a1", "host-a")).await.unwrap();
    let b = ipam(&etcd).await;
    let got_b = b.auto_assign(&args("b1", "host-b")).await.unwrap();
    let block_a = a.ip_info(got_a[0]).await.unwrap().block.unwrap();
    let block_b = b.ip_info(got_b[0]).await.unwrap().block.unwrap();
    assert_ne!(block_a, block_b);

    // host-a's block still holds an address: nothing to reclaim.
    let now = ipam(&etcd).await.with_reclaim_after(Duration::ZERO);
    let err = now.auto_assign(&args("c1", "host-c")).await.unwrap_err();
    assert!(matches!(err, IpamError::PoolExhausted { .. }), "{err}");

    // Empty now, but first seen empty just now: the default grace (a
    // minute of being seen empty and unchanged) keeps it host-a's.
    a.release_by_handle("k8s-pod-network.a1").await.unwrap();
    let patient = ipam(&etcd).await;
    let err = patient
        .auto_assign(&args("c2", "host-c"))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::PoolExhausted { .. }), "{err}");

    // With no grace: host-c takes host-a's empty block, never host-b's.
    let got_c = now.auto_assign(&args("c3", "host-c")).await.unwrap();
    let info = now.ip_info(got_c[0]).await.unwrap();
    assert_eq!(info.block, Some(block_a));
    assert_eq!(info.block_host.as_deref(), Some("host-c"));
    let key = |host: &str, b: ipnet::IpNet| {
        format!(
            "/calico/ipam/v2/host/{host}/ipv4/block/{}-{}",
            b.network(),
            b.prefix_len()
        )
    };
    assert!(etcd.get(&key("host-a", block_a)).unwrap().is_none());
    let aff = etcd.get(&key("host-c", block_a)).unwrap().unwrap();
    assert!(aff.contains(r#""state":"confirmed""#), "{aff}");
    assert_eq!(
        b.ip_info(got_b[0]).await.unwrap().block_host.as_deref(),
        Some("host-b")
    );

    // host-a's allocator still has the block in its cache: its write loses,
    // it sees the block is host-c's now, and finds nothing else.
    let err = a.auto_assign(&args("a2", "host-a")).await.unwrap_err();
    assert!(matches!(err, IpamError::PoolExhausted { .. }), "{err}");
    assert_eq!(
        now.ip_info(got_c[0]).await.unwrap().handle.as_deref(),
        Some("k8s-pod-network.c3")
    );

    // Nothing inconsistent is left (the addresses have no pods: leaked).
    let report = a.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| matches!(p, Problem::Leaked { .. })),
        "{:?}",
        report.problems
    );
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}
