//! The bpf filesystem: whether a path is on it, and mounting it at
//! `/sys/fs/bpf` at most once when several processes try together.

use std::fs;
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use crate::ebpf::error::EbpfError;

/// Where bpffs is normally mounted.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// Whether `path` is on a bpf filesystem.
pub fn is_bpffs(path: &Path) -> Result<bool, EbpfError> {
    let st = statfs(path).map_err(io::Error::from)?;
    Ok(st.filesystem_type() == BPF_FS_MAGIC)
}

fn mount_bpffs(path: &Path) -> Result<(), EbpfError> {
    mount(
        Some("bpf"),
        path,
        Some("bpf"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| {
        EbpfError::Unsupported(format!(
            "mounting bpffs on {}: {}",
            path.display(),
            io::Error::from(e)
        ))
    })
}

/// Mount bpffs at `root` unless it is there already; whether it is there
/// afterwards.
pub fn mount_once(root: &Path) -> Result<bool, EbpfError> {
    // Several processes starting at once (tests) must not stack mounts:
    // pins made under a lower one would vanish from view. Whoever holds
    // the lock on the directory checks again and mounts at most once.
    let lock = Flock::lock(fs::File::open(root)?, FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;
    if !is_bpffs(root)? {
        mount_bpffs(root)?;
        tracing::info!(path = %root.display(), "mounted the bpf filesystem");
    }
    drop(lock);
    is_bpffs(root)
}
