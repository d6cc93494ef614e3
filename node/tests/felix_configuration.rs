//! FelixConfiguration read live: `default` with `logSeverityScreen: Debug`
//! and a field manul does not act on, then `node.<host>` with `vxlanMTU`
//! over it. `/status` lists what is applied, overridden and not supported;
//! the log level and the VXLAN MTU change without a restart (confd's
//! per-batch DEBUG line appears; the status MTU moves); an agent whose
//! `RUST_LOG` and `FELIX_VXLANMTU` are set keeps them (the environment
//! wins).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{agent, status};
use manul_status::FelixConfigurationStatus;
use manul_tests::{Etcd, Lab, Need, Netns, require, scratch, wait_until};

const PREFIX: &str = "/calico/resources/v3/projectcalico.org/felixconfigurations";
/// confd's DEBUG line for each batch it publishes.
const DEBUG_LINE: &str = "confd batch";

fn felix(ns: &Netns) -> Result<FelixConfigurationStatus, String> {
    Ok(status(ns).map_err(|e| e.to_string())?.felix_configuration)
}

fn put(etcd: &Etcd, name: &str, spec: &str) -> Result<()> {
    etcd.put(
        &format!("{PREFIX}/{name}"),
        &format!(
            r#"{{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}","creationTimestamp":null}},"spec":{spec}}}"#
        ),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn felix_configuration_applies_live_reports_the_rest_and_the_environment_wins() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(2).build()?;
    let (h1, h2) = (lab.host(1), lab.host(2));
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    let logs = scratch::run().tempdir("felixconfig-agents")?;
    // host1: no RUST_LOG (empty is unset); host2: the harness's RUST_LOG=info
    // and FELIX_VXLANMTU.
    let _a1 = agent(h1, &endpoint, logs.path(), &[("RUST_LOG", "")])?;
    let _a2 = agent(h2, &endpoint, logs.path(), &[("FELIX_VXLANMTU", "1400")])?;
    let log = |h: &str| std::fs::read_to_string(logs.path().join(format!("{h}.log")));
    for h in [&h1, &h2] {
        wait_until(Duration::from_secs(30), "the agent's status", || {
            felix(&h.ns)
        });
    }
    assert_eq!(felix(&h1.ns).unwrap(), FelixConfigurationStatus::default());
    assert!(
        !log("host1")?.contains(DEBUG_LINE),
        "host1 logs DEBUG before any FelixConfiguration"
    );

    put(
        &etcd,
        "default",
        r#"{"logSeverityScreen":"Debug","chainInsertMode":"Append"}"#,
    )?;
    let s1 = wait_until(Duration::from_secs(10), "host1 applies default", || {
        let s = felix(&h1.ns)?;
        (!s.applied.is_empty())
            .then_some(s.clone())
            .ok_or(format!("{s:?}"))
    });
    assert_eq!(s1.applied, strings(&["logSeverityScreen"]));
    assert_eq!(s1.not_supported, strings(&["chainInsertMode"]));
    assert!(s1.overridden.is_empty());
    let s2 = wait_until(Duration::from_secs(10), "host2 reads default", || {
        let s = felix(&h2.ns)?;
        (!s.overridden.is_empty())
            .then_some(s.clone())
            .ok_or(format!("{s:?}"))
    });
    assert_eq!(s2.overridden, strings(&["logSeverityScreen"]));
    assert!(s2.applied.is_empty());
    assert_eq!(s2.not_supported, strings(&["chainInsertMode"]));

    // node.<name> over default, field by field. host1: vxlanMTU applied
    // live (the uplink's 1500 less 50 before); host2: FELIX_VXLANMTU wins.
    let mtu = |ns: &Netns| -> Result<u32, String> {
        let m = status(ns).map_err(|e| e.to_string())?.network.mtu;
        m.map(|m| m.vxlan).ok_or("no MTUs yet".into())
    };
    assert_eq!(
        wait_until(Duration::from_secs(10), "host1's MTUs", || mtu(&h1.ns)),
        1450
    );
    assert_eq!(
        wait_until(Duration::from_secs(10), "host2's MTUs", || mtu(&h2.ns)),
        1400
    );
    put(
        &etcd,
        "node.host1",
        r#"{"vxlanMTU":1300,"routeRefreshInterval":"30s"}"#,
    )?;
    put(&etcd, "node.host2", r#"{"vxlanMTU":1300}"#)?;
    let s1 = wait_until(Duration::from_secs(10), "host1 reads node.host1", || {
        let s = felix(&h1.ns)?;
        (s.applied.len() == 3)
            .then_some(s.clone())
            .ok_or(format!("{s:?}"))
    });
    assert_eq!(
        s1.applied,
        strings(&["logSeverityScreen", "routeRefreshInterval", "vxlanMTU"])
    );
    assert_eq!(s1.not_supported, strings(&["chainInsertMode"]));
    wait_until(
        Duration::from_secs(10),
        "host1's VXLAN MTU from node.host1",
        || {
            let m = mtu(&h1.ns)?;
            (m == 1300).then_some(()).ok_or(format!("{m}"))
        },
    );
    let s2 = wait_until(Duration::from_secs(10), "host2 reads node.host2", || {
        let s = felix(&h2.ns)?;
        (s.overridden.len() == 2)
            .then_some(s.clone())
            .ok_or(format!("{s:?}"))
    });
    assert_eq!(s2.overridden, strings(&["logSeverityScreen", "vxlanMTU"]));
    assert_eq!(mtu(&h2.ns).unwrap(), 1400, "FELIX_VXLANMTU must win");
    // Live: the batch carrying node.host1 was logged at DEBUG.
    wait_until(Duration::from_secs(10), "host1 logs at DEBUG", || {
        let l = log("host1").map_err(|e| e.to_string())?;
        l.contains(DEBUG_LINE)
            .then_some(())
            .ok_or("no DEBUG line yet".to_string())
    });
    assert!(
        !log("host2")?.contains(DEBUG_LINE),
        "host2's RUST_LOG=info must win over logSeverityScreen"
    );
    let l1 = log("host1")?;
    assert_eq!(
        l1.matches("FelixConfiguration for this node").count(),
        2,
        "one log line per change of the field lists:\n{l1}"
    );
    Ok(())
}
