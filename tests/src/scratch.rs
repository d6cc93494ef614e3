//! Scratch space owned by one test process, and the sweeper for leftovers.
//!
//! Everything a test process creates outside itself is recorded under one run
//! directory, `/tmp/manul-tests/<pid>-<starttime>/`:
//!
//! - `netns-<name>`: a marker per network namespace it created;
//! - `proc-<pid>-<starttime>`: a marker per daemon it started;
//! - `tmp-<label>-XXXXXX/`: temp dirs (etcd data, daemon sockets, logs);
//! - `bpffs-<name>`: a marker per bpffs pin directory `/sys/fs/bpf/<name>`
//!   (see [`crate::bpffs`]).
//!
//! The owners ([`crate::Netns`], [`crate::Daemon`], [`ScratchDir`]) remove
//! their thing and its marker on drop, also while unwinding from a panic, and
//! the run directory disappears with its last entry. A process that dies
//! without unwinding (SIGKILL, abort, a runner's timeout) leaves its run
//! directory behind; [`sweep_stale`] — run by every harness start and by
//! `scripts/test` at its end — finds run directories whose owner is gone and
//! removes what they list. The `<starttime>` part guards against pid reuse for
//! owners and daemons alike: a marker only ever names the process it saw.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{Context, Result};

/// Root of every test process's run directory.
pub const SCRATCH_ROOT: &str = "/tmp/manul-tests";

/// A process identity that survives pid reuse: pid plus its kernel start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcId {
    /// The identity of a live process, `None` if it does not exist.
    pub fn of(pid: u32) -> Option<Self> {
        start_time(pid).map(|start_time| Self { pid, start_time })
    }

    /// Is this very process (same pid, same start time) still alive?
    pub fn is_alive(&self) -> bool {
        // A zombie still has its /proc entry; count it as gone.
        start_time(self.pid) == Some(self.start_time) && !is_zombie(self.pid)
    }

    fn encode(&self) -> String {
        format!("{}-{}", self.pid, self.start_time)
    }

    fn decode(s: &str) -> Option<Self> {
        let (pid, st) = s.split_once('-')?;
        Some(Self {
            pid: pid.parse().ok()?,
            start_time: st.parse().ok()?,
        })
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parens: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field 22 is the 20th after it.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// This process's run directory and the lock that serialises changes to it.
#[derive(Debug)]
pub struct Run {
    dir: PathBuf,
    lock: Mutex<()>,
    counter: AtomicU32,
}

/// The run of this process. The first call sweeps what dead processes left.
pub fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let report = sweep_stale();
        if !report.is_empty() {
            eprintln!("manul-tests: swept leftovers of dead test processes: {report}");
        }
        let me = ProcId::of(std::process::id()).expect("/proc/self/stat is readable");
        Run {
            dir: Path::new(SCRATCH_ROOT).join(me.encode()),
            lock: Mutex::new(()),
            counter: AtomicU32::new(0),
        }
    })
}

impl Run {
    fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A name unique on this machine among live test processes, e.g.
    /// `m4711-3-host1`. Namespace names are free-form; keep them short to read.
    pub fn unique_name(&self, label: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("m{}-{n}-{label}", std::process::id())
    }

