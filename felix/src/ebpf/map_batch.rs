//! Writing and deleting many route-map entries per bpf(2) call.
//!
//! A full route table is tens of thousands of LPM entries; one syscall per
//! entry costs more than the trie insert itself. `BPF_MAP_UPDATE_BATCH` and
//! `BPF_MAP_DELETE_BATCH` (kernel 5.6+, every map type through the generic
//! batch operations) take the whole list at once. A kernel that refuses
//! them gets one call per entry, as before, decided once per dataplane.

use aya::Pod;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{MapData, MapError};
use aya::sys::SyscallError;
use manul_ebpf_common::RouteValue;

use super::sys::{self, BatchError};

/// Whether the kernel can batch; starts `true`, set `false` the first time
/// a batch call is refused as unsupported.
#[derive(Debug, Clone, Copy)]
pub struct Batching(pub bool);

impl Default for Batching {
    fn default() -> Self {
        Batching(true)
    }
}

/// The kernel's internal "not supported" (`ENOTSUPP`, not in libc), which
/// bpf(2) returns for a map type without an operation.
const KERNEL_ENOTSUPP: i32 = 524;

fn unsupported(e: &BatchError) -> bool {
    e.done == 0
        && matches!(
            e.error.raw_os_error(),
            Some(libc::EINVAL | libc::EOPNOTSUPP | KERNEL_ENOTSUPP)
        )
}

fn syscall_error(call: &'static str, e: BatchError) -> MapError {
    MapError::SyscallError(SyscallError {
        call,
        io_error: e.error,
    })
}

/// Set every `keys[i]` to `values[i]` in `trie`.
pub fn put_all<K: Pod>(
    trie: &mut LpmTrie<MapData, K, RouteValue>,
    keys: &[Key<K>],
    values: &[RouteValue],
    batching: &mut Batching,
) -> Result<(), MapError> {
    if keys.is_empty() {
        return Ok(());
    }
    if batching.0 {
        match sys::map_update_batch(trie, keys, values) {
            Ok(()) => return Ok(()),
            Err(e) if unsupported(&e) => {
                tracing::info!("this kernel has no batched map updates: one call per entry");
                batching.0 = false;
            }
            Err(e) => return Err(syscall_error("bpf_map_update_batch", e)),
        }
    }
    for (k, v) in keys.iter().zip(values) {
        trie.insert(k, v, 0)?;
    }
    Ok(())
}

/// Delete `keys` from `trie`; a key already absent is not an error.
pub fn delete_all<K: Pod>(
    trie: &mut LpmTrie<MapData, K, RouteValue>,
    keys: &[Key<K>],
    batching: &mut Batching,
) -> Result<(), MapError> {
    let mut done = 0;
    while batching.0 && done < keys.len() {
        match sys::map_delete_batch(trie, &keys[done..]) {
            Ok(()) => return Ok(()),
            // The call stops at a missing key (`done` counts those before
            // it): skip it and go on.
            Err(e) if e.error.raw_os_error() == Some(libc::ENOENT) => done += e.done + 1,
            Err(e) if unsupported(&e) => batching.0 = false,
            Err(e) => return Err(syscall_error("bpf_map_delete_batch", e)),
        }
    }
    for k in keys.iter().skip(done) {
        match trie.remove(k) {
            Err(MapError::KeyNotFound) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            other => other?,
        }
    }
    Ok(())
}
