//! Pool `allowedUses`: an assignment takes addresses only from pools that
//! allow its intended use — pods (`Workload`, the default), a node's tunnel
//! address (`Tunnel`), service addresses (`LoadBalancer`) — as Calico does.

mod common;

use common::*;
use manul_datastore::resources::AllowedUse;
use manul_ipam::{AutoAssignArgs, IpamError};
use manul_tests::{Etcd, Need, require};

fn args(handle: &str, host: &str, use_: Option<AllowedUse>) -> AutoAssignArgs {
    AutoAssignArgs {
        handle_id: handle.into(),
        num_v4: 1,
        host: host.into(),
        intended_use: use_,
        ..AutoAssignArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_use_gets_addresses_only_from_pools_that_allow_it() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    let ds = ipam.datastore().clone();
    // Pool names sort workload < tunnel < lb, but none may serve another's use.
    add_pool(&ds, "a-tunnel", "10.100.0.0/24", 26, |s| {
        s.allowed_uses = vec![AllowedUse::Tunnel]
    })
    .await;
    add_pool(&ds, "b-lb", "10.101.0.0/24", 26, |s| {
        s.allowed_uses = vec![AllowedUse::LoadBalancer]
    })
    .await;
    add_pool(&ds, "c-workload", "10.102.0.0/24", 26, |s| {
        s.allowed_uses = vec![AllowedUse::Workload]
    })
    .await;

    let pod = ipam
        .auto_assign(&args("k8s-pod-network.c1", "node-1", None))
        .await
        .unwrap();
    assert!(net("10.102.0.0/24").contains(&pod[0]), "{pod:?}");
    let tunnel = ipam
        .auto_assign(&args(
            "vxlan-tunnel-addr-node-1",
            "node-1",
            Some(AllowedUse::Tunnel),
        ))
        .await
        .unwrap();
    assert!(net("10.100.0.0/24").contains(&tunnel[0]), "{tunnel:?}");
    let lb = ipam
        .auto_assign(&args("lb-svc-1", "node-1", Some(AllowedUse::LoadBalancer)))
        .await
        .unwrap();
    assert!(net("10.101.0.0/24").contains(&lb[0]), "{lb:?}");
    let explicit_workload = ipam
        .auto_assign(&args(
            "k8s-pod-network.c2",
            "node-1",
            Some(AllowedUse::Workload),
        ))
        .await
        .unwrap();
    assert!(net("10.102.0.0/24").contains(&explicit_workload[0]));

    // A requested pool that does not allow the use is not used either.
    let mut asked = args(
        "ipip-tunnel-addr-node-2",
        "node-2",
        Some(AllowedUse::Tunnel),
    );
    asked.pools = vec![net("10.102.0.0/24")];
    let err = ipam.auto_assign(&asked).await.unwrap_err();
    assert!(
        matches!(err, IpamError::NoPools { .. }) && err.to_string().contains("Tunnel use"),
        "{err}"
    );

    // Default allowedUses (Workload, Tunnel): serves tunnels too, and a
    // pool for load balancers only never serves pods, whatever the order.
    add_pool(&ds, "0-default", "10.103.0.0/24", 26, |_| {}).await;
    let fresh = common::ipam(&etcd).await;
    let t2 = fresh
        .auto_assign(&args(
            "vxlan-tunnel-addr-node-3",
            "node-3",
            Some(AllowedUse::Tunnel),
        ))
        .await
        .unwrap();
    assert!(net("10.103.0.0/24").contains(&t2[0]), "{t2:?}");
    for i in 0..3 {
        let got = fresh
            .auto_assign(&args(&format!("k8s-pod-network.n3-{i}"), "node-3", None))
            .await
            .unwrap();
        assert!(!net("10.101.0.0/24").contains(&got[0]), "{got:?}");
        assert!(!net("10.100.0.0/24").contains(&got[0]), "{got:?}");
    }
}
