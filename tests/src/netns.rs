//! Network namespaces as test hosts: create, link, address, run inside, tear down.
//!
//! A [`Netns`] is a named namespace (`ip netns add`, so it shows in `ip netns
//! list` and can be entered with `nsenter --net=/run/netns/<name>`). Names are
//! unique per test process and machine (`m<pid>-<n>-<label>`), so parallel
//! tests never collide. Cloning a `Netns` shares it; the namespace, and every
//! process still inside it, goes away when the last clone drops — also while
//! a failing test unwinds. See [`crate::scratch`] for processes that die
//! without unwinding.
//!
//! Code runs inside with `setns(2)` — on a dedicated thread for closures
//! ([`Netns::run`]), in the child before `exec` for commands
//! ([`Netns::command`]) — never with `ip netns exec`, which remounts `/sys`
//! and hides `/sys/fs/bpf`.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

use crate::scratch;

/// A network namespace owned by the test. Clones share it.
#[derive(Debug, Clone)]
pub struct Netns {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    /// Open handle on `/run/netns/<name>`, the target of every `setns`.
    file: File,
}

impl Netns {
    /// Create a namespace named after `label` (made unique), with `lo` up.
    pub fn new(label: &str) -> Result<Self> {
        crate::require::bin("ip")?;
        let run = scratch::run();
        let name = run.unique_name(label);
        run.mark_netns(&name)?;
        if let Err(e) = ip(&["netns", "add", &name]) {
            run.unmark_netns(&name);
            return Err(e.context(format!("creating network namespace {name}")));
        }
        let path = PathBuf::from("/run/netns").join(&name);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                scratch::delete_namespace(&name);
                run.unmark_netns(&name);
                return Err(e).with_context(|| format!("opening {}", path.display()));
            }
        };
        let ns = Netns {
            inner: Arc::new(Inner { name, file }),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `/run/netns/<name>`, for `nsenter --net=<path>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(self.name())
    }

    /// Run `f` inside the namespace on a dedicated thread and return its
    /// result; a panic in `f` is re-raised here. The closure may borrow.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = self.inner.file.as_fd();
        std::thread::scope(|s| {
            let handle = s.spawn(move || {
                setns(fd, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns into {}: {e}", self.name()));
                f()
            });
            handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// A command that runs inside the namespace (setns in the child before exec).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let inner = Arc::clone(&self.inner);
        // SAFETY: the hook only calls setns(2), which is async-signal-safe,
        // and touches no memory shared with the parent besides a read of the
        // fd number held alive by `inner`.
        unsafe {
            cmd.pre_exec(move || {
                setns(inner.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
        cmd
    }

    /// Run a program inside and return its stdout; an error quotes its stderr.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(program);
        cmd.args(args);
        output_of(
            cmd,
            &format!("{program} {} (in {})", args.join(" "), self.name()),
        )
    }

    /// `ip <args>` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Add an address (`10.0.0.1/24`, `fd00::1/64`) to a device. IPv6
    /// addresses skip duplicate address detection so they work at once.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    pub fn link_up(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "up"]).map(drop)
    }

    /// Set a sysctl of this namespace (`net.ipv4.ip_forward`, ...); the
    /// `net.*` tree under /proc/sys is per namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value))
            .with_context(|| format!("sysctl {key}={value} in {}", self.name()))
    }

    /// A veth pair: `dev` here, `peer_dev` in `peer`, both up. Both ends are
    /// created directly in their namespaces, so device names only need to be
    /// unique inside each namespace.
    pub fn veth(&self, dev: &str, peer: &Netns, peer_dev: &str) -> Result<()> {
        ip(&[
            "link",
            "add",
            "name",
            dev,
            "netns",
            self.name(),
            "type",
            "veth",
            "peer",
            "name",
            peer_dev,
            "netns",
            peer.name(),
        ])
        .with_context(|| format!("veth {}:{dev} <-> {}:{peer_dev}", self.name(), peer.name()))?;
        self.link_up(dev)?;
        peer.link_up(peer_dev)
    }

    /// A Linux bridge `name` in this namespace, up.
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        self.ip(&["link", "add", name, "type", "bridge"])?;
        self.link_up(name)
    }

    /// Enslave `dev` (in this namespace) to bridge `bridge`.
    pub fn attach_to_bridge(&self, dev: &str, bridge: &str) -> Result<()> {
        self.ip(&["link", "set", dev, "master", bridge]).map(drop)
    }

    /// Send `count` pings (0.2 s apart) to `addr` from inside; `Ok` if any
    /// was answered within a second.
    pub fn ping(&self, addr: std::net::IpAddr, count: u32) -> Result<()> {
        let count = count.to_string();
        let addr = addr.to_string();
        self.exec(
            "ping",
            &["-n", "-q", "-i", "0.2", "-c", &count, "-W", "1", &addr],
        )
        .map(drop)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Processes left inside (a daemon whose owner leaked it, a ping) are
        // ours: the namespace is.
        scratch::kill_namespace_processes(&self.name);
        scratch::delete_namespace(&self.name);
        scratch::run().unmark_netns(&self.name);
    }
}

/// `ip` in the current namespace; stdout, or an error quoting stderr.
fn ip(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    output_of(cmd, &format!("ip {}", args.join(" ")))
}

/// Run a command to completion; stdout on success, otherwise an error naming
/// the command, its exit status and its stderr.
pub(crate) fn output_of(mut cmd: Command, what: &str) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}): {}{}",
            String::from_utf8_lossy(&stderr).trim(),
            String::from_utf8_lossy(&stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}
