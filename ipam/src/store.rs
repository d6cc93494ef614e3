//! `Store`: the allocator's view of etcd — typed reads and
//! compare-and-swap writes of blocks, affinities and handles, each counted
//! (see [`Stats`]) so tests can hold the allocator to its cost.
//!
//! Every block write goes through `Store::update_block`, which bumps the
//! block's `sequenceNumber`; nothing else writes blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use manul_datastore::etcd::{Datastore, KeyValue, Swap, Versioned};
use manul_datastore::ipam::{AffinityState, AllocationBlock, BlockAffinity, IpamHandle};
use manul_datastore::{Key, KeyError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{IpamError, Result};

/// How often a compare-and-swap is retried after a conflict (Calico's
/// `datastoreRetries`).
pub const MAX_RETRIES: usize = 100;

/// Counts of etcd requests made through one [`crate::Ipam`] (and its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Single-key reads.
    pub gets: u64,
    /// Range reads (each [`Datastore::list`] call, however many pages).
    pub lists: u64,
    /// Creates, updates and deletes attempted (successful or not).
    pub writes: u64,
    /// Writes that lost a compare-and-swap.
    pub conflicts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    lists: AtomicU64,
    writes: AtomicU64,
    conflicts: AtomicU64,
}

/// Counting, typed access to the IPAM keys.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    ds: Datastore,
    counters: Arc<Counters>,
}

/// The etcd key of `key` (the layout module refuses bad segments).
pub(crate) fn path(key: &Key) -> Result<String> {
    key.path()
        .map_err(|e: KeyError| IpamError::InvalidArgument(e.to_string()))
}

pub(crate) fn block_key(cidr: &IpNet) -> String {
    // Block keys have no name segment; path() cannot fail for them.
    Key::Block { cidr: *cidr }.path().unwrap_or_default()
}

impl Store {
    pub(crate) fn new(ds: Datastore) -> Self {
        Store {
            ds,
            counters: Arc::default(),
        }
    }

