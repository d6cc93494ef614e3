//! [`Ipam`]: the allocator handle, and what it remembers between calls
//! (see [`crate::cache`]).
//!
//! The host's affine blocks are filled from one list of
//! `/calico/ipam/v2/host/<host>/` (never of every block). They may go stale
//! (another process claims or releases a block); that costs at most a lost
//! compare-and-swap, because every use checks the block's `affinity` and
//! every write is compare-and-swap. A block found gone or affine elsewhere
//! is dropped; before claiming a new block the host's affinities are listed
//! again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::etcd::{Datastore, Versioned};
use manul_datastore::ipam::{AffinityState, AllocationBlock, BlockAffinity, IpamConfig};
use manul_datastore::keys::prefix;

use crate::cache::Cache;
use crate::error::{IpamError, Result};
use crate::store::{Stats, Store};
use crate::{config, pools};

/// Config, pools and the host's labels, as one assignment uses them.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) config: IpamConfig,
    pub(crate) pools: Vec<pools::Pool>,
    pub(crate) labels: BTreeMap<String, String>,
    /// Some of it came from the cache.
    pub(crate) cached: bool,
}

/// The allocator. Cloning is cheap; clones share the connection, the
/// cache and the counters.
#[derive(Debug, Clone)]
pub struct Ipam {
    pub(crate) store: Store,
    pub(crate) cache: Arc<Cache>,
    /// See [`crate::reclaim`].
    pub(crate) reclaim_after: Duration,
}

impl Ipam {
    /// An allocator over `ds`.
    pub fn new(ds: Datastore) -> Self {
        Ipam {
            store: Store::new(ds),
            cache: Arc::default(),
            reclaim_after: crate::reclaim::DEFAULT_RECLAIM_AFTER,
        }
    }

    /// The same allocator with a new cache keeping config, pools and Node
    /// labels for `ttl` ([`crate::cache::DEFAULT_TTL`] by default;
    /// `Duration::ZERO` reads them on every call).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache = Arc::new(Cache::new(ttl));
        self
    }

    /// The datastore client.
    pub fn datastore(&self) -> &Datastore {
        self.store.datastore()
    }

    /// etcd requests made so far by this allocator and its clones.
    pub fn stats(&self) -> Stats {
        self.store.stats()
    }

    /// The IPAM config in force (Calico's default when none is stored),
    /// read now.
    pub async fn config(&self) -> Result<IpamConfig> {
        let c = config::get(&self.store).await?;
        self.cache.put_config(c.clone());
        Ok(c)
    }

    /// Validate (see [`crate::config::validate`]) and store the config.
    pub async fn set_config(&self, cfg: &IpamConfig) -> Result<()> {
        let r = config::set(&self.store, cfg).await;
        self.cache.expire_settings();
        r
    }

    /// Every IP pool that decodes, enabled or not.
    pub async fn pools(&self) -> Result<Vec<pools::Pool>> {
        let p = pools::list(&self.store).await?;
        self.cache.put_pools(p.clone());
        Ok(p)
    }

    /// The pools, from the cache when it has them (`true`) or read.
    pub(crate) async fn cached_pools(&self) -> Result<(Vec<pools::Pool>, bool)> {
        match self.cache.pools() {
            Some(p) => Ok((p, true)),
            None => Ok((self.pools().await?, false)),
        }
    }

    /// Config, pools (unless `pools` is false) and the host's Node labels
    /// (if `labels`): from the cache unless `fresh`; what is missing is read
    /// at once (one round trip instead of three).
    pub(crate) async fn settings(
        &self,
        host: &str,
        pools: bool,
        labels: bool,
        fresh: bool,
    ) -> Result<Settings> {
        let c = &self.cache;
        let (cfg0, pools0, labels0) = if fresh {
            (None, None, None)
        } else {
            (c.config(), c.pools(), c.labels(host))
        };
        let cached = cfg0.is_some() || pools0.is_some() || labels0.is_some();
        let (config, pools, labels) = tokio::try_join!(
            async {
                match cfg0 {
                    Some(v) => Ok(v),
                    None => {
                        let v = config::get(&self.store).await?;
                        c.put_config(v.clone());
                        Ok(v)
                    }
                }
            },
            async {
                match pools0 {
                    Some(v) => Ok(v),
                    None if pools => self.pools().await,
                    None => Ok(Vec::new()),
                }
            },
            async {
                match labels0 {
                    Some(v) => Ok(v),
                    None if labels => {
                        let v = pools::node_labels(&self.store, host).await?;
                        c.put_labels(host, v.clone());
                        Ok(v)
                    }
                    None => Ok(BTreeMap::new()),
                }
            },
        )?;
        Ok(Settings {
            config,
            pools,
            labels,
            cached,
        })
    }

    // --- affine blocks and block values ----------------------------------

    /// The host's confirmed affine blocks, from the cache or one list.
    pub(crate) async fn affine_blocks(&self, host: &str) -> Result<Vec<IpNet>> {
        if let Some(v) = self.cache.affine(host) {
            return Ok(v);
        }
        self.refresh_affine(host).await
    }

    /// A block's last known value: the cache's (maybe stale: only ever use
    /// it for a compare-and-swap, see [`crate::cache`]) or `None`.
    pub(crate) fn cached_block(&self, cidr: &IpNet) -> Option<Versioned<AllocationBlock>> {
        self.cache.block(cidr)
    }

    /// Read a block (remembering it).
    pub(crate) async fn read_block(
        &self,
        cidr: &IpNet,
    ) -> Result<Option<Versioned<AllocationBlock>>> {
        let b = self.store.get_block(cidr).await?;
        match &b {
            Some(b) => self.cache.put_block(b),
            None => self.cache.forget_block(cidr),
        }
        Ok(b)
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
        self.cache.set_affine(host, out.clone());
        Ok(out)
    }

    pub(crate) fn cache_add(&self, host: &str, cidr: IpNet) {
        self.cache.add_affine(host, cidr);
    }

    pub(crate) fn cache_forget(&self, host: &str, cidr: &IpNet) {
        self.cache.forget_affine(host, cidr);
    }

    pub(crate) fn cache_forget_host(&self, host: &str) {
        self.cache.forget_host(host);
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
