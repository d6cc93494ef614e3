//! What one [`crate::Ipam`] remembers between calls, so that a warm
//! assignment in a host's own block reads only the IPReservations (never
//! cached, see [`crate::reservations`]) and writes twice.
//!
//! | what | kept | how staleness is caught |
//! |---|---|---|
//! | host → confirmed affine blocks | until dropped | every use checks the block's `affinity`; listed again before a claim |
//! | block → last value read or written, with its mod revision | until dropped (at most [`MAX_BLOCKS`]) | every write is compare-and-swap on that revision; a lost one returns the current value |
//! | IPAM config, IP pools, a host's Node labels | [`DEFAULT_TTL`] (see [`crate::Ipam::with_cache_ttl`]) | read again before claiming a block or borrowing, and after a failure they may have caused |
//!
//! The rule that keeps cached blocks safe: a cached value only ever leads to
//! a compare-and-swap write. If that write succeeds, the cached value was
//! the current one, so every decision made from it was right; if it loses,
//! the write returns the current value and the decision is made again. A
//! decision that writes nothing ("this block is full", "not ours", "that
//! address is not assigned") is never taken from the cache: the block is
//! read again first.
//!
//! Config, pools and labels are used from the cache only for assignments in
//! the host's existing affine blocks. So, in this process, a pool disabled
//! (or no longer selecting the host) may still serve addresses from the
//! host's blocks for up to the TTL; every other change (strict affinity,
//! the block limit, new pools) takes effect at once because claiming and
//! borrowing read fresh. Changes made through this `Ipam`
//! ([`crate::Ipam::set_config`]) clear the cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use manul_datastore::etcd::Versioned;
use manul_datastore::ipam::{AllocationBlock, IpamConfig};

use crate::pools::Pool;

/// How long config, pools and Node labels are used without reading them
/// again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// Blocks remembered at most; past it the block cache starts over.
pub const MAX_BLOCKS: usize = 1024;

#[derive(Debug, Clone)]
struct Timed<T> {
    value: T,
    read_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    affine: HashMap<String, Vec<IpNet>>,
    blocks: HashMap<IpNet, Versioned<AllocationBlock>>,
    config: Option<Timed<IpamConfig>>,
    pools: Option<Timed<Vec<Pool>>>,
    labels: HashMap<String, Timed<BTreeMap<String, String>>>,
    /// Other hosts' blocks seen empty: at which revision, since when.
    empty_seen: HashMap<IpNet, (i64, Instant)>,
}

