//! The blaster and the sink as child processes inside namespaces, their
//! JSON event lines, and the polling loop every wait of the driver uses
//! (which also notices Ctrl-C, so an interrupted run still tears down).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use manul_tests::scratch::{self, ScratchDir};
use manul_tests::{Daemon, Netns};
use serde_json::Value;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Turn SIGINT/SIGTERM into an error at the next poll, so every namespace
/// and daemon is dropped (torn down) on the way out.
pub fn catch_signals() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(s, &action) }?;
    }
    Ok(())
}

/// Call `probe` every `every` until it returns `Some`, for at most `timeout`.
/// The wait after a probe is also at least `spacing` times its length: a
/// probe that costs the prober real work (GoBGP counts its Adj-RIB-In by
/// walking it, in its main loop) gets 9, so that it takes at most a tenth
/// of the time; cheap probes get 1.
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    spacing: u32,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted while waiting for {what}");
        }
        let asked = Instant::now();
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every.max(asked.elapsed() * spacing));
    }
}

/// A program next to this one (the workspace's target dir).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found: build with `cargo build --release -p manul-bgp -p manul-bench`",
            path.display()
        );
    }
    Ok(path)
}

/// The blaster or the sink, running in a namespace, events in its log.
#[derive(Debug)]
pub struct Tool {
    pub daemon: Daemon,
    _dir: ScratchDir,
}

impl Tool {
    pub fn start(ns: &Netns, name: &str, args: &[String]) -> Result<Self> {
        let dir = scratch::run().tempdir(name)?;
        let mut cmd: Command = ns.command(sibling(name)?);
        cmd.args(args);
        let daemon = Daemon::spawn(name, cmd, &dir.path().join(format!("{name}.log")))?;
        Ok(Self { daemon, _dir: dir })
    }

    /// Every JSON event printed so far.
    pub fn events(&self) -> Vec<Value> {
        events_in(self.daemon.log_path())
    }

    /// The first event named `name`, once it is printed; fails if the tool
    /// exited without printing it.
    pub fn wait_event(&mut self, name: &str, timeout: Duration, every: Duration) -> Result<Value> {
        let what = format!("{} event {name:?}", self.daemon.name());
        poll(timeout, every, 1, &what, || {
            if let Some(e) = self.events().into_iter().find(|e| e["event"] == name) {
                return Ok(Some(e));
            }
            self.daemon.ensure_running().map_err(|e| anyhow!("{e:#}"))?;
            Ok(None)
        })
        .map_err(|e| anyhow!("{e:#}\nlog:\n{}", self.daemon.log_tail(20)))
    }
}

fn events_in(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

/// A number field of an event.
pub fn num(event: &Value, key: &str) -> Result<f64> {
    event[key]
        .as_f64()
        .ok_or_else(|| anyhow!("no number {key:?} in {event}"))
}
