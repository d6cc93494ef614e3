//! Releasing addresses and blocks.
//!
//! - [`Ipam::release_ips`]: per block, the block is written first (compare-
//!   and-swap, sequence number bumped; an address whose allocation
//!   sequence number differs from the one given is left alone), then the
//!   handles are decremented (Calico's order). An empty block with no
//!   affinity is deleted.
//! - [`Ipam::release_by_handle`]: every address a handle holds, then the
//!   handle record.
//! - [`Ipam::release_host`] / [`Ipam::release_affinities`]: a host's
//!   blocks, with Calico's `ReleaseAffinity` semantics: the affinity is
//!   marked `pendingDeletion`, then an empty block is deleted, a non-empty
//!   one (only when emptiness is not required) keeps its allocations and
//!   loses its `affinity`, then the affinity is deleted. `release_host` is
//!   what node removal uses ([`crate::host_removal`]), as Calico's
//!   `RemoveIPAMHost` does (`ReleaseHostAffinities(host, false)`): empty
//!   blocks are deleted, a block still holding addresses keeps them, loses
//!   its affinity and may be claimed by any host.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::etcd::Versioned;
use manul_datastore::ipam::{AffinityState, AllocationBlock, IpamHandle};
use manul_datastore::keys::prefix;
use serde::Serialize;

use crate::block::{self, Released};
use crate::error::{IpamError, Result};
use crate::ipam::{Ipam, check_name};
use crate::store::{BlockSwap, MAX_RETRIES, path};

/// What [`Ipam::release_affinities`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostRelease {
    /// Blocks whose affinity was released and which were deleted (empty).
    pub released: Vec<IpNet>,
    /// Blocks whose affinity was released but which still hold addresses:
    /// kept with no affinity, claimable by any host (only when emptiness
    /// is not required).
    pub unaffined: Vec<IpNet>,
    /// Blocks kept with their affinity because they still hold addresses
    /// (only when emptiness is required).
    pub not_empty: Vec<IpNet>,
    /// Affinities found stale (block gone to another host) and deleted.
    pub stale: Vec<IpNet>,
}

impl Ipam {
    /// The block holding `ip`: from the pool's block size, or, outside
    /// every pool, by looking through the blocks of its family.
    pub(crate) async fn block_for(
        &self,
        ip: IpAddr,
        pools: &[crate::pools::Pool],
        blocks_cache: &mut Option<Vec<IpNet>>,
    ) -> Result<Option<IpNet>> {
        if let Some(b) = crate::pools::containing(pools, ip).and_then(|p| p.block_of(ip)) {
            return Ok(Some(b));
        }
        if blocks_cache.is_none() {
            let mut all = Vec::new();
            for v6 in [false, true] {
                let (kvs, _) = self.store.list(&prefix::blocks(v6), None).await?;
                all.extend(kvs.iter().filter_map(|kv| match Key::parse(&kv.key) {
                    Ok(Key::Block { cidr }) => Some(cidr),
                    _ => None,
                }));
            }
            *blocks_cache = Some(all);
        }
        Ok(blocks_cache
            .as_ref()
            .and_then(|all| all.iter().find(|c| c.contains(&ip)).copied()))
    }

    /// Release addresses, each with the allocation sequence number it
    /// must still have (`None`: unconditionally). The outcome of each, in
    /// the order given. Which block holds an address comes from the pools
    /// (cached, see [`crate::cache`]); an address found not assigned whose
    /// block the current pools place elsewhere is looked for there too.
    pub async fn release_ips(
        &self,
        ips: &[(IpAddr, Option<u64>)],
    ) -> Result<Vec<(IpAddr, Released)>> {
        let (pools, cached) = self.cached_pools().await?;
        let mut cache = None;
        let mut placed = HashMap::new();
        let mut outcome = self
            .release_placed(ips, &pools, &mut cache, &mut placed)
            .await?;
        let missed: Vec<(IpAddr, Option<u64>)> = ips
            .iter()
            .filter(|(ip, _)| matches!(outcome.get(ip), Some(Released::NotAssigned) | None))
            .copied()
            .collect();
        if cached && !missed.is_empty() {
            let pools = self.pools().await?;
            let mut moved = Vec::new();
            for &(ip, seq) in &missed {
                if self.block_for(ip, &pools, &mut cache).await? != placed.get(&ip).copied() {
                    moved.push((ip, seq));
                }
            }
            if !moved.is_empty() {
                let again = self
                    .release_placed(&moved, &pools, &mut cache, &mut HashMap::new())
                    .await?;
                outcome.extend(again);
            }
        }
        Ok(ips
            .iter()
            .map(|(ip, _)| {
                (
                    *ip,
                    outcome.get(ip).cloned().unwrap_or(Released::NotAssigned),
                )
            })
            .collect())
    }