    fn ensure_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)
    }

    /// Remove the run directory if nothing is left in it (call under the lock).
    fn prune(&self) {
        let _ = fs::remove_dir(&self.dir);
    }

    fn mark(&self, marker: &str) -> Result<()> {
        let _g = self.locked();
        self.ensure_dir()
            .and_then(|()| fs::write(self.dir.join(marker), b""))
            .with_context(|| format!("recording {marker} under {}", self.dir.display()))
    }

    fn unmark(&self, marker: &str) {
        let _g = self.locked();
        let _ = fs::remove_file(self.dir.join(marker));
        self.prune();
    }

    pub(crate) fn mark_netns(&self, name: &str) -> Result<()> {
        self.mark(&format!("netns-{name}"))
    }

    pub(crate) fn unmark_netns(&self, name: &str) {
        self.unmark(&format!("netns-{name}"))
    }

    pub(crate) fn mark_bpffs(&self, name: &str) -> Result<()> {
        self.mark(&format!("bpffs-{name}"))
    }

    pub(crate) fn unmark_bpffs(&self, name: &str) {
        self.unmark(&format!("bpffs-{name}"))
    }

    pub(crate) fn mark_proc(&self, id: ProcId) -> Result<()> {
        self.mark(&format!("proc-{}", id.encode()))
    }

    pub(crate) fn unmark_proc(&self, id: ProcId) {
        self.unmark(&format!("proc-{}", id.encode()))
    }

    /// A fresh temp dir in this run, removed when the returned value drops.
    pub fn tempdir(&self, label: &str) -> Result<ScratchDir> {
        let _g = self.locked();
        self.ensure_dir()
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix(&format!("tmp-{label}-"))
                    .tempdir_in(&self.dir)
            })
            .map(|dir| ScratchDir { dir: Some(dir) })
            .with_context(|| format!("creating a temp dir under {}", self.dir.display()))
    }
}

/// A temp dir inside this process's run directory; removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    dir: Option<tempfile::TempDir>,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let run = run();
        let _g = run.locked();
        drop(self.dir.take());
        run.prune();
    }
}

/// What [`sweep_stale`] removed.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub namespaces: Vec<String>,
    pub processes: Vec<u32>,
    pub run_dirs: Vec<PathBuf>,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.processes.is_empty() && self.run_dirs.is_empty()
    }
}

impl std::fmt::Display for SweepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} namespace(s) {:?}, {} process(es) {:?}, {} run dir(s)",
            self.namespaces.len(),
            self.namespaces,
            self.processes.len(),
            self.processes,
            self.run_dirs.len()
        )
    }
}

/// Remove everything recorded by test processes that are no longer alive:
/// kill their daemons and every process inside their namespaces, delete the
/// namespaces, remove their temp dirs. Live processes' runs are left alone.
pub fn sweep_stale() -> SweepReport {
    sweep_stale_in(Path::new(SCRATCH_ROOT))
}

/// [`sweep_stale`] over run directories under `root`.
pub fn sweep_stale_in(root: &Path) -> SweepReport {
    let mut report = SweepReport::default();
    let Ok(entries) = fs::read_dir(root) else {
        return report;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = ProcId::decode(&name) else {
            continue;
        };
        if owner.is_alive() {
            continue;
        }
        sweep_run_dir(&entry.path(), &mut report);
    }
    report
}

/// Sweep one dead owner's run directory (see [`sweep_stale`]).
fn sweep_run_dir(dir: &Path, report: &mut SweepReport) {
    let markers: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for m in &markers {
        if let Some(id) = m.strip_prefix("proc-").and_then(ProcId::decode) {
            if id.is_alive() {
                kill_pid(id.pid);
                report.processes.push(id.pid);
            }
        }
    }
    for m in &markers {
        if let Some(pins) = m.strip_prefix("bpffs-") {
            let _ = fs::remove_dir_all(Path::new(crate::bpffs::BPFFS).join(pins));
        }
        if let Some(ns) = m.strip_prefix("netns-") {
            report.processes.extend(kill_namespace_processes(ns));
            if delete_namespace(ns) {
                report.namespaces.push(ns.to_string());
            }
        }
    }
    if fs::remove_dir_all(dir).is_ok() {
        report.run_dirs.push(dir.to_path_buf());
    }
}

fn kill_pid(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Kill every process in a namespace the harness created; returns their pids.
pub(crate) fn kill_namespace_processes(ns: &str) -> Vec<u32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return Vec::new();
    };
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for &pid in &pids {
        kill_pid(pid);
    }
    pids
}

/// `ip netns del`; true if the namespace existed and is now gone.
pub(crate) fn delete_namespace(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
        && Command::new("ip")
            .args(["netns", "del", ns])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}
