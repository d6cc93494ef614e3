//! What `manulctl ipam` asks of the library beyond allocation: the list
//! of borrowed addresses, the leak check's progress, and applying a report
//! that is ahead of the data only when told to.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::*;
use manul_ipam::{BorrowedIp, IpamError, Progress, Records, RepairOptions};
use manul_tests::{Etcd, Need, require};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowed_addresses_progress_and_a_forced_report() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ipam = ipam(&etcd).await;
    let ds = ipam.datastore().clone();
    add_pool(&ds, "p", "10.73.0.0/24", 26, |_| {}).await;
    let none = BTreeMap::new();
    // h1 claims 10.73.0.0/26; h2 claims 10.73.0.64/26 and borrows one of h1's.
    ipam.assign_ip(ip("10.73.0.1"), "k8s-pod-network.a", &none, "h1")
        .await
        .unwrap();
    ipam.assign_ip(ip("10.73.0.65"), "k8s-pod-network.b", &none, "h2")
        .await
        .unwrap();
    ipam.assign_ip(ip("10.73.0.2"), "k8s-pod-network.c", &none, "h2")
        .await
        .unwrap();
    add_wep(&ds, "a", "h1", &[ip("10.73.0.1")]).await;

    assert_eq!(
        ipam.borrowed_ips().await.unwrap(),
        [BorrowedIp {
            ip: ip("10.73.0.2"),
            block: net("10.73.0.0/26"),
            block_host: Some("h1".into()),
            node: "h2".into(),
            handle: Some("k8s-pod-network.c".into()),
        }]
    );

    // Progress: each list announced, then counted, then the comparison.
    let mut seen = Vec::new();
    let report = ipam.check_with_progress(|p| seen.push(p)).await.unwrap();
    assert_eq!(
        seen,
        [
            Progress::Reading(Records::Blocks),
            Progress::Read(Records::Blocks, 2),
            Progress::Reading(Records::Affinities),
            Progress::Read(Records::Affinities, 2),
            Progress::Reading(Records::Handles),
            Progress::Read(Records::Handles, 3),
            Progress::Reading(Records::WorkloadEndpoints),
            Progress::Read(Records::WorkloadEndpoints, 1),
            Progress::Checking { allocated: 3 },
        ]
    );
    assert_eq!(report, ipam.check().await.unwrap());
    let mut leaked: Vec<IpAddr> = report.leaked().into_iter().map(|l| l.0).collect();
    leaked.sort();
    assert_eq!(leaked, [ip("10.73.0.2"), ip("10.73.0.65")]);

    // A report ahead of the data is refused unless allowed; the guards
    // still hold when it is.
    let mut ahead = report.clone();
    ahead.revision += 1_000_000;
    assert!(matches!(
        ipam.release_from_report(&ahead).await,
        Err(IpamError::ReportAhead { .. })
    ));
    let mut other = ahead.clone();
    other.cluster.endpoints = vec!["http://192.0.2.1:2379".into()];
    assert!(matches!(
        ipam.release_from_report_with(&other, RepairOptions { allow_ahead: true })
            .await,
        Err(IpamError::ReportRefused(_))
    ));
    let out = ipam
        .release_from_report_with(&ahead, RepairOptions { allow_ahead: true })
        .await
        .unwrap();
    let mut released = out.released.clone();
    released.sort();
    assert_eq!(released, leaked, "{out:?}");
    assert!(ipam.check().await.unwrap().is_clean());
    assert!(ipam.borrowed_ips().await.unwrap().is_empty());
}
