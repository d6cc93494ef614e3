//! Running the real binaries in lab hosts: manul-node agents, manul-cni
//! calls, Established sessions from an agent's `/status` (the harness's
//! [`manul_tests::node`] with this benchmark's settings), route changes
//! seen by `ip monitor`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use manul_tests::{Daemon, Host, Netns, node};
use serde_json::Value;

/// manul-node in `host` against `endpoint`, logged under `logs` (warnings
/// only, unless `CONVERGENCE_RUST_LOG` says otherwise: a `RUST_LOG` value
/// for the agents, to see where their time goes).
pub fn agent(bins: &Path, host: &Host, endpoint: &str, logs: &Path) -> Result<Daemon> {
    let log = std::env::var("CONVERGENCE_RUST_LOG").unwrap_or_else(|_| "warn".into());
    let env = [("NO_DEFAULT_POOLS", "true"), ("RUST_LOG", log.as_str())];
    node::agent(&bins.join("manul-node"), host, endpoint, logs, &env)
}

/// Established peers of the agent in `ns`.
pub fn established(ns: &Netns) -> usize {
    node::status(ns)
        .ok()
        .and_then(|s| serde_json::from_value::<manul_status::NodeStatus>(s).ok())
        .map_or(0, |s| s.routing.established())
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
    node::cni(&bins.join("manul-cni"), host, cmd, id, pod, endpoint)
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