    pub(crate) fn datastore(&self) -> &Datastore {
        &self.ds
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            gets: c.gets.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
        }
    }

    fn count_write<T>(&self, r: &Result<T, manul_datastore::etcd::Error>) {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if matches!(r, Err(manul_datastore::etcd::Error::Conflict { .. })) {
            self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        Ok(self.ds.get(key).await?)
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        Ok(self.ds.get_json(key).await?)
    }

    pub(crate) async fn list(
        &self,
        prefix: &str,
        at_revision: Option<i64>,
    ) -> Result<(Vec<KeyValue>, i64)> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        Ok(self.ds.list(prefix, at_revision).await?)
    }

    pub(crate) async fn create_json<T: Serialize>(&self, key: &str, value: &T) -> Result<i64> {
        let r = self.ds.create_json(key, value).await;
        self.count_write(&r);
        Ok(r?)
    }

    pub(crate) async fn update_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        rev: i64,
    ) -> Result<i64> {
        let r = self.ds.update_json(key, value, rev).await;
        self.count_write(&r);
        Ok(r?)
    }

    pub(crate) async fn delete(&self, key: &str, rev: i64) -> Result<i64> {
        let r = self.ds.delete(key, rev).await;
        self.count_write(&r);
        Ok(r?)
    }

    /// Count a write that reports its loss (see [`Swap`]).
    fn count_swap(&self, r: manul_datastore::etcd::Result<Swap>) -> Result<Swap> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if matches!(r, Ok(Swap::Lost(_))) {
            self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r?)
    }

    // --- blocks -------------------------------------------------------

    /// The block of `cidr`, checked to be that block.
    pub(crate) async fn get_block(
        &self,
        cidr: &IpNet,
    ) -> Result<Option<Versioned<AllocationBlock>>> {
        let key = block_key(cidr);
        let Some(v) = self.get_json::<AllocationBlock>(&key).await? else {
            return Ok(None);
        };
        check_block(&v)?;
        Ok(Some(v))
    }

    /// Create a new block (sequence number as given, normally 0).
    pub(crate) async fn create_block(
        &self,
        block: &AllocationBlock,
    ) -> Result<Versioned<AllocationBlock>> {
        let key = block_key(&block.cidr);
        let rev = self.create_json(&key, block).await?;
        Ok(Versioned {
            key,
            value: block.clone(),
            mod_revision: rev,
            create_revision: rev,
        })
    }

    /// Write a modified block back, bumping its sequence number; on success
    /// `b` carries the new revision.
    pub(crate) async fn update_block(&self, b: &mut Versioned<AllocationBlock>) -> Result<()> {
        b.value.sequence_number = b.value.sequence_number.wrapping_add(1);
        match self.update_json(&b.key, &b.value, b.mod_revision).await {
            Ok(rev) => {
                b.mod_revision = rev;
                Ok(())
            }
            Err(e) => {
                b.value.sequence_number = b.value.sequence_number.wrapping_sub(1);
                Err(e)
            }
        }
    }

    pub(crate) async fn delete_block(&self, b: &Versioned<AllocationBlock>) -> Result<()> {
        self.delete(&b.key, b.mod_revision).await.map(drop)
    }

    /// [`Store::update_block`] that, when it loses, returns the block as it
    /// is now (checked; `None`: gone) instead of failing: a caller holding a
    /// stale block retries without reading it again.
    pub(crate) async fn swap_block(&self, b: &mut Versioned<AllocationBlock>) -> Result<BlockSwap> {
        b.value.sequence_number = b.value.sequence_number.wrapping_add(1);
        let r = match serde_json::to_vec(&b.value) {
            Ok(json) => {
                self.ds
                    .update_or_current(&b.key, json, b.mod_revision)
                    .await
            }
            Err(e) => Err(manul_datastore::etcd::Error::Malformed {
                key: b.key.clone(),
                error: e.to_string(),
            }),
        };
        match self.count_swap(r) {
            Ok(Swap::Written(rev)) => {
                b.mod_revision = rev;
                Ok(BlockSwap::Written)
            }
            other => {
                b.value.sequence_number = b.value.sequence_number.wrapping_sub(1);
                lost_block(other?)
            }
        }
    }

    /// Delete `b` if unchanged; else, like [`Store::swap_block`], the block
    /// as it is now.
    pub(crate) async fn swap_delete_block(
        &self,
        b: &Versioned<AllocationBlock>,
    ) -> Result<BlockSwap> {
        let r = self.ds.delete_or_current(&b.key, b.mod_revision).await;
        match self.count_swap(r)? {
            Swap::Written(_) => Ok(BlockSwap::Written),
            lost => lost_block(lost),
        }
    }

    // --- affinities ---------------------------------------------------

    pub(crate) async fn get_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
    ) -> Result<Option<Versioned<BlockAffinity>>> {
        let key = path(&Key::BlockAffinity {
            host: host.to_string(),
            cidr: *cidr,
        })?;
        self.get_json(&key).await
    }

    pub(crate) async fn create_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
        state: AffinityState,
    ) -> Result<Versioned<BlockAffinity>> {
        let key = path(&Key::BlockAffinity {
            host: host.to_string(),
            cidr: *cidr,
        })?;
        let value = BlockAffinity::new(state);
        let rev = self.create_json(&key, &value).await?;
        Ok(Versioned {
            key,
            value,
            mod_revision: rev,
            create_revision: rev,
        })
    }

    /// Set an affinity's state (compare-and-swap on its revision).
    pub(crate) async fn set_affinity_state(
        &self,
        aff: &mut Versioned<BlockAffinity>,
        state: AffinityState,
    ) -> Result<()> {
        let mut value = aff.value.clone();
        value.state = state;
        let rev = self.update_json(&aff.key, &value, aff.mod_revision).await?;
        aff.value = value;
        aff.mod_revision = rev;
        Ok(())
    }

    pub(crate) async fn delete_affinity(&self, aff: &Versioned<BlockAffinity>) -> Result<()> {
        self.delete(&aff.key, aff.mod_revision).await.map(drop)
    }

    // --- handles ------------------------------------------------------

    pub(crate) async fn get_handle(&self, id: &str) -> Result<Option<Versioned<IpamHandle>>> {
        let key = path(&Key::Handle { id: id.to_string() })?;
        self.get_json(&key).await
    }

    /// Add `n` addresses in `block` to handle `id`. `known` is the handle
    /// as the caller last read or wrote it; `None` assumes it is absent and
    /// creates it without reading (a lost create returns the current one,
    /// which is then updated). On success `known` is the handle as written.
    pub(crate) async fn increment_handle(
        &self,
        id: &str,
        block: &IpNet,
        n: u64,
        known: &mut Option<Versioned<IpamHandle>>,
    ) -> Result<()> {
        let key = path(&Key::Handle { id: id.to_string() })?;
        let cidr = block.to_string();
        for _ in 0..MAX_RETRIES {
            let mut h = match known.take() {
                Some(h) => h,
                None => Versioned {
                    key: key.clone(),
                    value: IpamHandle::default(),
                    mod_revision: 0,
                    create_revision: 0,
                },
            };
            let c = h.value.block.entry(cidr.clone()).or_insert(0);
            *c = c.saturating_add(n);
            let r = if h.mod_revision == 0 {
                self.ds.create_json_or_current(&key, &h.value).await
            } else {
                self.ds
                    .update_json_or_current(&key, &h.value, h.mod_revision)
                    .await
            };
            match self.count_swap(r)? {
                Swap::Written(rev) => {
                    if h.mod_revision == 0 {
                        h.create_revision = rev;
                    }
                    h.mod_revision = rev;
                    *known = Some(h);
                    return Ok(());
                }
                Swap::Lost(current) => *known = current.map(|kv| kv.decode()).transpose()?,
            }
        }
        Err(IpamError::TooManyRetries {
            what: key,
            attempts: MAX_RETRIES,
        })
    }

    /// Take `n` addresses in `block` off handle `id`, deleting the handle
    /// when it holds nothing more. `known`: as for
    /// [`Store::increment_handle`], except that `None` means "read it";
    /// afterwards it is the handle as written, or `None` when it is gone. A
    /// missing handle, or one holding fewer, is not an error (the leak check
    /// reports such handles).
    pub(crate) async fn decrement_handle(
        &self,
        id: &str,
        block: &IpNet,
        n: u64,
        known: &mut Option<Versioned<IpamHandle>>,
    ) -> Result<()> {
        let key = path(&Key::Handle { id: id.to_string() })?;
        let cidr = block.to_string();
        for _ in 0..MAX_RETRIES {
            let mut h = match known.take() {
                Some(h) => h,
                None => match self.get_json::<IpamHandle>(&key).await? {
                    Some(h) => h,
                    None => return Ok(()),
                },
            };
            match h.value.block.get_mut(&cidr) {
                None => {
                    *known = Some(h);
                    return Ok(());
                }
                Some(c) if *c <= n => {
                    h.value.block.remove(&cidr);
                }
                Some(c) => *c -= n,
            }
            let delete = h.value.block.is_empty();
            let r = if delete {
                self.ds.delete_or_current(&key, h.mod_revision).await
            } else {
                self.ds
                    .update_json_or_current(&key, &h.value, h.mod_revision)
                    .await
            };
            match self.count_swap(r)? {
                Swap::Written(rev) => {
                    h.mod_revision = rev;
                    *known = (!delete).then_some(h);
                    return Ok(());
                }
                Swap::Lost(None) => return Ok(()),
                Swap::Lost(Some(kv)) => *known = Some(kv.decode()?),
            }
        }
        Err(IpamError::TooManyRetries {
            what: key,
            attempts: MAX_RETRIES,
        })
    }
}

