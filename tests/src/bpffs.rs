//! A bpffs pin directory owned by one test: `/sys/fs/bpf/<unique name>`,
//! removed with everything pinned in it (links, programs, maps) when the
//! [`PinDir`] drops — also while a failing test unwinds — and by the
//! sweeper if the test process is killed (see [`crate::scratch`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use crate::scratch;

/// Where bpffs is mounted.
pub const BPFFS: &str = "/sys/fs/bpf";

fn is_bpffs(path: &Path) -> Result<bool> {
    let st = statfs(path).with_context(|| format!("statfs {}", path.display()))?;
    Ok(st.filesystem_type() == BPF_FS_MAGIC)
}

/// Mount bpffs at [`BPFFS`] unless it is there, the way felix does: the
/// check and the mount happen under an exclusive `flock` on the directory,
/// so processes starting together never stack two mounts (pins under the
/// lower one would vanish from view).
pub fn ensure_mounted() -> Result<()> {
    let root = Path::new(BPFFS);
    if is_bpffs(root)? {
        return Ok(());
    }
    let dir = File::open(root).with_context(|| format!("opening {BPFFS}"))?;
    // Released when `_lock` drops, at the end.
    let _lock = Flock::lock(dir, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {BPFFS}"))?;
    if !is_bpffs(root)? {
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf", BPFFS])
            .status()
            .context("running mount")?;
        if !st.success() {
            bail!("mount -t bpf bpf {BPFFS} failed ({st})");
        }
    }
    Ok(())
}

/// A test's own pin directory; see the module docs. The directory itself
/// is not created (the code under test creates what it pins into).
#[derive(Debug)]
pub struct PinDir {
    name: String,
    path: PathBuf,
}

impl PinDir {
    /// A fresh, unique, recorded pin directory path named after `label`
    /// (bpffs is mounted first if it is not, see [`ensure_mounted`]).
    pub fn new(label: &str) -> Result<Self> {
        ensure_mounted()?;
        let run = scratch::run();
        let name = run.unique_name(label);
        run.mark_bpffs(&name)?;
        let path = Path::new(BPFFS).join(&name);
        anyhow::ensure!(
            !path.exists(),
            "{} exists already; another run's?",
            path.display()
        );
        Ok(Self { name, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("removing {}: {e}", self.path.display());
        }
        scratch::run().unmark_bpffs(&self.name);
    }
}
