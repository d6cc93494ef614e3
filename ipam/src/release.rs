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
//!   what node removal uses: only empty blocks go; a block still holding
//!   addresses keeps its affinity (release the pods' addresses first).

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
use crate::store::{MAX_RETRIES, path};

/// What [`Ipam::release_affinities`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostRelease {
    /// Blocks whose affinity was released (deleted when empty).
    pub released: Vec<IpNet>,
    /// Blocks kept because they still hold addresses.
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
    /// the order given.
    pub async fn release_ips(
        &self,
        ips: &[(IpAddr, Option<u64>)],
    ) -> Result<Vec<(IpAddr, Released)>> {
        let pools = self.pools().await?;
        let mut cache = None;
        let mut by_block: BTreeMap<IpNet, Vec<(IpAddr, Option<u64>)>> = BTreeMap::new();
        let mut outcome: HashMap<IpAddr, Released> = HashMap::new();
        for &(ip, seq) in ips {
            match self.block_for(ip, &pools, &mut cache).await? {
                Some(b) => by_block.entry(b).or_default().push((ip, seq)),
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

    /// Release addresses of one block: block first, then handles.
    pub(crate) async fn release_in_block(
        &self,
        cidr: IpNet,
        ips: &[(IpAddr, Option<u64>)],
    ) -> Result<Vec<(IpAddr, Released)>> {
        self.release_in_block_from(cidr, ips, None).await
    }

    /// [`Ipam::release_in_block`], starting from `read`, the block as the
    /// caller just read it (saves a read; if it is stale by now its
    /// compare-and-swap fails and the block is read again).
    async fn release_in_block_from(
        &self,
        cidr: IpNet,
        ips: &[(IpAddr, Option<u64>)],
        mut read: Option<Versioned<AllocationBlock>>,
    ) -> Result<Vec<(IpAddr, Released)>> {
        let st = &self.store;
        for _ in 0..MAX_RETRIES {
            let b = match read.take() {
                Some(b) => Some(b),
                None => st.get_block(&cidr).await?,
            };
            let Some(mut b) = b else {
                return Ok(ips
                    .iter()
                    .map(|(ip, _)| (*ip, Released::NotAssigned))
                    .collect());
            };
            let results = block::release(&mut b.value, ips);
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
                return Ok(results);
            }
            let r = if block::is_empty(&b.value) && b.value.host().is_none() {
                st.delete_block(&b).await
            } else {
                st.update_block(&mut b).await
            };
            match r {
                Err(e) if e.is_conflict() || e.is_not_found() => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            for (h, n) in freed {
                if let Err(e) = st.decrement_handle(&h, &cidr, n).await {
                    tracing::warn!(handle = %h, block = %cidr, error = %e, "address released but its handle was not decremented; the leak check will report the handle");
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
        let mut released = Vec::new();
        for cidr_s in h.value.block.keys() {
            let cidr: IpNet = cidr_s.parse().map_err(|_| IpamError::Malformed {
                key: h.key.clone(),
                reason: format!("block {cidr_s:?} is not a CIDR"),
            })?;
            let Some(b) = st.get_block(&cidr).await? else {
                continue;
            };
            let ips: Vec<(IpAddr, Option<u64>)> = block::ips_of_handle(&b.value, handle)
                .into_iter()
                .map(|ip| (ip, seq_of(&b.value, ip)))
                .collect();
            if ips.is_empty() {
                continue;
            }
            for (ip, r) in self.release_in_block_from(cidr, &ips, Some(b)).await? {
                if matches!(r, Released::Freed { .. }) {
                    released.push(ip);
                }
            }
        }
        self.drop_empty_handle_counts(handle).await?;
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

    /// Node removal: release the host's empty blocks and their affinities;
    /// blocks still holding addresses keep their affinity.
    pub async fn release_host(&self, host: &str) -> Result<HostRelease> {
        self.release_affinities(host, true).await
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
            return Ok(AffinityRelease::Released);
        }
        Err(IpamError::TooManyRetries {
            what: format!("releasing the affinity of {host} to {cidr}"),
            attempts: MAX_RETRIES,
        })
    }
}

enum AffinityRelease {
    Released,
    NotEmpty,
    Stale,
    Gone,
}

/// The allocation sequence number of an assigned `ip`.
pub(crate) fn seq_of(b: &AllocationBlock, ip: IpAddr) -> Option<u64> {
    block::ordinal(&b.cidr, ip).and_then(|o| b.sequence_number_for(o))
}
