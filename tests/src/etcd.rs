//! A real etcd server (one member, or a cluster) for integration tests.
//!
//! Members listen on free 127.0.0.1 ports (or on a given address inside a
//! [`Netns`]), keep their data in a scratch temp dir, and are stopped on drop.
//! A cluster member can be stopped and restarted with its data, to test
//! outages and leader loss.
//!
//! [`Etcd::start_tls`]: one member serving clients over `https://` only,
//! with certificates made at test time ([`TlsFiles`]) and client
//! certificates required (`--client-cert-auth`). Its health is probed on a
//! plain-HTTP metrics URL on 127.0.0.1 (`--listen-metrics-urls`), which
//! serves no keys.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::scratch::{self, ScratchDir};
use crate::tls::TlsFiles;
use crate::{Daemon, Netns, try_wait_until};

/// How long a member gets to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts when a free port turns out taken by the time etcd binds it.
const START_ATTEMPTS: usize = 3;

#[derive(Debug)]
struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    /// Set: clients speak TLS, health is probed here (plain HTTP).
    metrics: Option<SocketAddr>,
    data_dir: PathBuf,
    daemon: Option<Daemon>,
}

impl Member {
    fn client_url(&self) -> String {
        match self.metrics {
            Some(_) => format!("https://{}", self.client),
            None => format!("http://{}", self.client),
        }
    }

    /// Where `GET /health` answers.
    fn health_addr(&self) -> SocketAddr {
        self.metrics.unwrap_or(self.client)
    }

    fn peer_url(&self) -> String {
        format!("http://{}", self.peer)
    }
}

/// One etcd member or a cluster of them. Stops every member on drop.
#[derive(Debug)]
pub struct Etcd {
    members: Vec<Member>,
    ns: Option<Netns>,
    token: String,
    tls: Option<TlsFiles>,
    // Last: members stop (Drop of Daemon) before their data dir goes.
    dir: ScratchDir,
}

impl Etcd {
    /// A single member on a free 127.0.0.1 port.
    pub fn start() -> Result<Self> {
        Self::start_cluster(1)
    }