    /// Release `ips` in the blocks `pools` place them in (recorded in
    /// `placed`).
    async fn release_placed(
        &self,
        ips: &[(IpAddr, Option<u64>)],
        pools: &[crate::pools::Pool],
        cache: &mut Option<Vec<IpNet>>,
        placed: &mut HashMap<IpAddr, IpNet>,
    ) -> Result<HashMap<IpAddr, Released>> {
        let mut by_block: BTreeMap<IpNet, Vec<(IpAddr, Option<u64>)>> = BTreeMap::new();
        let mut outcome: HashMap<IpAddr, Released> = HashMap::new();
        for &(ip, seq) in ips {
            match self.block_for(ip, pools, cache).await? {
                Some(b) => {
                    placed.insert(ip, b);
                    by_block.entry(b).or_default().push((ip, seq));
                }
                None => {
                    outcome.insert(ip, Released::NotAssigned);
                }
            }
        }
        for (cidr, list) in by_block {
            for (ip, r) in self.release_in_block(cidr, &list).await? {
                outcome.insert(ip, r);
            }
        }
        Ok(outcome)
    }

    /// Release addresses of one block: block first, then handles.
    pub(crate) async fn release_in_block(
        &self,
        cidr: IpNet,
        ips: &[(IpAddr, Option<u64>)],
    ) -> Result<Vec<(IpAddr, Released)>> {
        self.release_from_block(cidr, Which::Ips(ips), None).await
    }

    /// Release `which` addresses of block `cidr`: the block first
    /// (compare-and-swap, starting from its cached value, see
    /// [`crate::cache`]), then the handles. `known`: a handle the caller
    /// holds as last read or written, decremented without reading it again.
    async fn release_from_block(
        &self,
        cidr: IpNet,
        which: Which<'_>,
        mut known: Option<(&str, &mut Option<Versioned<IpamHandle>>)>,
    ) -> Result<Vec<(IpAddr, Released)>> {
        let st = &self.store;
        let mut cur = self.cached_block(&cidr).map(|b| (b, true));
        for _ in 0..MAX_RETRIES {
            let (mut b, cached) = match cur.take() {
                Some(x) => x,
                None => match self.read_block(&cidr).await? {
                    Some(b) => (b, false),
                    None => return Ok(which.not_assigned()),
                },
            };
            let ips = which.of(&b.value);
            let results = block::release(&mut b.value, &ips);
            let mut freed: BTreeMap<String, u64> = BTreeMap::new();
            let mut any = false;
            for (_, r) in &results {
                if let Released::Freed { handle } = r {
                    any = true;
                    if let Some(h) = handle {
                        *freed.entry(h.clone()).or_default() += 1;
                    }
                }
            }
            if !any {
                // Nothing to write: decide on a fresh value only.
                if cached {
                    continue;
                }
                return Ok(results);
            }
            let delete = block::is_empty(&b.value) && b.value.host().is_none();
            let r = if delete {
                st.swap_delete_block(&b).await?
            } else {
                st.swap_block(&mut b).await?
            };
            match r {
                BlockSwap::Written if delete => self.cache.forget_block(&cidr),
                BlockSwap::Written => self.cache.put_block(&b),
                BlockSwap::Lost(now) => {
                    match &now {
                        Some(now) => self.cache.put_block(now),
                        None => self.cache.forget_block(&cidr),
                    }
                    cur = now.map(|b| (*b, false));
                    if cur.is_none() {
                        return Ok(which.not_assigned());
                    }
                    continue;
                }
            }
            for (h, n) in freed {
                let mut none = None;
                let k = match known.as_mut() {
                    Some((id, k)) if *id == h => &mut **k,
                    _ => &mut none,
                };
                if let Err(e) = st.decrement_handle(&h, &cidr, n, k).await {
                    tracing::warn!(handle = %h, block = %cidr, error = %e, "address released but its handle was not decremented; the leak check will report the handle");
                    *k = None;
                }
            }
            return Ok(results);
        }
        Err(IpamError::TooManyRetries {
            what: format!("releasing in block {cidr}"),
            attempts: MAX_RETRIES,
        })
    }

