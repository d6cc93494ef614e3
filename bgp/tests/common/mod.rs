//! `manul-bgpd` run as a test daemon inside a namespace, with its status
//! socket read as JSON.

#![allow(dead_code)] // each test binary uses part of this

pub mod raw;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use manul_tests::scratch::{self, ScratchDir};
use manul_tests::{Daemon, Netns, try_wait_until};
use serde_json::Value;

pub struct Bgpd {
    pub daemon: Daemon,
    pub status: PathBuf,
    pub config: PathBuf,
    pub dir: ScratchDir,
    pub ns: Netns,
}

impl Bgpd {
    /// Start manul-bgpd in `ns`; `config` gets a `status` line added.
    pub fn start(ns: &Netns, config: &str) -> Result<Self> {
        Self::start_with(ns, config, &[])
    }

    pub fn start_with(ns: &Netns, config: &str, args: &[&str]) -> Result<Self> {
        let dir = scratch::run().tempdir("bgpd")?;
        let status = dir.path().join("status.sock");
        let conf_path = dir.path().join("bgpd.toml");
        std::fs::write(
            &conf_path,
            format!("status = {:?}\n{config}", status.display().to_string()),
        )?;
        let daemon = spawn(ns, &conf_path, &dir, args)?;
        let mut bgpd = Bgpd {
            daemon,
            status,
            config: conf_path,
            dir,
            ns: ns.clone(),
        };
        bgpd.wait_ready()?;
        Ok(bgpd)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let status = self.status.clone();
        let daemon = &mut self.daemon;
        try_wait_until(
            Duration::from_secs(10),
            "manul-bgpd's status socket",
            || {
                daemon.ensure_running().map_err(|e| format!("{e:#}"))?;
                query(&status, "summary").map_err(|e| format!("{e:#}"))
            },
        )
        .map_err(|e| anyhow!("{e}\nlog:\n{}", self.daemon.log_tail(30)))?;
        Ok(())
    }

    /// Kill it (SIGKILL) or stop it (SIGTERM), then start it again with the
    /// same configuration and extra arguments.
    /// `SIGCONT` restarts a daemon that has already exited.
    pub fn restart(&mut self, signal: nix::sys::signal::Signal, args: &[&str]) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.daemon.pid() as i32);
        if signal != nix::sys::signal::Signal::SIGCONT {
            let _ = nix::sys::signal::kill(pid, signal);
        }
        try_wait_until(Duration::from_secs(10), "manul-bgpd to exit", || {
            if self.daemon.is_running() {
                Err("running")
            } else {
                Ok(())
            }
        })?;
        self.daemon = spawn(&self.ns, &self.config, &self.dir, args)?;
        self.wait_ready()
    }

    pub fn query(&self, command: &str) -> Result<Value> {
        query(&self.status, command)
    }

    /// The Loc-RIB entry for `prefix`, if any.
    pub fn route(&self, prefix: &str) -> Result<Option<Value>> {
        let routes = self.query("routes")?;
        Ok(routes["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["prefix"] == prefix)
            .cloned())
    }

    pub fn peer(&self, address: &str) -> Result<Value> {
        let peers = self.query("peers")?;
        peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["address"] == address)
            .cloned()
            .ok_or_else(|| anyhow!("no peer {address} in {peers}"))
    }

    /// Wait until the Loc-RIB has `prefix`; its entry.
    pub fn wait_route(&self, prefix: &str, timeout: Duration) -> Result<Value> {
        Ok(try_wait_until(
            timeout,
            &format!("manul to learn {prefix}"),
            || {
                self.route(prefix)
                    .map_err(|e| format!("{e:#}"))?
                    .ok_or("absent".to_string())
            },
        )?)
    }

    /// Wait until the Loc-RIB no longer has `prefix`.
    pub fn wait_no_route(&self, prefix: &str, timeout: Duration) -> Result<()> {
        try_wait_until(timeout, &format!("manul to drop {prefix}"), || {
            match self.route(prefix).map_err(|e| format!("{e:#}"))? {
                None => Ok(()),
                Some(r) => Err(r.to_string()),
            }
        })?;
        Ok(())
    }

    /// Wait until peer `address` is Established.
    pub fn wait_established(&self, address: &str, timeout: Duration) -> Result<()> {
        try_wait_until(
            timeout,
            &format!("manul-bgpd peer {address} Established"),
            || match self.peer(address) {
                Ok(p) if p["state"] == "Established" => Ok(()),
                Ok(p) => Err(p.to_string()),
                Err(e) => Err(format!("{e:#}")),
            },
        )
        .map_err(|e| anyhow!("{e}\nlog:\n{}", self.daemon.log_tail(30)))
    }
}

fn spawn(ns: &Netns, conf: &std::path::Path, dir: &ScratchDir, args: &[&str]) -> Result<Daemon> {
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_manul-bgpd"));
    cmd.args(args)
        .arg(conf)
        .env("RUST_LOG", "manul_bgp=debug,info");
    Daemon::spawn("manul-bgpd", cmd, &dir.path().join("bgpd.log"))
}

fn query(path: &std::path::Path, command: &str) -> Result<Value> {
    let mut s =
        UnixStream::connect(path).with_context(|| format!("connecting {}", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    serde_json::from_str(&out).with_context(|| format!("status reply {out:?}"))
}

/// Run `body` on a tokio runtime built inside `ns`: its threads, and so
/// every socket an in-process speaker opens, live in that namespace.
pub fn run_in<T: Send>(
    ns: &Netns,
    body: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    ns.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(body)
    })
}

/// An in-process speaker's configuration: one listen address, the rest default.
pub fn speaker_config(
    router_id: &str,
    asn: u32,
    listen: &str,
    multipath: bool,
) -> manul_bgp::speaker::SpeakerConfig {
    manul_bgp::speaker::SpeakerConfig {
        router_id: router_id.parse().expect("router ID literal"),
        asn,
        listen: vec![listen.parse().expect("listen address literal")],
        cluster_id: None,
        graceful_restart: manul_bgp::speaker::GracefulRestartConfig::default(),
        multipath,
        listen_ranges: Vec::new(),
    }
}

/// Two namespaces on one veth: `a` = 10.77.0.1 / fd00:77::1, `b` = .2 / ::2.
pub fn pair() -> Result<(Netns, Netns)> {
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", "10.77.0.1/24")?;
    b.add_addr("eth0", "10.77.0.2/24")?;
    a.add_addr("eth0", "fd00:77::1/64")?;
    b.add_addr("eth0", "fd00:77::2/64")?;
    Ok((a, b))
}
