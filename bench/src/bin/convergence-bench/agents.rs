//! Running the real binaries in lab hosts: manul-node agents, manul-cni
//! calls, an agent's `/status`, route changes seen by `ip monitor`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use manul_tests::{Daemon, Host, Netns};
use serde_json::Value;

/// manul-node in `host` against `endpoint`, logged under `logs`.
pub fn agent(bins: &Path, host: &Host, endpoint: &str, logs: &Path) -> Result<Daemon> {
    let mut cmd = host.ns.command(bins.join("manul-node"));
    cmd.env("NODENAME", &host.name)
        .env("IP", format!("{}/24", host.ipv4))
        .env("ETCD_ENDPOINTS", endpoint)
        .env("NO_DEFAULT_POOLS", "true")
        .env("RUST_LOG", "warn");
    Daemon::spawn(
        &format!("manul-node-{}", host.name),
        cmd,
        &logs.join(format!("{}.log", host.name)),
    )
}

/// `/status` of the agent in `ns`.
pub fn status(ns: &Netns) -> Result<Value> {
    ns.run(|| -> Result<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", 9099))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(serde_json::from_str(
            out.split("\r\n\r\n").nth(1).context("no body")?,
        )?)
    })
}

/// Established peers of the agent in `ns`.
pub fn established(ns: &Netns) -> usize {
    status(ns)
        .ok()
        .and_then(|s| {
            s["routing"]["peers"]
                .as_array()
                .map(|p| p.iter().filter(|p| p["state"] == "Established").count())
        })
        .unwrap_or(0)
}

/// manul-cni `cmd` for pod `id` (namespace `pod`) on `host`; its result.
pub fn cni(
    bins: &Path,
    host: &Host,
    cmd: &str,
    id: &str,
    pod: &Netns,
    endpoint: &str,
) -> Result<Value> {
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"manul-cni","etcd_endpoints":"{endpoint}","nodename":"{}","ipam":{{"assign_ipv4":"true"}}}}"#,
        host.name
    );
    let mut child = host
        .ns
        .command(bins.join("manul-cni"))
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", pod.path())
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

/// `ip monitor route` in a namespace: each line with the time it was read.
pub struct Monitor {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Monitor {
    /// Start watching `ns`'s routes.
    pub fn start(ns: &Netns) -> Result<Monitor> {
        let mut child = ns
            .command("ip")
            .args(["monitor", "route"])
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Ok(Monitor { child, lines })
    }

    /// Forget what was seen so far.
    pub fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// When a line starting with `prefix` (an add when `added`, else a
    /// `Deleted` line) shows up, within `timeout`.
    pub fn wait(&self, prefix: &str, added: bool, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let want = if added {
            format!("{prefix} ")
        } else {
            format!("Deleted {prefix} ")
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("no route change for {prefix} within {timeout:?}"))?;
            if line.starts_with(&want) {
                return Ok(at);
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