/// What [`Store::swap_block`] did.
#[derive(Debug)]
pub(crate) enum BlockSwap {
    /// Written (or deleted).
    Written,
    /// Lost: the block as it is now, `None` when gone.
    Lost(Option<Box<Versioned<AllocationBlock>>>),
}

fn lost_block(s: Swap) -> Result<BlockSwap> {
    match s {
        Swap::Written(_) => Ok(BlockSwap::Written),
        Swap::Lost(None) => Ok(BlockSwap::Lost(None)),
        Swap::Lost(Some(kv)) => {
            let v = kv.decode::<AllocationBlock>()?;
            check_block(&v)?;
            Ok(BlockSwap::Lost(Some(Box::new(v))))
        }
    }
}

/// A block whose value does not match its key is refused, naming the key.
pub(crate) fn check_block(v: &Versioned<AllocationBlock>) -> Result<()> {
    let cidr = v.value.cidr;
    if block_key(&cidr) != v.key || cidr.trunc() != cidr {
        return Err(IpamError::Malformed {
            key: v.key.clone(),
            reason: format!("block CIDR {cidr} does not match the key"),
        });
    }
    let n = crate::block::size(&cidr);
    if n > 1 << 20 {
        return Err(IpamError::Malformed {
            key: v.key.clone(),
            reason: format!("block of {n} addresses; at most 2^20 are supported"),
        });
    }
    if v.value.allocations.len() as u128 != n {
        return Err(IpamError::Malformed {
            key: v.key.clone(),
            reason: format!(
                "{} allocation slots for a block of {n} addresses",
                v.value.allocations.len()
            ),
        });
    }
    Ok(())
}
