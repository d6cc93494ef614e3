//! Reclaiming another host's empty block when the pools have no unclaimed
//! block left (calico-datastore.md: "an empty block can be reclaimed by
//! another node a minute after it was claimed").
//!
//! Conservative by construction. A block is taken only when all hold:
//! - no block of the usable pools is unclaimed (claiming found none), and
//!   the host is under its block limit (checked before claiming);
//! - it is in a usable pool, affine to another host, and holds no address;
//! - this allocator has seen it empty at the same mod revision for at least
//!   the reclaim grace ([`DEFAULT_RECLAIM_AFTER`], one minute;
//!   [`Ipam::with_reclaim_after`]). Any claim, assignment or release
//!   changes the revision and restarts the clock, so a block is never taken
//!   within a minute of its claim or of its last use. (Newer Calico also
//!   records a claim time in the block; its etcd field is not among the
//!   facts manul follows, so it is not relied on. The price: a process that
//!   lives less than the grace never reclaims.)
//!
//! Steps, each compare-and-swap: a `pending` affinity for this host; the
//! block rewritten affine to this host, guarded by the revision at which it
//! was seen empty (an assignment by its old host in between makes this
//! fail, and the pending affinity is removed); the affinity confirmed; the
//! old host's affinity deleted. A crash between steps leaves what a claim
//! would: a pending affinity, or an old host's affinity to a block now
//! affine elsewhere (never used: every use checks the block's `affinity`;
//! removed by [`Ipam::release_affinities`] as stale).

use std::time::Duration;

use ipnet::IpNet;
use manul_datastore::etcd::Versioned;
use manul_datastore::ipam::{AffinityState, AllocationBlock};
use manul_datastore::keys::prefix;

use crate::block;
use crate::error::Result;
use crate::ipam::Ipam;
use crate::pools::Pool;
use crate::store::BlockSwap;

/// How long a block must have been seen empty and unchanged before another
/// host may take it.
pub const DEFAULT_RECLAIM_AFTER: Duration = Duration::from_secs(60);

impl Ipam {
    /// Take an empty block of `pools` affine to another host, if one has
    /// been empty long enough (see the module docs); its CIDR.
    pub(crate) async fn reclaim_empty_block(
        &self,
        host: &str,
        pools: &[Pool],
        v6: bool,
    ) -> Result<Option<IpNet>> {
        let (kvs, _) = self.store.list(&prefix::blocks(v6), None).await?;
        for kv in kvs {
            let Ok(b) = kv.decode::<AllocationBlock>() else {
                continue;
            };
            if crate::store::check_block(&b).is_err() {
                continue;
            }
            let other = match b.value.host() {
                Some(h) if h != host => h.to_string(),
                _ => continue,
            };
            if !pools.iter().any(|p| p.cidr.contains(&b.value.cidr))
                || !block::is_empty(&b.value)
                || !block::check(&b.value).is_empty()
            {
                continue;
            }
            if !self
                .cache
                .empty_long_enough(b.value.cidr, b.mod_revision, self.reclaim_after)
            {
                continue;
            }
            let cidr = b.value.cidr;
            if self.take_over(host, &other, b).await? {
                return Ok(Some(cidr));
            }
        }
        Ok(None)
    }

    /// Move block `b` (seen empty, affine to `other`) to `host`; whether
    /// it worked.
    async fn take_over(
        &self,
        host: &str,
        other: &str,
        mut b: Versioned<AllocationBlock>,
    ) -> Result<bool> {
        let st = &self.store;
        let cidr = b.value.cidr;
        let mut aff = match st
            .create_affinity(host, &cidr, AffinityState::Pending)
            .await
        {
            Ok(a) => a,
            Err(e) if e.is_conflict() => match st.get_affinity(host, &cidr).await? {
                Some(a) => a,
                None => return Ok(false),
            },
            Err(e) => return Err(e),
        };
        b.value.affinity = Some(AllocationBlock::affinity_for(host));
        b.value.host_affinity = None;
        match st.swap_block(&mut b).await? {
            BlockSwap::Written => {}
            BlockSwap::Lost(_) => {
                // Used (or taken) meanwhile: leave it, and our claim.
                if let Err(e) = st.delete_affinity(&aff).await {
                    if !(e.is_conflict() || e.is_not_found()) {
                        return Err(e);
                    }
                }
                return Ok(false);
            }
        }
        tracing::info!(block = %cidr, from = other, to = host, "reclaimed an empty block");
        if aff.value.state != AffinityState::Confirmed {
            match st
                .set_affinity_state(&mut aff, AffinityState::Confirmed)
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_conflict() || e.is_not_found() => {
                    // refresh_affine confirms a pending affinity whose block is ours.
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(old) = st.get_affinity(other, &cidr).await? {
            match st.delete_affinity(&old).await {
                Ok(()) => {}
                Err(e) if e.is_conflict() || e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        self.cache.put_block(&b);
        self.cache_add(host, cidr);
        Ok(true)
    }

    /// The same allocator, reclaiming other hosts' empty blocks after they
    /// have been seen empty and unchanged for `after` (see
    /// [`crate::reclaim`]; [`DEFAULT_RECLAIM_AFTER`] by default).
    pub fn with_reclaim_after(mut self, after: Duration) -> Self {
        self.reclaim_after = after;
        self
    }
}
