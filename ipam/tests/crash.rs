//! Crash safety: a process allocating and releasing in a loop is killed
//! with SIGKILL at random moments, 20 times; afterwards no address is held
//! twice, the leak check reports every leftover, and applying the report
//! leaves a clean IPAM state. A report from another cluster, or one ahead
//! of the data, is refused.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use manul_ipam::{IpamError, Problem};
use manul_tests::{Etcd, Need, require};

const KILLS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_allocators_leave_only_what_the_check_reports() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let admin = ipam(&etcd).await;
    let ds = admin.datastore().clone();
    // Small blocks, so kills also land inside block claims.
    add_pool(&ds, "p", "10.90.0.0/24", 29, |_| {}).await;
    ds.create(
        "/calico/resources/v3/projectcalico.org/clusterinformations/default",
        r#"{"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":null},"spec":{"clusterGUID":"0123456789abcdef","datastoreReady":true}}"#,
    )
    .await
    .unwrap();

    let mut seed = Instant::now().elapsed().as_nanos() as u64 | 1;
    let exe = env!("CARGO_BIN_EXE_manul-ipam-crash-child");
    for i in 0..KILLS {
        let mut child = Command::new(exe)
            .args([etcd.endpoint(), format!("crash-host-{}", i % 3)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the crash child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child ready");
        assert_eq!(first.unwrap(), "ready");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    let report = admin.check().await.unwrap();
    let mut handles = HashSet::new();
    let mut leaked = 0;
    for p in &report.problems {
        match p {
            Problem::Leaked { handle, .. } => {
                leaked += 1;
                let h = handle.clone().expect("pod handle");
                assert!(handles.insert(h.clone()), "{h} holds two addresses");
            }
            Problem::HandleMismatch { .. }
            | Problem::AffinityWithoutBlock { .. }
            | Problem::StaleAffinity { .. }
            | Problem::UnconfirmedAffinity { .. } => {}
            other => panic!("unexpected problem after crashes: {other:?}"),
        }
    }
    // Nothing has a WorkloadEndpoint: every allocated address is leaked.
    assert_eq!(leaked, report.summary.allocated);
    eprintln!(
        "{} problems after {KILLS} kills: {:?}",
        report.problems.len(),
        report.summary
    );

    // Refusals.
    let mut other = report.clone();
    other.cluster.cluster_guid = Some("another".into());
    assert!(matches!(
        admin.release_from_report(&other).await,
        Err(IpamError::ReportRefused(_))
    ));
    let mut ahead = report.clone();
    ahead.revision += 1_000_000;
    assert!(matches!(
        admin.release_from_report(&ahead).await,
        Err(IpamError::ReportAhead { .. })
    ));

    let outcome = admin.release_from_report(&report).await.unwrap();
    assert_eq!(outcome.released.len(), leaked, "{outcome:?}");
    assert!(
        outcome.reused.is_empty() && outcome.skipped.is_empty(),
        "{outcome:?}"
    );
    let after = admin.check().await.unwrap();
    assert!(after.is_clean(), "{after:?}");
    assert_eq!(after.summary.allocated, 0);
    assert_eq!(after.summary.handles, 0);
    assert_eq!(admin.utilization().await.unwrap().pools[0].in_use, 0);

    // Applying the same (now old) report again changes nothing.
    let again = admin.release_from_report(&report).await.unwrap();
    assert!(again.released.is_empty(), "{again:?}");
    assert!(admin.check().await.unwrap().is_clean());
}
