//! The bpf filesystem: whether a path is on it, and mounting it at
//! `/sys/fs/bpf` at most once when several processes try together.

use std::fs;
use std::io;
use std::path::Path;

use crate::ebpf::error::EbpfError;

/// Where bpffs is normally mounted.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// bpffs's `statfs` magic.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn c_path(path: &Path) -> Result<std::ffi::CString, EbpfError> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| EbpfError::Unsupported(e.to_string()))
}

pub fn is_bpffs(path: &Path) -> Result<bool, EbpfError> {
    let c = c_path(path)?;
    // SAFETY: statfs is plain data; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(EbpfError::Io(io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(path: &Path) -> Result<(), EbpfError> {
    let target = c_path(path)?;
    let fstype = c"bpf";
    // SAFETY: NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(EbpfError::Unsupported(format!(
            "mounting bpffs on {}: {}",
            path.display(),
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Mount bpffs at `root` unless it is there already; whether it is there
/// afterwards.
pub fn mount_once(root: &Path) -> Result<bool, EbpfError> {
    // Several processes starting at once (tests) must not stack mounts:
    // pins made under a lower one would vanish from view. Whoever holds
    // the lock on the directory checks again and mounts at most once.
    let lock = fs::File::open(root)?;
    // SAFETY: flock on an fd we own; released when `lock` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(EbpfError::Io(io::Error::last_os_error()));
    }
    if !is_bpffs(root)? {
        mount_bpffs(root)?;
        tracing::info!(path = %root.display(), "mounted the bpf filesystem");
    }
    drop(lock);
    is_bpffs(root)
}
