//! manul-node as a host runs it: the real binary in a namespace the test
//! creates, against a real etcd on that namespace's loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use manul_status::{EbpfMode, NodeStatus};
use manul_tests::{Daemon, Etcd, Need, Netns, require, scratch, wait_until};
use serde_json::Value;

/// manul-node as a harness daemon: logged, stopped on drop, swept if the
/// test is killed.
fn spawn(mut cmd: Command, label: &str) -> Result<(Daemon, scratch::ScratchDir)> {
    let dir = scratch::run().tempdir(label)?;
    // The pod MTU goes to the test's scratch, not the machine's file.
    cmd.env("MANUL_MTU_FILE", dir.path().join("mtu"));
    let d = Daemon::spawn(label, cmd, &dir.path().join("agent.log"))?;
    Ok((d, dir))
}

fn get(ns: &Netns, port: u16, path: &str) -> Result<(u16, String)> {
    ns.run(|| -> Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let code = out
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((code, body))
    })
}

fn ready(ns: &Netns, port: u16) -> Result<(), String> {
    match get(ns, port, "/readiness") {
        Ok((200, _)) => Ok(()),
        Ok((c, b)) => Err(format!("{c} {b}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn registers_the_node_creates_the_default_pool_and_serves_status() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let ns = Netns::new("node")?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])?;
    ns.link_up("eth0")?;
    ns.add_addr("eth0", "10.0.0.5/24")?;
    ns.ip(&[
        "link", "add", "docker0", "type", "veth", "peer", "name", "docker0p",
    ])?;
    ns.add_addr("docker0", "172.17.0.1/16")?;
    let etcd = Etcd::start_in(&ns, "127.0.0.1".parse()?)?;
    let port = 9099;
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_manul-node"));
    cmd.env("NODENAME", "host-a")
        .env("IP", "autodetect")
        .env("IP_AUTODETECTION_METHOD", "interface=eth.*")
        .env("AS", "65001")
        .env("ETCD_ENDPOINTS", "http://127.0.0.1:2379")
        .env("CALICO_IPV4POOL_CIDR", "10.65.0.0/16");
    let (mut agent, _logs) = spawn(cmd, "agent-a")?;
    wait_until(Duration::from_secs(20), "the agent is ready", || {
        ready(&ns, port)
    });
    let node: Value = serde_json::from_str(
        &etcd
            .get("/calico/resources/v3/projectcalico.org/nodes/host-a")?
            .context("no Node")?,
    )?;
    assert_eq!(node["spec"]["bgp"]["ipv4Address"], "10.0.0.5/24");
    assert_eq!(node["spec"]["bgp"]["asNumber"], 65001);
    let pool: Value = serde_json::from_str(
        &etcd
            .get("/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool")?
            .context("no default pool")?,
    )?;
    assert_eq!(pool["spec"]["cidr"], "10.65.0.0/16");
    assert_eq!(pool["spec"]["blockSize"], 26);

    let (code, body) = get(&ns, port, "/status")?;
    assert_eq!(code, 200);
    let status: NodeStatus = serde_json::from_str(&body)?;
    assert_eq!(status.node, "host-a");
    assert!(status.datastore.in_sync);
    assert_eq!(get(&ns, port, "/liveness")?.0, 200);
    assert_eq!(get(&ns, port, "/nope")?.0, 404);

    // SIGTERM: a clean, logged exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    wait_until(
        Duration::from_secs(10),
        "the agent exits on SIGTERM",
        || {
            if agent.is_running() {
                Err(agent.log_tail(5))
            } else {
                Ok(())
            }
        },
    );
    let exit = agent.ensure_running().unwrap_err().to_string();
    ensure!(exit.contains("exit status: 0"), "{exit}");
    ensure!(exit.contains("SIGTERM: stopping"), "{exit}");
    Ok(())
}

#[test]
fn an_existing_pool_is_kept_and_no_default_pools_is_honoured() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let ns = Netns::new("node2")?;
    let etcd = Etcd::start_in(&ns, "127.0.0.1".parse()?)?;
    let out = ns
        .command(env!("CARGO_BIN_EXE_manul-node"))
        .args(["--help"])
        .output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    ensure!(
        help.contains("[env: NO_DEFAULT_POOLS=]") || help.contains("env: NO_DEFAULT_POOLS"),
        "{help}"
    );
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_manul-node"));
    cmd.env("NODENAME", "host-b")
        .env("IP", "10.0.0.6/24")
        .env("NO_DEFAULT_POOLS", "true")
        .env("ETCD_ENDPOINTS", "http://127.0.0.1:2379")
        .env("MANUL_STATUS_LISTEN", "127.0.0.1:9100");
    let (_agent, _logs) = spawn(cmd, "agent-b")?;
    wait_until(Duration::from_secs(20), "the agent is ready", || {
        ready(&ns, 9100)
    });
    ensure!(
        etcd.get("/calico/resources/v3/projectcalico.org/nodes/host-b")?
            .is_some()
    );
    let pools = etcd.etcdctl(&[
        "get",
        "--prefix",
        "--keys-only",
        "/calico/resources/v3/projectcalico.org/ippools/",
    ])?;
    ensure!(pools.trim().is_empty(), "a pool was created: {pools}");
    Ok(())
}

/// With `FELIX_BPFENABLED` the agent runs felix's eBPF dataplane: /status
/// says so, /metrics carries its series, and `manul-node --cleanup`
/// removes everything it pinned.
#[test]
fn the_agent_runs_the_ebpf_dataplane_and_cleanup_removes_it() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let ns = Netns::new("nodebpf")?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])?;
    ns.link_up("eth0")?;
    ns.add_addr("eth0", "10.0.0.7/24")?;
    let _etcd = Etcd::start_in(&ns, "127.0.0.1".parse()?)?;
    let pins = manul_tests::PinDir::new("node")?;
    let pin_dir = pins.path().to_string_lossy().into_owned();
    let port = 9101;
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_manul-node"));
    cmd.env("NODENAME", "host-e")
        .env("IP", "10.0.0.7/24")
        .env("ETCD_ENDPOINTS", "http://127.0.0.1:2379")
        .env("CALICO_IPV4POOL_CIDR", "10.66.0.0/16")
        .env("MANUL_STATUS_LISTEN", format!("127.0.0.1:{port}"))
        .env("FELIX_BPFENABLED", "true")
        .env("MANUL_BPF_PIN_DIR", &pin_dir);
    let (mut agent, _logs) = spawn(cmd, "agent-e")?;
    wait_until(
        Duration::from_secs(30),
        "the agent runs the eBPF dataplane",
        || -> Result<(), String> {
            let (_, body) = get(&ns, port, "/status").map_err(|e| e.to_string())?;
            let status: NodeStatus = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            let ebpf = &status.ebpf;
            // The uplink program is on eth0 (it holds the node's address).
            if ebpf.mode == EbpfMode::Ebpf && ebpf.attached_interfaces >= 1 {
                Ok(())
            } else {
                Err(format!("{ebpf:?}"))
            }
        },
    );
    let (_, metrics) = get(&ns, port, "/metrics")?;
    ensure!(
        metrics.contains("manul_ebpf_"),
        "no eBPF series:\n{metrics}"
    );
    ensure!(
        std::fs::read_dir(pins.path())?.next().is_some(),
        "nothing pinned under {pin_dir}"
    );

    // SIGTERM leaves the dataplane; --cleanup removes it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    wait_until(Duration::from_secs(10), "the agent exits", || {
        if agent.is_running() {
            Err(agent.log_tail(5))
        } else {
            Ok(())
        }
    });
    ensure!(pins.path().exists(), "SIGTERM removed the pins");
    let out = ns
        .command(env!("CARGO_BIN_EXE_manul-node"))
        .arg("--cleanup")
        .env("MANUL_BPF_PIN_DIR", &pin_dir)
        .output()?;
    ensure!(
        out.status.success(),
        "--cleanup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(pins.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    ensure!(left.is_empty(), "left under {pin_dir}: {left:?}");
    Ok(())
}
