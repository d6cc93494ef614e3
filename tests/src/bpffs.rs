//! A bpffs pin directory owned by one test: `/sys/fs/bpf/<unique name>`,
//! removed with everything pinned in it (links, programs, maps) when the
//! [`PinDir`] drops — also while a failing test unwinds — and by the
//! sweeper if the test process is killed (see [`crate::scratch`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::scratch;

/// Where bpffs is mounted.
pub const BPFFS: &str = "/sys/fs/bpf";

/// A test's own pin directory; see the module docs. The directory itself
/// is not created (the code under test creates what it pins into).
#[derive(Debug)]
pub struct PinDir {
    name: String,
    path: PathBuf,
}

impl PinDir {
    /// A fresh, unique, recorded pin directory path named after `label`.
    pub fn new(label: &str) -> Result<Self> {
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
