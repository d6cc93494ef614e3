//! Config changes in etcd apply live: a BGPPeer added or removed changes
//! only that session; the mesh sessions stay up (their `since` does not move).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use manul_status::{NodeStatus, PeerStatus, PeerType, State};
use manul_tests::node::{agent, status};
use manul_tests::{Etcd, Lab, Need, Netns, require, scratch, wait_until};

fn peers(ns: &Netns) -> Result<Vec<PeerStatus>, String> {
    let s = status(ns).map_err(|e| e.to_string())?;
    let s: NodeStatus = serde_json::from_value(s).map_err(|e| e.to_string())?;
    Ok(s.routing.peers)
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
            [m] if m.state == State::Established => Ok(m.since),
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
            .any(|p| p.address.to_string() == "10.99.0.1" && p.kind == PeerType::Global)
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
    assert_eq!(p[0].state, State::Established);
    // `since` is when the session reached Established: it does not move.
    assert!(mesh_since.is_some());
    assert_eq!(
        p[0].since, mesh_since,
        "the mesh session was reset: since {mesh_since:?} -> {:?}",
        p[0].since
    );
    drop(agents);
    Ok(())
}
