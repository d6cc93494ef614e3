//! /metrics moves with what happens: an IPAM block claimed for this node
//! counts a `block_claim`, felix's reconcile durations are observed, and
//! an etcd outage counts datastore errors by operation.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{agent, claim_block};
use manul_tests::node::{RES, get, pool_json};
use manul_tests::{Etcd, Lab, Need, require, scratch, wait_until};

/// The value of the metric line starting with `prefix` (labels included).
fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_ipam_reconciles_and_etcd_errors() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let lab = Lab::builder().hosts(1).build()?;
    let h1 = lab.host(1);
    let mut etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    let logs = scratch::run().tempdir("metrics-agent")?;
    let _agent = agent(h1, &endpoint, logs.path(), &[])?;
    let metric = |prefix: &str| -> Result<f64, String> {
        let m = get(&h1.ns, "/metrics").map_err(|e| e.to_string())?;
        value(&m, prefix).ok_or(m)
    };
    let reconciles = "manul_felix_reconcile_seconds_count";
    let before = wait_until(Duration::from_secs(30), "a first reconcile", || {
        metric(reconciles)
    });
    claim_block(&h1.ns, &endpoint, &h1.name)?;
    let claims = r#"manul_ipam_operations_total{operation="block_claim"}"#;
    wait_until(
        Duration::from_secs(10),
        "one block claim counted",
        || match metric(claims)? {
            1.0 => Ok(()),
            n => Err(format!("{n}")),
        },
    );
    wait_until(
        Duration::from_secs(10),
        "the blackhole reconciled",
        || match metric(reconciles)? {
            n if n > before => Ok(()),
            n => Err(format!("{n}")),
        },
    );
    etcd.stop_member(0);
    let errors = r#"manul_datastore_errors_total{operation="watch"}"#;
    wait_until(
        Duration::from_secs(30),
        "watch errors counted",
        || match metric(errors)? {
            n if n >= 1.0 => Ok(()),
            n => Err(format!("{n}")),
        },
    );
    etcd.restart_member(0)?;
    Ok(())
}
