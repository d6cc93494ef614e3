//! Claiming a block for a host, Calico's three steps: write a `pending`
//! affinity (create-if-absent), create the block affine to the host
//! (create-if-absent), confirm the affinity. A crash between steps leaves a
//! pending affinity (not owned, not advertised), which the next claim by
//! the same host resumes, [`Ipam::refresh_affine`] confirms when its block
//! exists, and the leak check reports otherwise.
//!
//! If the block already exists: affine to this host (another process here
//! won the race) it is used; affine elsewhere, the pending affinity is
//! deleted and the caller tries another block.
//!
//! Where a host looks in a pool: from a start index hashed from its name
//! (FNV-1a), wrapping around, skipping blocks that exist (one list of the
//! family's blocks per claim; claims are rare, assignments are not).

use std::collections::HashSet;

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::ipam::AffinityState;
use manul_datastore::keys::prefix;

use crate::block;
use crate::error::{IpamError, Result};
use crate::ipam::Ipam;
use crate::pools::{Pool, host_seed};
use crate::store::MAX_RETRIES;

/// The outcome of trying to claim one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The block is now affine to the host (newly or already).
    Ours,
    /// Another host holds it.
    Taken,
}

impl Ipam {
    /// The CIDRs of every existing block of one family.
    pub(crate) async fn existing_blocks(&self, v6: bool) -> Result<HashSet<IpNet>> {
        let (kvs, _) = self.store.list(&prefix::blocks(v6), None).await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| match Key::parse(&kv.key) {
                Ok(Key::Block { cidr }) => Some(cidr),
                _ => None,
            })
            .collect())
    }

    /// Claim a free block of `pools` for `host`; `None` when every block of
    /// every pool exists.
    pub(crate) async fn claim_new_block(
        &self,
        host: &str,
        pools: &[Pool],
        v6: bool,
    ) -> Result<Option<IpNet>> {
        let mut existing = self.existing_blocks(v6).await?;
        let seed = u128::from(host_seed(host));
        let mut lost = 0usize;
        for pool in pools {
            let n = pool.block_count();
            let start = seed % n;
            let mut i = 0u128;
            while i < n {
                let idx = (start + i) % n;
                i += 1;
                let Some(cidr) = pool.block_at(idx) else {
                    continue;
                };
                if existing.contains(&cidr) {
                    continue;
                }
                match self.claim_block(host, cidr).await? {
                    Claim::Ours => return Ok(Some(cidr)),
                    Claim::Taken => {
                        existing.insert(cidr);
                        lost += 1;
                        if lost > MAX_RETRIES {
                            return Err(IpamError::TooManyRetries {
                                what: format!("claiming a block in {}", pool.cidr),
                                attempts: lost,
                            });
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Claim `cidr` for `host` (see the module docs).
    pub(crate) async fn claim_block(&self, host: &str, cidr: IpNet) -> Result<Claim> {
        let st = &self.store;
        for _ in 0..MAX_RETRIES {
            // 1. A pending affinity (or the one already there).
            let mut aff = match st
                .create_affinity(host, &cidr, AffinityState::Pending)
                .await
            {
                Ok(a) => a,
                Err(e) if e.is_conflict() => match st.get_affinity(host, &cidr).await? {
                    None => continue,
                    Some(mut a) => {
                        if a.value.state != AffinityState::Confirmed {
                            match st.set_affinity_state(&mut a, AffinityState::Pending).await {
                                Ok(()) => {}
                                Err(e) if e.is_conflict() || e.is_not_found() => continue,
                                Err(e) => return Err(e),
                            }
                        }
                        a
                    }
                },
                Err(e) => return Err(e),
            };
            // 2. The block.
            let fresh = block::new_block(cidr, Some(host))?;
            match st.create_block(&fresh).await {
                Ok(b) => self.cache.put_block(&b),
                Err(e) if e.is_conflict() => match st.get_block(&cidr).await? {
                    Some(b) if b.value.host() == Some(host) => {}
                    Some(_) => {
                        // Someone else's: drop our claim on it.
                        match st.delete_affinity(&aff).await {
                            Ok(()) => {}
                            Err(e) if e.is_conflict() || e.is_not_found() => {}
                            Err(e) => return Err(e),
                        }
                        self.cache_forget(host, &cidr);
                        return Ok(Claim::Taken);
                    }
                    None => continue,
                },
                Err(e) => return Err(e),
            }
            // 3. Confirm.
            if aff.value.state != AffinityState::Confirmed {
                match st
                    .set_affinity_state(&mut aff, AffinityState::Confirmed)
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.is_conflict() || e.is_not_found() => {
                        // Another process on this host confirmed (or a
                        // collector removed it): make sure it is confirmed.
                        self.ensure_confirmed(host, &cidr).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.cache_add(host, cidr);
            return Ok(Claim::Ours);
        }
        Err(IpamError::TooManyRetries {
            what: format!("claiming block {cidr} for {host}"),
            attempts: MAX_RETRIES,
        })
    }

    /// The host's affinity to `cidr` exists and is confirmed.
    async fn ensure_confirmed(&self, host: &str, cidr: &IpNet) -> Result<()> {
        let st = &self.store;
        for _ in 0..MAX_RETRIES {
            let r = match st.get_affinity(host, cidr).await? {
                None => st
                    .create_affinity(host, cidr, AffinityState::Confirmed)
                    .await
                    .map(drop),
                Some(a) if a.value.state == AffinityState::Confirmed => return Ok(()),
                Some(mut a) => {
                    st.set_affinity_state(&mut a, AffinityState::Confirmed)
                        .await
                }
            };
            match r {
                Err(e) if e.is_conflict() || e.is_not_found() => continue,
                other => return other,
            }
        }
        Err(IpamError::TooManyRetries {
            what: format!("confirming the affinity of {host} to {cidr}"),
            attempts: MAX_RETRIES,
        })
    }
}
