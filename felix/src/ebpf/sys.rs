//! The bpf(2) commands aya 0.14 does not offer: open a pinned object
//! (`BPF_OBJ_GET`), detach a link now (`BPF_LINK_DETACH`; unpinning a link
//! only drops a reference, and the kernel releases it later from a work
//! queue, while felix's detach must be done when it returns), and write or
//! delete many map entries in one call (`BPF_MAP_UPDATE_BATCH`,
//! `BPF_MAP_DELETE_BATCH`, kernel 5.6+).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use aya::Pod;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{IterableMap, MapData};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_DETACH: libc::c_long = 34;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

#[repr(C)]
struct ObjGet {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
struct LinkDetach {
    link_fd: u32,
}

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapBatch {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// A batch call that stopped early: the error, and how many entries it
/// had done before (those are written or deleted).
#[derive(Debug)]
pub struct BatchError {
    pub error: io::Error,
    pub done: usize,
}

/// A `BPF_MAP_*_BATCH` call on `map` for `count` entries.
///
/// # Safety
///
/// `keys` (and `values`, unless 0) must be the addresses of `count` keys
/// (values) of `map`'s key (value) size, readable for the whole call.
unsafe fn map_batch(
    cmd: libc::c_long,
    map: BorrowedFd<'_>,
    keys: u64,
    values: u64,
    count: usize,
) -> Result<(), BatchError> {
    let mut attr = MapBatch {
        keys,
        values,
        count: u32::try_from(count).unwrap_or(u32::MAX),
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: `attr` is the `batch` member for a batch command, its
    // pointers valid for `count` entries as this function's caller ensures
    // (and `count` only ever shrinks by the conversion above).
    match unsafe { bpf(cmd, &mut attr) } {
        Ok(_) => Ok(()),
        Err(error) => Err(BatchError {
            error,
            // The kernel reports how many it processed.
            done: attr.count as usize,
        }),
    }
}

/// Set `keys[i]` to `values[i]` in `trie`, all in one call.
pub fn map_update_batch<K: Pod, V: Pod>(
    trie: &LpmTrie<MapData, K, V>,
    keys: &[Key<K>],
    values: &[V],
) -> Result<(), BatchError> {
    let count = keys.len().min(values.len());
    // SAFETY: both slices hold at least `count` entries, and an `LpmTrie`
    // exists only for a map whose key and value sizes are those of
    // `Key<K>` and `V` (aya checks them when it is made).
    unsafe {
        map_batch(
            BPF_MAP_UPDATE_BATCH,
            trie.map().fd().as_fd(),
            keys.as_ptr() as u64,
            values.as_ptr() as u64,
            count,
        )
    }
}

/// Delete `keys` from `trie` in one call (stops at the first missing key).
pub fn map_delete_batch<K: Pod, V: Pod>(
    trie: &LpmTrie<MapData, K, V>,
    keys: &[Key<K>],
) -> Result<(), BatchError> {
    // SAFETY: `keys` holds `keys.len()` entries of the map's key size
    // (aya checked it when the `LpmTrie` was made); no values are read.
    unsafe {
        map_batch(
            BPF_MAP_DELETE_BATCH,
            trie.map().fd().as_fd(),
            keys.as_ptr() as u64,
            0,
            keys.len(),
        )
    }
}

/// The bpf(2) system call.
///
/// # Safety
///
/// `attr` must be laid out as the member of `union bpf_attr` that `cmd`
/// reads, and every address in it must be valid for what the kernel does
/// there for `cmd` (read or write) for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `T` of the size passed, which
    // the caller guarantees is right for `cmd`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Open the object pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut attr = ObjGet {
        pathname: c.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    // SAFETY: `ObjGet` is the member BPF_OBJ_GET reads (the `BPF_OBJ_*` one), and its
    // path is a NUL-terminated string (`c`) that outlives the call.
    let fd = unsafe { bpf(BPF_OBJ_GET, &mut attr) }?;
    // SAFETY: BPF_OBJ_GET returned a new fd, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Detach the link behind `fd` now.
pub fn link_detach(fd: &OwnedFd) -> io::Result<()> {
    let mut attr = LinkDetach {
        link_fd: fd.as_raw_fd() as u32,
    };
    // SAFETY: `LinkDetach` is the `link_detach` member BPF_LINK_DETACH
    // reads; it holds no address.
    unsafe { bpf(BPF_LINK_DETACH, &mut attr) }.map(drop)
}
