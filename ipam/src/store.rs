//! `Store`: the allocator's view of etcd — typed reads and
//! compare-and-swap writes of blocks, affinities and handles, each counted
//! (see [`Stats`]) so tests can hold the allocator to its cost.
//!
//! Every block write goes through `Store::update_block`, which bumps the
//! block's `sequenceNumber`; nothing else writes blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use manul_datastore::etcd::{Datastore, KeyValue, Versioned};
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

    /// Add `n` addresses in `block` to handle `id` (creating it).
    pub(crate) async fn increment_handle(&self, id: &str, block: &IpNet, n: u64) -> Result<()> {
        let key = path(&Key::Handle { id: id.to_string() })?;
        let cidr = block.to_string();
        for _ in 0..MAX_RETRIES {
            let r = match self.get_json::<IpamHandle>(&key).await? {
                None => {
                    let mut h = IpamHandle::default();
                    h.block.insert(cidr.clone(), n);
                    self.create_json(&key, &h).await.map(drop)
                }
                Some(mut h) => {
                    let c = h.value.block.entry(cidr.clone()).or_insert(0);
                    *c = c.saturating_add(n);
                    self.update_json(&key, &h.value, h.mod_revision)
                        .await
                        .map(drop)
                }
            };
            match r {
                Err(e) if e.is_conflict() || e.is_not_found() => continue,
                other => return other,
            }
        }
        Err(IpamError::TooManyRetries {
            what: key,
            attempts: MAX_RETRIES,
        })
    }

    /// Take `n` addresses in `block` off handle `id`, deleting the handle
    /// when it holds nothing more. A missing handle, or one holding fewer,
    /// is not an error (the leak check reports such handles).
    pub(crate) async fn decrement_handle(&self, id: &str, block: &IpNet, n: u64) -> Result<()> {
        let key = path(&Key::Handle { id: id.to_string() })?;
        let cidr = block.to_string();
        for _ in 0..MAX_RETRIES {
            let Some(mut h) = self.get_json::<IpamHandle>(&key).await? else {
                return Ok(());
            };
            match h.value.block.get_mut(&cidr) {
                None => return Ok(()),
                Some(c) if *c <= n => {
                    h.value.block.remove(&cidr);
                }
                Some(c) => *c -= n,
            }
            let r = if h.value.block.is_empty() {
                self.delete(&key, h.mod_revision).await.map(drop)
            } else {
                self.update_json(&key, &h.value, h.mod_revision)
                    .await
                    .map(drop)
            };
            match r {
                Err(e) if e.is_conflict() => continue,
                Err(e) if e.is_not_found() => return Ok(()),
                other => return other,
            }
        }
        Err(IpamError::TooManyRetries {
            what: key,
            attempts: MAX_RETRIES,
        })
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
