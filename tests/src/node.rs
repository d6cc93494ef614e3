//! manul's own binaries run in lab hosts as a cluster runs them: a
//! manul-node agent per host, manul-cni called as a container runtime
//! calls it, and the agent's local HTTP endpoint read back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::{Daemon, Host, Netns};

/// The agent's HTTP endpoint in its host (loopback).
const AGENT_HTTP: (&str, u16) = ("127.0.0.1", 9099);

/// Where Calico's v3 resources live in etcd.
pub const RES: &str = "/calico/resources/v3/projectcalico.org";

/// The pool the lab uses (the value of `{RES}/ippools/pool`):
/// 10.65.0.0/16 in /26 blocks, no encapsulation.
pub fn pool_json() -> &'static str {
    r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"pool","creationTimestamp":null},"spec":{"cidr":"10.65.0.0/16","blockSize":26,"ipipMode":"Never","vxlanMode":"Never","nodeSelector":"all()"}}"#
}

/// A global BGPPeer to the top-of-rack router `tor` in AS 65000 (the
/// value of `{RES}/bgppeers/tor`).
pub fn tor_peer_json(tor: &Host) -> String {
    format!(
        r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tor","creationTimestamp":null}},"spec":{{"peerIP":"{}","asNumber":65000}}}}"#,
        tor.ipv4
    )
}

/// BIRD's configuration for the top-of-rack router `tor` (AS 65000): an
/// eBGP session to each of `hosts` (Calico's default AS, 64512),
/// importing everything, exporting nothing.
pub fn tor_bird_conf(tor: &Host, hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| {
            format!(
                "protocol bgp {} {{ local {} as 65000; neighbor {} as 64512; ipv4 {{ import all; export none; }}; }}\n",
                h.name, tor.ipv4, h.ipv4
            )
        })
        .collect()
}

/// Where [`agent`] has host `host`'s manul-node write its pod MTU (its
/// `MANUL_MTU_FILE`: agents sharing this machine's filesystem need one
/// each, and tests leave the machine's `/var/lib/calico/mtu` alone).
pub fn mtu_file(logs: &Path, host: &str) -> std::path::PathBuf {
    logs.join(format!("{host}.mtu"))
}

/// manul-node (`bin`) in `host`, as `<ipv4>/24`, against the etcd at
/// `endpoint`, logging at info level, its pod MTU written to
/// [`mtu_file`], with `env` on top; logged to `logs/<host>.log`.
pub fn agent(
    bin: &Path,
    host: &Host,
    endpoint: &str,
    logs: &Path,
    env: &[(&str, &str)],
) -> Result<Daemon> {
    let mut cmd = host.ns.command(bin);
    cmd.env("NODENAME", &host.name)
        .env("IP", format!("{}/24", host.ipv4))
        .env("ETCD_ENDPOINTS", endpoint)
        .env("MANUL_MTU_FILE", mtu_file(logs, &host.name))
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon::spawn(
        &format!("manul-node-{}", host.name),
        cmd,
        &logs.join(format!("{}.log", host.name)),
    )
}

/// GET `path` from the agent's endpoint in `ns`: the body.
pub fn get(ns: &Netns, path: &str) -> Result<String> {
    ns.run(|| -> Result<String> {
        let mut s = TcpStream::connect(AGENT_HTTP)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.split("\r\n\r\n").nth(1).context("no body")?.to_string())
    })
}

/// The agent's `/status` in `ns`, as JSON.
pub fn status(ns: &Netns) -> Result<Value> {
    Ok(serde_json::from_str(&get(ns, "/status")?)?)
}

/// manul-cni (`bin`) `cmd` (ADD, DEL, ...) for pod `id` in namespace
/// `pod` on `host`, IPv4 from the etcd at `endpoint`, called the way a
/// container runtime calls it; its JSON result (`Null` when it prints
/// nothing). A failed call is an error with what it printed.
pub fn cni(
    bin: &Path,
    host: &Host,
    cmd: &str,
    id: &str,
    pod: &Netns,
    endpoint: &str,
) -> Result<Value> {
    cni_call(
        host.ns.command(bin),
        &host.name,
        cmd,
        id,
        &pod.path(),
        endpoint,
    )
}

/// [`cni`] with the plugin's command given (`plugin`: manul-cni, set to
/// run in the node `node`'s network namespace) and the pod's namespace
/// by path: for hosts the harness did not make (`scripts/lab`'s).
pub fn cni_call(
    plugin: std::process::Command,
    node: &str,
    cmd: &str,
    id: &str,
    pod: &Path,
    endpoint: &str,
) -> Result<Value> {
    cni_call_with(plugin, node, cmd, id, pod, endpoint, &[])
}

/// [`cni_call`] with more keys in the network configuration (e.g.
/// `mtu_file`: where the node's agent writes the pod MTU, [`mtu_file`];
/// `mtu`).
pub fn cni_call_with(
    mut plugin: std::process::Command,
    node: &str,
    cmd: &str,
    id: &str,
    pod: &Path,
    endpoint: &str,
    extra: &[(&str, Value)],
) -> Result<Value> {
    let mut conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "manul-cni",
        "etcd_endpoints": endpoint, "nodename": node,
        "ipam": {"assign_ipv4": "true"},
    });
    for (k, v) in extra {
        conf[*k] = v.clone();
    }
    let conf = conf.to_string();
    let mut child = plugin
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", pod)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={id}"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(conf.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(out.status.success(), "CNI {cmd} {id} failed: {text}");
    Ok(if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

/// Wait at most `timeout` until the routes manul's felix owns in `host`
/// (`ip route show proto 80`) hold a line containing `want`.
pub fn wait_felix_route(host: &Host, want: &str, timeout: Duration) {
    crate::wait_until(timeout, &format!("{}: {want}", host.name), || {
        let routes = host
            .ns
            .ip(&["route", "show", "proto", "80"])
            .map_err(|e| e.to_string())?;
        if routes.contains(want) {
            Ok(())
        } else {
            Err(routes)
        }
    });
}
