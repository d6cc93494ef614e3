//! Whether this host can run the programs: a kernel new enough for them,
//! and a bpf filesystem under the pin directory (mounted at `/sys/fs/bpf`
//! when that is where it belongs and nothing is there).

use std::path::Path;

use aya::util::KernelVersion;

use crate::ebpf::bpffs::{self, BPFFS_ROOT};
use crate::ebpf::error::EbpfError;

/// Check that this host can run the programs: Linux 5.10 (the
/// `bpf_redirect_peer` helper) and a bpf filesystem under `pin_dir`. As
/// Calico's felix does, bpffs is mounted at `/sys/fs/bpf` when `pin_dir`
/// is under it and nothing is mounted there.
pub fn probe(pin_dir: &Path) -> Result<(), EbpfError> {
    let kernel = KernelVersion::current()
        .map_err(|e| EbpfError::Unsupported(format!("kernel version unknown: {e}")))?;
    if kernel < KernelVersion::new(5, 10, 0) {
        return Err(EbpfError::Unsupported(format!(
            "kernel {kernel:?} is older than 5.10 (no bpf_redirect_peer)"
        )));
    }
    let mut dir = pin_dir;
    while !dir.exists() {
        dir = dir.parent().unwrap_or(Path::new("/"));
    }
    if bpffs::is_bpffs(dir)? {
        return Ok(());
    }
    let root = Path::new(BPFFS_ROOT);
    if pin_dir.starts_with(root) && dir == root && bpffs::mount_once(root)? {
        return Ok(());
    }
    Err(EbpfError::Unsupported(format!(
        "{} is not on a bpf filesystem (mount -t bpf bpf {BPFFS_ROOT})",
        dir.display()
    )))
}