/// The cache (see the module docs). Shared by an `Ipam`'s clones.
#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_TTL)
    }
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh<T: Clone>(&self, t: Option<&Timed<T>>) -> Option<T> {
        t.filter(|t| t.read_at.elapsed() < self.ttl)
            .map(|t| t.value.clone())
    }

    // --- config, pools, labels (TTL) -----------------------------------

    pub(crate) fn config(&self) -> Option<IpamConfig> {
        self.fresh(self.lock().config.as_ref())
    }

    pub(crate) fn put_config(&self, value: IpamConfig) {
        self.lock().config = Some(Timed {
            value,
            read_at: Instant::now(),
        });
    }

    pub(crate) fn pools(&self) -> Option<Vec<Pool>> {
        self.fresh(self.lock().pools.as_ref())
    }

    pub(crate) fn put_pools(&self, value: Vec<Pool>) {
        self.lock().pools = Some(Timed {
            value,
            read_at: Instant::now(),
        });
    }

    pub(crate) fn labels(&self, host: &str) -> Option<BTreeMap<String, String>> {
        self.fresh(self.lock().labels.get(host))
    }

    pub(crate) fn put_labels(&self, host: &str, value: BTreeMap<String, String>) {
        self.lock().labels.insert(
            host.to_string(),
            Timed {
                value,
                read_at: Instant::now(),
            },
        );
    }

    /// Forget config, pools and labels (not blocks: their writes check).
    pub(crate) fn expire_settings(&self) {
        let mut c = self.lock();
        c.config = None;
        c.pools = None;
        c.labels.clear();
    }

    // --- affine blocks ------------------------------------------------

    pub(crate) fn affine(&self, host: &str) -> Option<Vec<IpNet>> {
        self.lock().affine.get(host).cloned()
    }

    pub(crate) fn set_affine(&self, host: &str, cidrs: Vec<IpNet>) {
        self.lock().affine.insert(host.to_string(), cidrs);
    }

    pub(crate) fn add_affine(&self, host: &str, cidr: IpNet) {
        let mut c = self.lock();
        let v = c.affine.entry(host.to_string()).or_default();
        if !v.contains(&cidr) {
            v.push(cidr);
        }
    }

    pub(crate) fn forget_affine(&self, host: &str, cidr: &IpNet) {
        if let Some(v) = self.lock().affine.get_mut(host) {
            v.retain(|c| c != cidr);
        }
    }

    pub(crate) fn forget_host(&self, host: &str) {
        self.lock().affine.remove(host);
    }

    // --- block values -------------------------------------------------

    pub(crate) fn block(&self, cidr: &IpNet) -> Option<Versioned<AllocationBlock>> {
        self.lock().blocks.get(cidr).cloned()
    }

    pub(crate) fn put_block(&self, b: &Versioned<AllocationBlock>) {
        let mut c = self.lock();
        if c.blocks.len() >= MAX_BLOCKS && !c.blocks.contains_key(&b.value.cidr) {
            c.blocks.clear();
        }
        c.blocks.insert(b.value.cidr, b.clone());
    }

    pub(crate) fn forget_block(&self, cidr: &IpNet) {
        self.lock().blocks.remove(cidr);
    }

    // --- empty blocks (see crate::reclaim) ------------------------------

    /// Whether block `cidr`, seen empty now at `rev`, was already seen
    /// empty at that same revision at least `after` ago (with `after`
    /// zero: at once). Remembers this sighting.
    pub(crate) fn empty_long_enough(&self, cidr: IpNet, rev: i64, after: Duration) -> bool {
        let mut c = self.lock();
        if c.empty_seen.len() >= MAX_BLOCKS && !c.empty_seen.contains_key(&cidr) {
            c.empty_seen.clear();
        }
        match c.empty_seen.get(&cidr) {
            Some((r, since)) if *r == rev => since.elapsed() >= after,
            _ => {
                c.empty_seen.insert(cidr, (rev, Instant::now()));
                after.is_zero()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_expire_and_blocks_do_not() {
        let c = Cache::new(Duration::ZERO);
        c.put_config(IpamConfig::default());
        c.put_labels("h", BTreeMap::new());
        assert!(c.config().is_none(), "a zero TTL keeps nothing");
        assert!(c.labels("h").is_none());
        let c = Cache::new(Duration::from_secs(3600));
        c.put_config(IpamConfig::default());
        c.put_pools(Vec::new());
        assert!(c.config().is_some() && c.pools().is_some());
        c.expire_settings();
        assert!(c.config().is_none() && c.pools().is_none());
    }

    #[test]
    fn an_empty_block_must_stay_unchanged_for_the_grace() {
        let c = Cache::default();
        let n: IpNet = "10.0.0.0/26".parse().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(!c.empty_long_enough(n, 5, hour), "first sighting");
        assert!(!c.empty_long_enough(n, 5, hour), "not an hour yet");
        assert!(c.empty_long_enough(n, 5, Duration::ZERO));
        assert!(
            !c.empty_long_enough(n, 6, hour),
            "changed: the clock restarts"
        );
        assert!(c.empty_long_enough(n, 7, Duration::ZERO));
    }

    #[test]
    fn affine_lists_hold_each_block_once() {
        let c = Cache::default();
        let n: IpNet = "10.0.0.0/26".parse().unwrap();
        assert!(c.affine("h").is_none());
        c.add_affine("h", n);
        c.add_affine("h", n);
        assert_eq!(c.affine("h").unwrap(), vec![n]);
        c.forget_affine("h", &n);
        assert_eq!(c.affine("h").unwrap(), Vec::<IpNet>::new());
        c.forget_host("h");
        assert!(c.affine("h").is_none());
    }
}
