//! A long-running child process the test owns: output to a log file, stopped
//! on drop (SIGTERM, then SIGKILL after a grace period), recorded in the
//! scratch registry so a test killed outright still gets it reaped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::scratch::{self, ProcId};

/// How long a daemon gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    id: Option<ProcId>,
    log: PathBuf,
}

impl Daemon {
    /// Spawn `cmd` with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let id = ProcId::of(child.id());
        if let Some(id) = id {
            scratch::run().mark_proc(id)?;
        }
        Ok(Self {
            name: name.to_string(),
            child,
            id,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Still running (not exited, not reaped)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fail with the log tail if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => anyhow::bail!(
                "{} exited ({status}); last log lines:\n{}",
                self.name,
                self.log_tail(20)
            ),
            Err(e) => Err(e).context(format!("checking on {}", self.name)),
        }
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL; reaps the child.
    /// `false` when it had to be killed (it ignored SIGTERM for the whole
    /// grace period).
    pub fn stop(&mut self) -> bool {
        let mut exited = true;
        if self.is_running() {
            let pid = Pid::from_raw(self.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + GRACE;
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.is_running() {
                exited = false;
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if let Some(id) = self.id.take() {
            scratch::run().unmark_proc(id);
        }
        exited
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
