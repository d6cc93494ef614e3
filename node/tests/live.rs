//! Config changes in etcd apply live: a BGPPeer added or removed changes
//! only that session; the mesh sessions stay up (their `since` does not move).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use manul_tests::node::{agent, status};
use manul_tests::{Etcd, Lab, Need, Netns, require, scratch, wait_until};
use serde_json::Value;

fn peers(ns: &Netns) -> Result<Vec<Value>, String> {
    let s = status(ns).map_err(|e| e.to_string())?;
    Ok(s["routing"]["peers"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[test]
fn a_bgppeer_added_and_removed_changes_only_its_session() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(2).build()?;
    let h1 = lab.host(1);
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    let logs = scratch::run().tempdir("live-agents")?;
    let mut agents = Vec::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_manul-node"));
    for h in &lab.hosts {
        let no_pool = [("NO_DEFAULT_POOLS", "true")];
        agents.push(agent(bin, h, &endpoint, logs.path(), &no_pool)?);
    }
    let mesh_since = wait_until(Duration::from_secs(30), "the mesh session is up", || {
        let p = peers(&h1.ns)?;
        match p.as_slice() {
            [m] if m["state"] == "Established" => Ok(m["since"].clone()),
            _ => Err(format!("{p:?}")),
        }
    });
    let key = "/calico/resources/v3/projectcalico.org/bgppeers/tor";
    etcd.put(
        key,
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor","creationTimestamp":null},"spec":{"peerIP":"10.99.0.1","asNumber":65000}}"#,
    )?;
    wait_until(Duration::from_secs(10), "the new peer on host1", || {
        let p = peers(&h1.ns)?;
        if p.iter()
            .any(|p| p["address"] == "10.99.0.1" && p["type"] == "global")
        {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    etcd.etcdctl(&["del", key])?;
    wait_until(Duration::from_secs(10), "the peer gone again", || {
        let p = peers(&h1.ns)?;
        if p.len() == 1 {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    let p = peers(&h1.ns).map_err(anyhow::Error::msg)?;
    assert_eq!(p[0]["state"], "Established");
    // `since` is derived from the uptime each second: allow its rounding.
    let (now, then) = (
        p[0]["since"].as_u64().unwrap_or(0),
        mesh_since.as_u64().unwrap_or(0),
    );
    assert!(
        now.abs_diff(then) <= 1,
        "the mesh session was reset: since {then} -> {now}"
    );
    drop(agents);
    Ok(())
}
