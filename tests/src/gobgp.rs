//! A real GoBGP daemon (`gobgpd`) inside a test namespace.
//!
//! Configuration is gobgpd's TOML, given whole by the caller. The gRPC API
//! listens on a unix socket in a scratch dir (so several gobgpd may share a
//! namespace and nothing listens on a TCP port besides BGP); the `gobgp` CLI
//! talks to it there. GoBGP has no kernel FIB export unless zebra is
//! configured, which the harness never does. Stopped on drop.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::scratch::{self, ScratchDir};
use crate::{Daemon, Netns, try_wait_until};

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running gobgpd; stopped on drop.
#[derive(Debug)]
pub struct Gobgp {
    daemon: Daemon,
    target: String,
    ns: Netns,
    dir: ScratchDir,
}

impl Gobgp {
    /// Start gobgpd in `ns` with a TOML configuration; returns once its API answers.
    pub fn start(ns: &Netns, toml_config: &str) -> Result<Self> {
        Self::start_with_args(ns, toml_config, &[])
    }

    /// [`Gobgp::start`] with extra gobgpd arguments (`-r`: restarting, for
    /// graceful restart).
    pub fn start_with_args(ns: &Netns, toml_config: &str, args: &[&str]) -> Result<Self> {
        crate::require::bin("gobgpd")?;
        crate::require::bin("gobgp")?;
        let dir = scratch::run().tempdir("gobgp")?;
        let conf = dir.path().join("gobgpd.toml");
        std::fs::write(&conf, toml_config).context("writing gobgpd.toml")?;
        let socket = dir.path().join("gobgp.sock");
        let target = format!("unix://{}", socket.display());
        let mut cmd = ns.command("gobgpd");
        cmd.arg("-f")
            .arg(&conf)
            .args(["-t", "toml", "-p", "-l", "info", "--pprof-disable"])
            .args(args)
            .arg(format!("--api-hosts={target}"));
        let daemon = Daemon::spawn("gobgpd", cmd, &dir.path().join("gobgpd.log"))?;
        let mut gobgp = Gobgp {
            daemon,
            target,
            ns: ns.clone(),
            dir,
        };
        try_wait_until(START_TIMEOUT, "gobgpd's API", || {
            gobgp
                .daemon
                .ensure_running()
                .map_err(|e| format!("{e:#}"))?;
            gobgp.cli(&["global"]).map_err(|e| format!("{e:#}"))
        })
        .map_err(|e| anyhow!("{e}\nconfig:\n{toml_config}"))?;
        Ok(gobgp)
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Scratch dir holding gobgpd.toml, the API socket and gobgpd.log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Run a `gobgp` CLI command against this daemon; its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = std::process::Command::new("gobgp");
        cmd.arg("--target").arg(&self.target).args(args);
        crate::netns::output_of(cmd, &format!("gobgp {}", args.join(" ")))
    }

    /// `gobgp neighbor` (the table of peers).
    pub fn neighbors(&self) -> Result<String> {
        self.cli(&["neighbor"])
    }

    /// Session state of neighbor `addr`, lower case (`established`, `active`...).
    pub fn neighbor_state(&self, addr: &str) -> Result<String> {
        let json: Value = serde_json::from_str(&self.cli(&["neighbor", addr, "-j"])?)
            .context("parsing `gobgp neighbor -j`")?;
        session_state(&json).ok_or_else(|| anyhow!("no session state in {json}"))
    }

    /// Wait until neighbor `addr` is Established; the error quotes the
    /// neighbor table and the log tail.
    pub fn wait_established(&self, addr: &str, timeout: Duration) -> Result<()> {
        try_wait_until(
            timeout,
            &format!("GoBGP neighbor {addr} established"),
            || match self.neighbor_state(addr) {
                Ok(s) if s == "established" => Ok(()),
                Ok(s) => Err(s),
                Err(e) => Err(format!("{e:#}")),
            },
        )
        .map_err(|e| {
            let table = self.neighbors().unwrap_or_default();
            anyhow!("{e}\n{table}\nlog:\n{}", self.daemon.log_tail(20))
        })
    }

    /// Prefixes in the global RIB for `family` (`ipv4`, `ipv6`), sorted.
    pub fn rib_prefixes(&self, family: &str) -> Result<Vec<String>> {
        let out = self.cli(&["global", "rib", "-a", family, "-j"])?;
        let json: Value = serde_json::from_str(&out).context("parsing `gobgp global rib -j`")?;
        Ok(rib_prefixes(&json))
    }

    /// Wait until `prefix` is in the global RIB of `family`.
    pub fn wait_route(&self, family: &str, prefix: &str, timeout: Duration) -> Result<()> {
        try_wait_until(timeout, &format!("GoBGP to learn {prefix}"), || {
            let rib = self.rib_prefixes(family).map_err(|e| format!("{e:#}"))?;
            if rib.iter().any(|p| p == prefix) {
                Ok(())
            } else {
                Err(format!("{rib:?}"))
            }
        })?;
        Ok(())
    }

    /// Originate `prefix` from this daemon (`gobgp global rib add`).
    pub fn add_route(&self, prefix: &str, family: &str) -> Result<()> {
        self.cli(&["global", "rib", "add", "-a", family, prefix])
            .map(drop)
    }
}

/// `state.session_state` of `gobgp neighbor <addr> -j`, as a lower-case word.
/// GoBGP prints it as a number (BGP FSM states, 1 = idle .. 6 = established)
/// or a name depending on the version.
pub fn session_state(json: &Value) -> Option<String> {
    let s = json.get("state")?.get("session_state")?;
    const NAMES: [&str; 7] = [
        "unknown",
        "idle",
        "connect",
        "active",
        "opensent",
        "openconfirm",
        "established",
    ];
    match s {
        Value::Number(n) => NAMES.get(n.as_u64()? as usize).map(|s| s.to_string()),
        Value::String(s) => Some(s.trim_start_matches("SESSION_STATE_").to_lowercase()),
        _ => None,
    }
}

/// Keys of the `gobgp global rib -j` object (prefix -> paths), sorted.
pub fn rib_prefixes(json: &Value) -> Vec<String> {
    let mut v: Vec<String> = json
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}