    /// Release every address `handle` holds; the addresses released. A
    /// handle that does not exist holds nothing (no error). Afterwards the
    /// handle record is removed, including counts a crash left for blocks
    /// that no longer hold its addresses.
    pub async fn release_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>> {
        check_name("handle ID", handle)?;
        let st = &self.store;
        let Some(h) = st.get_handle(handle).await? else {
            return Ok(Vec::new());
        };
        let mut known = Some(h.clone());
        let mut released = Vec::new();
        for cidr_s in h.value.block.keys() {
            let cidr: IpNet = cidr_s.parse().map_err(|_| IpamError::Malformed {
                key: h.key.clone(),
                reason: format!("block {cidr_s:?} is not a CIDR"),
            })?;
            let results = self
                .release_from_block(cidr, Which::Handle(handle), Some((handle, &mut known)))
                .await?;
            for (ip, r) in results {
                if matches!(r, Released::Freed { .. }) {
                    released.push(ip);
                }
            }
        }
        // Gone (its last count released): nothing left to tidy.
        if known.is_some() {
            self.drop_empty_handle_counts(handle).await?;
        }
        Ok(released)
    }

    /// Remove a handle's counts for blocks holding none of its addresses.
    async fn drop_empty_handle_counts(&self, handle: &str) -> Result<()> {
        let st = &self.store;
        let key = path(&Key::Handle {
            id: handle.to_string(),
        })?;
        for _ in 0..MAX_RETRIES {
            let Some(h) = st.get_handle(handle).await? else {
                return Ok(());
            };
            let mut keep: BTreeMap<String, u64> = BTreeMap::new();
            for (cidr_s, n) in &h.value.block {
                let Ok(cidr) = cidr_s.parse::<IpNet>() else {
                    continue;
                };
                if let Some(b) = st.get_block(&cidr).await? {
                    let held = block::ips_of_handle(&b.value, handle).len() as u64;
                    if held > 0 {
                        keep.insert(cidr_s.clone(), held.min(*n));
                    }
                }
            }
            if keep == h.value.block {
                return Ok(());
            }
            let r = if keep.is_empty() {
                st.delete(&key, h.mod_revision).await.map(drop)
            } else {
                let value = IpamHandle {
                    block: keep,
                    ..h.value.clone()
                };
                st.update_json(&key, &value, h.mod_revision).await.map(drop)
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

    /// Node removal (Calico's `RemoveIPAMHost`): release every affinity
    /// of the host; its empty blocks are deleted, the others keep their
    /// addresses and lose their affinity.
    pub async fn release_host(&self, host: &str) -> Result<HostRelease> {
        self.release_affinities(host, false).await
    }

    /// Release every affinity of `host` (Calico's
    /// `ReleaseHostAffinities`); see the module docs.
    pub async fn release_affinities(&self, host: &str, must_be_empty: bool) -> Result<HostRelease> {
        check_name("host", host)?;
        let (kvs, _) = self
            .store
            .list(&prefix::host_affinities(host), None)
            .await?;
        let mut out = HostRelease::default();
        for kv in kvs {
            let Ok(Key::BlockAffinity { cidr, .. }) = Key::parse(&kv.key) else {
                tracing::warn!(key = %kv.key, "skipping affinity key outside the layout");
                continue;
            };
            match self
                .release_block_affinity(host, cidr, must_be_empty)
                .await?
            {
                AffinityRelease::Released => out.released.push(cidr),
                AffinityRelease::Unaffined => out.unaffined.push(cidr),
                AffinityRelease::NotEmpty => out.not_empty.push(cidr),
                AffinityRelease::Stale => out.stale.push(cidr),
                AffinityRelease::Gone => {}
            }
        }
        self.cache_forget_host(host);
        Ok(out)
    }

    async fn release_block_affinity(
        &self,
        host: &str,
        cidr: IpNet,
        must_be_empty: bool,
    ) -> Result<AffinityRelease> {
        let st = &self.store;
        let benign = |e: &IpamError| e.is_conflict() || e.is_not_found();
        for _ in 0..MAX_RETRIES {
            let Some(mut aff) = st.get_affinity(host, &cidr).await? else {
                return Ok(AffinityRelease::Gone);
            };
            let Some(mut b) = st.get_block(&cidr).await? else {
                match st.delete_affinity(&aff).await {
                    Err(e) if e.is_conflict() => continue,
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => return Ok(AffinityRelease::Released),
                }
            };
            if let Some(other) = b.value.host() {
                if other != host {
                    match st.delete_affinity(&aff).await {
                        Err(e) if e.is_conflict() => continue,
                        Err(e) if !e.is_not_found() => return Err(e),
                        _ => return Ok(AffinityRelease::Stale),
                    }
                }
            }
            let empty = block::is_empty(&b.value);
            if must_be_empty && !empty {
                // A release that lost a race may have left it marked.
                if aff.value.state != AffinityState::Confirmed && b.value.host() == Some(host) {
                    match st
                        .set_affinity_state(&mut aff, AffinityState::Confirmed)
                        .await
                    {
                        Err(e) if benign(&e) => continue,
                        Err(e) => return Err(e),
                        Ok(()) => {}
                    }
                }
                return Ok(AffinityRelease::NotEmpty);
            }
            match st
                .set_affinity_state(&mut aff, AffinityState::PendingDeletion)
                .await
            {
                Err(e) if benign(&e) => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let r = if empty {
                st.delete_block(&b).await
            } else {
                b.value.affinity = None;
                b.value.host_affinity = None;
                st.update_block(&mut b).await
            };
            match r {
                Err(e) if e.is_conflict() => continue,
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            match st.delete_affinity(&aff).await {
                Err(e) if e.is_conflict() => continue,
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            self.cache_forget(host, &cidr);
            return Ok(if empty {
                AffinityRelease::Released
            } else {
                AffinityRelease::Unaffined
            });
        }
        Err(IpamError::TooManyRetries {
            what: format!("releasing the affinity of {host} to {cidr}"),
            attempts: MAX_RETRIES,
        })
    }
}

/// Which addresses of a block [`Ipam::release_from_block`] releases.
#[derive(Clone, Copy)]
enum Which<'a> {
    /// These, with the sequence numbers they must have.
    Ips(&'a [(IpAddr, Option<u64>)]),
    /// Every one this handle holds (with their current sequence numbers).
    Handle(&'a str),
}

impl Which<'_> {
    fn of(self, b: &AllocationBlock) -> Vec<(IpAddr, Option<u64>)> {
        match self {
            Which::Ips(ips) => ips.to_vec(),
            Which::Handle(h) => block::ips_of_handle(b, h)
                .into_iter()
                .map(|ip| (ip, seq_of(b, ip)))
                .collect(),
        }
    }

    /// The outcome when the block does not exist.
    fn not_assigned(self) -> Vec<(IpAddr, Released)> {
        match self {
            Which::Ips(ips) => ips
                .iter()
                .map(|(ip, _)| (*ip, Released::NotAssigned))
                .collect(),
            Which::Handle(_) => Vec::new(),
        }
    }
}

enum AffinityRelease {
    Released,
    Unaffined,
    NotEmpty,
    Stale,
    Gone,
}

/// The allocation sequence number of an assigned `ip`.
pub(crate) fn seq_of(b: &AllocationBlock, ip: IpAddr) -> Option<u64> {
    block::ordinal(&b.cidr, ip).and_then(|o| b.sequence_number_for(o))
}