    /// `n` members on free 127.0.0.1 ports, forming one cluster.
    pub fn start_cluster(n: usize) -> Result<Self> {
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let ports = free_ports(2 * n)?;
            let addrs: Vec<(SocketAddr, SocketAddr)> = ports
                .chunks(2)
                .map(|p| (loopback(p[0]), loopback(p[1])))
                .collect();
            match Self::launch(addrs, None, None) {
                Ok(etcd) => return Ok(etcd),
                // A port grabbed by someone else between our probe and etcd's
                // bind: try again with new ports.
                Err(e) if format!("{e:#}").contains("address already in use") => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    /// A single member on free 127.0.0.1 ports serving clients over TLS
    /// only, requiring a client certificate signed by the CA of
    /// [`Etcd::tls`] (see the module docs).
    pub fn start_tls() -> Result<Self> {
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let tls = TlsFiles::generate()?;
            let ports = free_ports(3)?;
            let addrs = vec![(loopback(ports[0]), loopback(ports[1]))];
            match Self::launch(addrs, None, Some((tls, loopback(ports[2])))) {
                Ok(etcd) => return Ok(etcd),
                Err(e) if format!("{e:#}").contains("address already in use") => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    /// A single member inside `ns`, on `ip`:2379 (peer port 2380).
    pub fn start_in(ns: &Netns, ip: IpAddr) -> Result<Self> {
        Self::launch(
            vec![(SocketAddr::new(ip, 2379), SocketAddr::new(ip, 2380))],
            Some(ns.clone()),
            None,
        )
    }

    /// The certificates of a member started by [`Etcd::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    fn launch(
        addrs: Vec<(SocketAddr, SocketAddr)>,
        ns: Option<Netns>,
        tls: Option<(TlsFiles, SocketAddr)>,
    ) -> Result<Self> {
        crate::require::bin("etcd")?;
        let (tls, metrics) = match tls {
            Some((t, m)) => (Some(t), Some(m)),
            None => (None, None),
        };
        let dir = scratch::run().tempdir("etcd")?;
        let token = scratch::run().unique_name("etcd");
        let members = addrs
            .into_iter()
            .enumerate()
            .map(|(i, (client, peer))| Member {
                name: format!("m{i}"),
                client,
                peer,
                metrics,
                data_dir: dir.path().join(format!("m{i}")),
                daemon: None,
            })
            .collect();
        let mut etcd = Etcd {
            members,
            ns,
            token,
            tls,
            dir,
        };
        for i in 0..etcd.members.len() {
            etcd.spawn_member(i)?;
        }
        for i in 0..etcd.members.len() {
            etcd.wait_healthy(i)?;
        }
        Ok(etcd)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn_member(&mut self, i: usize) -> Result<()> {
        let initial_cluster = self.initial_cluster();
        let m = &self.members[i];
        let mut cmd = match &self.ns {
            Some(ns) => ns.command("etcd"),
            None => Command::new("etcd"),
        };
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url()])
            .args(["--advertise-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial_cluster])
            // Ignored when the data dir exists (a restart): it rejoins as it was.
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        if let (Some(tls), Some(metrics)) = (&self.tls, m.metrics) {
            cmd.arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca_cert)
                .arg("--client-cert-auth")
                .args(["--listen-metrics-urls", &format!("http://{metrics}")]);
        }
        let log = self.dir.path().join(format!("{}.log", m.name));
        let daemon = Daemon::spawn(&format!("etcd {}", m.name), cmd, &log)?;
        self.members[i].daemon = Some(daemon);
        Ok(())
    }

    fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let addr = self.members[i].health_addr();
        let ns = self.ns.clone();
        let what = format!(
            "etcd member {} at {addr} to be healthy",
            self.members[i].name
        );
        let member = &mut self.members[i];
        let probe = || -> Result<(), String> {
            if let Some(d) = member.daemon.as_mut() {
                d.ensure_running().map_err(|e| format!("{e:#}"))?;
            }
            match &ns {
                Some(ns) => ns.run(|| health(addr)),
                None => health(addr),
            }
        };
        try_wait_until(START_TIMEOUT, &what, probe).map_err(|timeout| {
            let tail = member
                .daemon
                .as_ref()
                .map(|d| d.log_tail(20))
                .unwrap_or_default();
            anyhow::anyhow!("{timeout}\nlast log lines:\n{tail}")
        })
    }

    /// Client URL of the first member, e.g. `http://127.0.0.1:34567`.
    pub fn endpoint(&self) -> String {
        self.members[0].client_url()
    }

    /// Client URLs of every member, running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Client URL of member `i`.
    pub fn member_endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// Stop member `i` (SIGTERM); its data stays for [`Etcd::restart_member`].
    pub fn stop_member(&mut self, i: usize) {
        drop(self.members[i].daemon.take());
    }

    /// Start member `i` again from its data dir and wait until it is healthy.
    pub fn restart_member(&mut self, i: usize) -> Result<()> {
        if self.members[i].daemon.is_some() {
            bail!("etcd member {i} is already running");
        }
        self.spawn_member(i)?;
        self.wait_healthy(i)
    }

    /// Run `etcdctl` (API v3) against the running members; its stdout.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.daemon.is_some())
            .map(Member::client_url)
            .collect();
        self.etcdctl_at(&endpoints.join(","), args)
    }

    /// Run `etcdctl` against the given comma-separated endpoints.
    pub fn etcdctl_at(&self, endpoints: &str, args: &[&str]) -> Result<String> {
        crate::require::bin("etcdctl")?;
        let mut cmd = match &self.ns {
            Some(ns) => ns.command("etcdctl"),
            None => Command::new("etcdctl"),
        };
        cmd.env("ETCDCTL_API", "3");
        if let Some(tls) = &self.tls {
            cmd.arg("--cacert")
                .arg(&tls.ca_cert)
                .arg("--cert")
                .arg(&tls.client_cert)
                .arg("--key")
                .arg(&tls.client_key);
        }
        cmd.arg(format!("--endpoints={endpoints}"))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(args);
        crate::netns::output_of(cmd, &format!("etcdctl {}", args.join(" ")))
    }

    /// Put a key through etcdctl.
    pub fn put(&self, key: &str, value: &str) -> Result<()> {
        self.etcdctl(&["put", key, value]).map(drop)
    }

    /// Get a key's value through etcdctl; `None` when absent.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        let out = self.etcdctl(&["get", key, "--print-value-only"])?;
        Ok(out
            .strip_suffix('\n')
            .map(str::to_string)
            .filter(|_| !out.is_empty()))
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// `n` distinct ports free on 127.0.0.1 at the time of asking.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// `GET /health` over plain HTTP; `Err` says what came back instead of healthy.
fn health(addr: SocketAddr) -> Result<(), String> {
    let io = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    match io() {
        Ok(body) if body.contains(r#""health":"true""#) => Ok(()),
        Ok(body) => Err(body.lines().last().unwrap_or_default().to_string()),
        Err(e) => Err(e.to_string()),
    }
}
