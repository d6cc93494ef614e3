//! IPReservations against a real etcd: automatic assignment never hands
//! out a reserved address, also in a block claimed before the
//! reservation existed; an address asked for by name is not refused (as
//! in Calico); utilization counts reserved free addresses as free, as
//! Calico's does (its `GetUtilization` counts the block's free list).

mod common;

use std::net::IpAddr;

use common::*;
use manul_datastore::resources::{IpReservation, ip_reservation_key};
use manul_ipam::AutoAssignArgs;
use manul_tests::{Etcd, Need, require};

fn args(handle: &str, host: &str, n: usize) -> AutoAssignArgs {
    AutoAssignArgs {
        handle_id: handle.into(),
        num_v4: n,
        host: host.into(),
        ..Default::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn reserve(ipam: &manul_ipam::Ipam, name: &str, cidrs: &[&str]) {
    let r = IpReservation::new(name, cidrs.iter().map(|s| s.to_string()).collect());
    ipam.datastore()
        .create(&ip_reservation_key(name), r.to_json())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_addresses_are_never_auto_assigned() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    add_pool(ipam.datastore(), "p", "10.72.0.0/28", 29, |_| {}).await;

    // A block claimed before any reservation: .0 goes to pod a.
    let a = ipam.auto_assign(&args("a", "h1", 1)).await.unwrap();
    assert_eq!(a, [ip("10.72.0.0")]);

    // Reserve .1-.3 (an unmasked CIDR reserves its network, as in Calico)
    // and .5 in the already-claimed block, and the whole second block.
    reserve(&ipam, "r1", &["10.72.0.2/31", "10.72.0.1", "10.72.0.5/32"]).await;
    reserve(&ipam, "r2", &["10.72.0.8/29"]).await;

    // The same Ipam (warm cache): the next free unreserved addresses.
    let b = ipam.auto_assign(&args("b", "h1", 3)).await.unwrap();
    assert_eq!(b, [ip("10.72.0.4"), ip("10.72.0.6"), ip("10.72.0.7")]);
    // Nothing unreserved is left: the second block is all reserved.
    let err = ipam.auto_assign(&args("c", "h1", 1)).await.unwrap_err();
    assert!(
        matches!(err, manul_ipam::IpamError::PoolExhausted { .. }),
        "{err:?}"
    );
    // Another host (borrowing) gets nothing reserved either.
    let err = ipam.auto_assign(&args("d", "h2", 1)).await.unwrap_err();
    assert!(
        matches!(err, manul_ipam::IpamError::PoolExhausted { .. }),
        "{err:?}"
    );
    for r in [
        "10.72.0.1",
        "10.72.0.2",
        "10.72.0.3",
        "10.72.0.5",
        "10.72.0.9",
    ] {
        assert!(!ipam.ip_info(ip(r)).await.unwrap().assigned, "{r}");
    }

    // Reserved free addresses are free in the utilization (Calico's
    // count): 16 addresses, 4 in use.
    let u = ipam.utilization().await.unwrap();
    assert_eq!((u.pools[0].in_use, u.pools[0].free), (4, 12));

    // Asked for by name, a reserved address is assigned (Calico's
    // AssignIP does not consult reservations).
    ipam.assign_ip(ip("10.72.0.5"), "e", &Default::default(), "h1")
        .await
        .unwrap();
    assert!(ipam.ip_info(ip("10.72.0.5")).await.unwrap().assigned);

    // Once the reservation goes, its addresses are assigned again.
    let key = ip_reservation_key("r1");
    let kv = ipam.datastore().get(&key).await.unwrap().unwrap();
    ipam.datastore()
        .delete(&key, kv.mod_revision)
        .await
        .unwrap();
    let f = ipam.auto_assign(&args("f", "h1", 3)).await.unwrap();
    assert_eq!(f, [ip("10.72.0.1"), ip("10.72.0.2"), ip("10.72.0.3")]);
    assert!(
        ipam.check()
            .await
            .unwrap()
            .problems
            .iter()
            .all(|p| matches!(p, manul_ipam::Problem::Leaked { .. }))
    );
}
