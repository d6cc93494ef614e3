//! [`Ipam`]: the allocator handle, and its per-host cache of affine blocks.
//!
//! The cache maps a host to the blocks it holds a confirmed affinity for,
//! filled from one list of `/calico/ipam/v2/host/<host>/` (never of every
//! block). It may go stale (another process claims or releases a block);
//! that costs at most a wasted read, because every use re-reads the block
//! and checks its `affinity`, and every write is compare-and-swap. A block
//! found gone or affine elsewhere is dropped from the cache; before
//! claiming a new block the host's affinities are listed again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::etcd::Datastore;
use manul_datastore::ipam::{AffinityState, BlockAffinity, IpamConfig};
use manul_datastore::keys::prefix;

use crate::error::{IpamError, Result};
use crate::store::{Stats, Store};
use crate::{config, pools};

/// The allocator. Cloning is cheap; clones share the connection, the
/// cache and the counters.
#[derive(Debug, Clone)]
pub struct Ipam {
    pub(crate) store: Store,
    affine: Arc<Mutex<HashMap<String, Vec<IpNet>>>>,
}

impl Ipam {
    /// An allocator over `ds`.
    pub fn new(ds: Datastore) -> Self {
        Ipam {
            store: Store::new(ds),
            affine: Arc::default(),
        }
    }

    /// The datastore client.
    pub fn datastore(&self) -> &Datastore {
        self.store.datastore()
    }

    /// etcd requests made so far by this allocator and its clones.
    pub fn stats(&self) -> Stats {
        self.store.stats()
    }

    /// The IPAM config in force (Calico's default when none is stored).
    pub async fn config(&self) -> Result<IpamConfig> {
        config::get(&self.store).await
    }

    /// Validate (see [`crate::config::validate`]) and store the config.
    pub async fn set_config(&self, cfg: &IpamConfig) -> Result<()> {
        config::set(&self.store, cfg).await
    }

    /// Every IP pool that decodes, enabled or not.
    pub async fn pools(&self) -> Result<Vec<pools::Pool>> {
        pools::list(&self.store).await
    }

    // --- the affine-block cache ----------------------------------------

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<IpNet>>> {
        self.affine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host's confirmed affine blocks, from the cache or one list.
    pub(crate) async fn affine_blocks(&self, host: &str) -> Result<Vec<IpNet>> {
        if let Some(v) = self.cache().get(host) {
            return Ok(v.clone());
        }
        self.refresh_affine(host).await
    }

    /// List the host's affinities again. A `pending` affinity whose block
    /// exists and is affine to the host (a claim that stopped before its
    /// last step) is confirmed, as Calico's `getBlockFromAffinity` does.
    pub(crate) async fn refresh_affine(&self, host: &str) -> Result<Vec<IpNet>> {
        check_name("host", host)?;
        let (kvs, _) = self
            .store
            .list(&prefix::host_affinities(host), None)
            .await?;
        let mut out = Vec::new();
        for kv in kvs {
            let cidr = match Key::parse(&kv.key) {
                Ok(Key::BlockAffinity { cidr, .. }) => cidr,
                _ => {
                    tracing::warn!(key = %kv.key, "skipping affinity key outside the layout");
                    continue;
                }
            };
            let mut aff = match kv.decode::<BlockAffinity>() {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(key = %kv.key, error = %e, "skipping malformed affinity");
                    continue;
                }
            };
            match aff.value.state {
                AffinityState::Confirmed => out.push(cidr),
                AffinityState::Pending => {
                    let Some(b) = self.store.get_block(&cidr).await? else {
                        continue;
                    };
                    if b.value.host() != Some(host) {
                        continue;
                    }
                    match self
                        .store
                        .set_affinity_state(&mut aff, AffinityState::Confirmed)
                        .await
                    {
                        Ok(()) => out.push(cidr),
                        Err(e) if e.is_conflict() || e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                _ => {}
            }
        }
        self.cache().insert(host.to_string(), out.clone());
        Ok(out)
    }

    pub(crate) fn cache_add(&self, host: &str, cidr: IpNet) {
        let mut c = self.cache();
        let v = c.entry(host.to_string()).or_default();
        if !v.contains(&cidr) {
            v.push(cidr);
        }
    }

    pub(crate) fn cache_forget(&self, host: &str, cidr: &IpNet) {
        if let Some(v) = self.cache().get_mut(host) {
            v.retain(|c| c != cidr);
        }
    }

    pub(crate) fn cache_forget_host(&self, host: &str) {
        self.cache().remove(host);
    }
}

/// A host name or handle ID must be a valid key segment.
pub(crate) fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') {
        return Err(IpamError::InvalidArgument(format!(
            "{what} {value:?} is empty or contains '/'"
        )));
    }
    Ok(())
}
