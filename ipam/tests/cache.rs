//! What an allocator caches never keeps a change made elsewhere from taking
//! effect where it matters: a new pool is used as soon as the cached ones
//! are full, strict affinity set by another process stops borrowing at
//! once, and a block written by another process is taken over from the
//! value its lost compare-and-swap returns.

mod common;

use common::*;
use manul_datastore::ipam::IpamConfig;
use manul_ipam::{AutoAssignArgs, IpamError};
use manul_tests::{Etcd, Need, require};

fn args(handle: &str, host: &str, n: usize) -> AutoAssignArgs {
    AutoAssignArgs {
        handle_id: format!("k8s-pod-network.{handle}"),
        num_v4: n,
        host: host.into(),
        ..AutoAssignArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_elsewhere_take_effect_despite_the_cache() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let a = ipam(&etcd).await;
    let admin = ipam(&etcd).await;
    let ds = admin.datastore().clone();
    add_pool(&ds, "first", "10.71.0.0/30", 30, |_| {}).await;
    assert_eq!(a.auto_assign(&args("a", "h1", 4)).await.unwrap().len(), 4);

    // A pool added after `a` cached the pools: used when the cached are full.
    add_pool(&ds, "second", "10.72.0.0/29", 30, |_| {}).await;
    let got = a.auto_assign(&args("b", "h1", 1)).await.unwrap();
    assert!(net("10.72.0.0/29").contains(&got[0]), "{got:?}");

    // Strict affinity set by another process: `a` no longer borrows, at once
    // (borrowing reads the config fresh). h2 claims the last free block.
    assert_eq!(a.auto_assign(&args("c", "h2", 4)).await.unwrap().len(), 4);
    admin
        .set_config(&IpamConfig {
            strict_affinity: Some(true),
            ..IpamConfig::default()
        })
        .await
        .unwrap();
    let err = a.auto_assign(&args("d", "h3", 1)).await.unwrap_err();
    assert!(matches!(err, IpamError::PoolExhausted { .. }), "{err}");

    // A release by another process: `a`'s cached block says full, so the
    // block is read again before `a` gives up on it.
    let freed = admin.release_by_handle("k8s-pod-network.a").await.unwrap();
    assert_eq!(freed.len(), 4);
    let again = a.auto_assign(&args("e", "h1", 4)).await.unwrap();
    let mut again_sorted = again.clone();
    again_sorted.sort();
    let mut freed_sorted = freed.clone();
    freed_sorted.sort();
    assert_eq!(again_sorted, freed_sorted, "h1's own block, not a new one");
    let report = admin.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| matches!(p, manul_ipam::Problem::Leaked { .. })),
        "{:?}",
        report.problems
    );
}
