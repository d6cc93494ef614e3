//! IPv6 against a real etcd: a v6 pool's blocks (keys with `:` kept), assign,
//! release with the sequence guard, the leak check, and dual-stack
//! assignment to one handle.

mod common;

use std::net::IpAddr;

use common::*;
use manul_ipam::{AutoAssignArgs, IpamError, Problem, Released};
use manul_tests::{Etcd, Need, require};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_pool_and_dual_stack() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    let ds = ipam.datastore().clone();
    // Four /122 blocks of 64 addresses.
    add_pool(&ds, "v6", "fd00:10::/120", 122, |_| {}).await;

    let args = |handle: &str, host: &str, v4: usize, v6: usize| AutoAssignArgs {
        handle_id: format!("k8s-pod-network.{handle}"),
        num_v4: v4,
        num_v6: v6,
        host: host.into(),
        ..AutoAssignArgs::default()
    };
    let got = ipam.auto_assign(&args("a", "node-1", 0, 2)).await.unwrap();
    assert_eq!(got.len(), 2);
    let block = net("fd00:10::/120")
        .subnets(122)
        .unwrap()
        .find(|b| b.contains(&got[0]))
        .expect("in the pool");
    assert!(block.contains(&got[1]), "one block: {got:?}");
    let key = format!(
        "/calico/ipam/v2/assignment/ipv6/block/{}-122",
        block.network()
    );
    assert!(ds.get(&key).await.unwrap().is_some(), "{key} missing");
    let aff = format!(
        "/calico/ipam/v2/host/node-1/ipv6/block/{}-122",
        block.network()
    );
    assert!(ds.get(&aff).await.unwrap().is_some(), "{aff} missing");

    let info = ipam.ip_info(got[0]).await.unwrap();
    assert!(info.assigned, "{info:?}");
    assert_eq!(info.block, Some(block));
    assert_eq!(info.block_host.as_deref(), Some("node-1"));
    assert_eq!(info.handle.as_deref(), Some("k8s-pod-network.a"));

    // The sequence guard: a stale number leaves the address alone.
    let seq = info.sequence_number.unwrap();
    let r = ipam.release_ips(&[(got[0], Some(seq + 1))]).await.unwrap();
    assert_eq!(r[0].1, Released::Reused);
    let r = ipam.release_ips(&[(got[0], Some(seq))]).await.unwrap();
    assert!(matches!(r[0].1, Released::Freed { .. }), "{r:?}");
    assert!(!ipam.ip_info(got[0]).await.unwrap().assigned);

    // The check: the remaining address has no WorkloadEndpoint (leaked);
    // with one, the check is clean.
    let report = ipam.check().await.unwrap();
    assert!(
        matches!(report.problems.as_slice(), [Problem::Leaked { ip, .. }] if *ip == got[1]),
        "{:?}",
        report.problems
    );
    add_wep(&ds, "pod-a", "node-1", &[got[1]]).await;
    let report = ipam.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Dual stack: one handle, an IPv4 and an IPv6 address, IPv4 first.
    add_pool(&ds, "v4", "10.90.0.0/24", 26, |_| {}).await;
    let both = ipam.auto_assign(&args("b", "node-2", 1, 1)).await.unwrap();
    assert!(
        matches!(both.as_slice(), [IpAddr::V4(_), IpAddr::V6(_)]),
        "{both:?}"
    );
    assert!(net("10.90.0.0/24").contains(&both[0]));
    assert!(net("fd00:10::/120").contains(&both[1]));
    let handle: serde_json::Value = serde_json::from_slice(
        &ds.get("/calico/ipam/v2/handle/k8s-pod-network.b")
            .await
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    assert_eq!(handle["block"].as_object().unwrap().len(), 2, "{handle}");
    let u = ipam.utilization().await.unwrap();
    let in_use = |cidr: &str| {
        u.pools
            .iter()
            .find(|p| p.cidr == net(cidr))
            .map(|p| p.in_use)
    };
    assert_eq!(in_use("fd00:10::/120"), Some(2));
    assert_eq!(in_use("10.90.0.0/24"), Some(1));

    let mut freed = ipam.release_by_handle("k8s-pod-network.b").await.unwrap();
    freed.sort();
    assert_eq!(freed, both);
    assert!(
        ds.get("/calico/ipam/v2/handle/k8s-pod-network.b")
            .await
            .unwrap()
            .is_none()
    );

    // All or nothing across families: an IPv6 pool that does not exist
    // fails the call after its IPv4 address was assigned, and leaves no
    // IPv4 address behind.
    let mut only = args("c", "node-3", 1, 1);
    only.pools = vec![net("10.90.0.0/24"), net("fd00:99::/120")];
    let err = ipam.auto_assign(&only).await.unwrap_err();
    assert!(
        matches!(err, IpamError::UnknownPool(p) if p == net("fd00:99::/120")),
        "{err}"
    );
    assert!(
        ipam.release_by_handle("k8s-pod-network.c")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ipam.utilization()
            .await
            .unwrap()
            .pools
            .iter()
            .map(|p| p.in_use)
            .sum::<u128>(),
        1,
        "only pod-a's address"
    );
}
