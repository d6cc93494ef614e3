//! `manulctl node status` against a real manul-node (in a namespace the
//! test creates, with a real etcd) that has one configured BGP peer.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use manul_status::{NodeStatus, PeerType, State};
use manul_tests::{Daemon, Etcd, Need, Netns, require, scratch, wait_until};

/// The manul-node binary next to manulctl (built when missing).
fn manul_node() -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_manulctl")).with_file_name("manul-node");
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "manul-node"])
            .status()?;
        ensure!(status.success(), "cargo build -p manul-node failed");
    }
    Ok(path)
}

#[test]
fn node_status_shows_the_agents_peers() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let ns = Netns::new("ctlnode")?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])?;
    ns.link_up("eth0")?;
    ns.link_up("eth0p")?;
    ns.add_addr("eth0", "10.0.0.5/24")?;
    let etcd = Etcd::start_in(&ns, "127.0.0.1".parse()?)?;
    etcd.put(
        "/calico/resources/v3/projectcalico.org/bgppeers/tor",
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor","creationTimestamp":null},"spec":{"peerIP":"10.0.0.254","asNumber":65000}}"#,
    )?;
    let mut cmd = ns.command(manul_node()?);
    cmd.env("NODENAME", "host-a")
        .env("IP", "10.0.0.5/24")
        .env("ETCD_ENDPOINTS", "http://127.0.0.1:2379")
        .env("NO_DEFAULT_POOLS", "true");
    let logs = scratch::run().tempdir("ctl-agent")?;
    cmd.env("MANUL_MTU_FILE", logs.path().join("mtu"));
    let _agent = Daemon::spawn("manul-node", cmd, &logs.path().join("agent.log"))?;
    let ctl = |args: &[&str]| -> Result<(bool, String, String)> {
        let out = ns
            .command(env!("CARGO_BIN_EXE_manulctl"))
            .args(args)
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let json = wait_until(Duration::from_secs(30), "the peer in node status", || {
        let (ok, out, err) = ctl(&["node", "status", "-o", "json"]).map_err(|e| e.to_string())?;
        if !ok {
            return Err(err);
        }
        let v: NodeStatus = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        if v.routing.peers.len() == 1 {
            Ok(v)
        } else {
            Err(out)
        }
    });
    let peer = &json.routing.peers[0];
    assert_eq!(peer.address.to_string(), "10.0.0.254");
    assert_eq!(peer.kind, PeerType::Global);
    assert_eq!(peer.asn, Some(65000));
    ensure!(peer.state != State::Established);

    let (ok, table, err) = ctl(&["node", "status"])?;
    ensure!(ok, "{err}");
    for want in ["PEER ADDRESS", "10.0.0.254", "global", "65000", "in sync"] {
        ensure!(table.contains(want), "{want} missing in:\n{table}");
    }
    // No agent: exit 5 naming the address.
    let (ok, _, err) = ctl(&["node", "status", "--status-addr", "127.0.0.1:1"])?;
    ensure!(!ok && err.contains("127.0.0.1:1"), "{err}");
    Ok(())
}

#[test]
fn node_status_help_names_the_endpoint() -> Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_manulctl"))
        .args(["node", "status", "--help"])
        .output()
        .context("manulctl")?;
    let help = String::from_utf8_lossy(&out.stdout);
    ensure!(help.contains("127.0.0.1:9099"), "{help}");
    Ok(())
}
