//! Assigning addresses: [`Ipam::auto_assign`] and [`Ipam::assign_ip`].
//!
//! Order (Calico's `autoAssign`), per family:
//! 1. the host's confirmed affine blocks in the usable pools (cached, see
//!    [`crate::ipam`]); config, pools and Node labels may come from the
//!    cache here ([`crate::cache`]), and are read again before step 2 (and
//!    when cached ones select no pool);
//! 2. if automatic block allocation is on: list the host's affinities again
//!    (another process on the host may have claimed one), then claim a new
//!    block, unless the host already holds the per-host limit of blocks
//!    ([`crate::config::effective_max_blocks`]) — then it is
//!    [`IpamError::BlockLimit`], without borrowing, as in Calico; when
//!    every block of the pools exists, reclaim another host's block that
//!    has stayed empty long enough ([`crate::reclaim`]);
//! 3. unless strict affinity is on: borrow free addresses from other
//!    blocks of the usable pools (other hosts' blocks, or blocks with no
//!    affinity);
//! 4. else [`IpamError::PoolExhausted`] naming the pools.
//!
//! Writes per block: the handle first (count incremented; created without
//! reading it first), then the block (compare-and-swap on the cached
//! revision, sequence number bumped). So a warm assignment in a block with
//! room is two writes and one read, the IPReservations' list (they are
//! read on every call, see [`crate::reservations`]; a reserved address is
//! never assigned here). A lost compare-and-swap returns the
//! block as it is now and is tried again from it, keeping the handle
//! increment; if
//! the block write finally fails the increment is undone. A call that
//! fails part way releases what it had assigned, so a failure leaves no
//! addresses behind (a crash may: the leak check finds them).
//!
//! Pools: only those whose `allowedUses` contain the intended use
//! ([`AutoAssignArgs::intended_use`], `Workload` by default), see
//! [`crate::pools`].
//!
//! Attributes: when the caller gives no `node` attribute, the host is
//! recorded as `node` (Calico's CNI plugin always sets it), so borrowed
//! addresses can be told from the block host's own.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::etcd::Versioned;
use manul_datastore::ipam::{AllocationBlock, IpamHandle, attr};
use manul_datastore::resources::AllowedUse;

use crate::block;
use crate::config::effective_max_blocks;
use crate::error::{IpamError, Result};
use crate::ipam::{Ipam, Settings, check_name};
use crate::pools::{self, Pool, host_seed};
use crate::store::{BlockSwap, MAX_RETRIES};

/// What [`Ipam::auto_assign`] is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoAssignArgs {
    /// The owner of the addresses (`k8s-pod-network.<containerID>`...).
    pub handle_id: String,
    /// IPv4 addresses wanted.
    pub num_v4: usize,
    /// IPv6 addresses wanted.
    pub num_v6: usize,
    /// The host (Calico node name) the addresses are for.
    pub host: String,
    /// Attributes stored with the allocation (`namespace`, `pod`, `node`,
    /// `timestamp`...).
    pub attrs: BTreeMap<String, String>,
    /// Only these pools (by CIDR, either family); empty: every pool that
    /// selects the host.
    pub pools: Vec<IpNet>,
    /// What the addresses are for; only pools whose `allowedUses` contain
    /// it are used. `None`: `Workload` (a pod). A node's tunnel address
    /// (handle `ipip-tunnel-addr-<node>` or `vxlan-tunnel-addr-<node>`) is
    /// `Tunnel`; a service's address `LoadBalancer`.
    pub intended_use: Option<AllowedUse>,
}

/// What one family's assignment is for.
struct Job<'a> {
    args: &'a AutoAssignArgs,
    attrs: &'a BTreeMap<String, String>,
    requested: &'a [IpNet],
    v6: bool,
    /// Reserved networks ([`crate::reservations`]): never assigned.
    reserved: &'a [IpNet],
}

fn is_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
}

/// The handle as this call last wrote it (see [`crate::store::Store::increment_handle`]).
type KnownHandle = Option<Versioned<IpamHandle>>;

/// One attempt at a block in [`Ipam::take_from`].
enum Step {
    /// Finished: the addresses taken, or `None` when the block is gone or
    /// not the owner's.
    Done(Option<Vec<IpAddr>>),
    /// Try again, from this current value (`None`: read it).
    Again(Option<Box<Versioned<AllocationBlock>>>),
}

impl Ipam {
    /// Assign `num_v4` IPv4 and `num_v6` IPv6 addresses to a handle;
    /// IPv4 addresses first in the result. All or nothing.
    pub async fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Vec<IpAddr>> {
        check_name("handle ID", &args.handle_id)?;
        check_name("host", &args.host)?;
        let wanted = |v6: bool| {
            let n = if v6 { args.num_v6 } else { args.num_v4 };
            n > 0
        };
        // The Node's labels matter only for a family with no pools asked for.
        let need_labels = [false, true]
            .into_iter()
            .any(|v6| wanted(v6) && !args.pools.iter().any(|p| is_v6(p) == v6));
        let mut settings = self
            .settings(
                &args.host,
                wanted(false) || wanted(true),
                need_labels,
                false,
            )
            .await?;
        let mut attrs = args.attrs.clone();
        attrs
            .entry(attr::NODE.to_string())
            .or_insert_with(|| args.host.clone());
        let reserved = self.reservations().await?;
        let mut out = Vec::new();
        let mut known: KnownHandle = None;
        for (v6, n) in [(false, args.num_v4), (true, args.num_v6)] {
            if n == 0 {
                continue;
            }
            let requested: Vec<IpNet> = args
                .pools
                .iter()
                .filter(|p| is_v6(p) == v6)
                .copied()
                .collect();
            let job = Job {
                args,
                attrs: &attrs,
                requested: &requested,
                v6,
                reserved: &reserved,
            };
            if let Err(e) = self
                .assign_family(&mut settings, &job, n, &mut known, &mut out)
                .await
            {
                self.undo(&out).await;
                return Err(e);
            }
        }
        Ok(out)
    }

    /// Release what a failed call had assigned (best effort, logged).
    async fn undo(&self, ips: &[IpAddr]) {
        if ips.is_empty() {
            return;
        }
        let list: Vec<(IpAddr, Option<u64>)> = ips.iter().map(|ip| (*ip, None)).collect();
        if let Err(e) = self.release_ips(&list).await {
            tracing::warn!(error = %e, ips = ?ips, "could not release the addresses of a failed assignment; the leak check will find them");
        }
    }

    /// Read config, pools and labels again (they came from the cache).
    async fn refresh_settings(&self, s: &mut Settings, job: &Job<'_>) -> Result<()> {
        *s = self
            .settings(&job.args.host, true, job.requested.is_empty(), true)
            .await?;
        Ok(())
    }

    /// The pools usable for this family; with cached settings that yield
    /// none, read again first.
    async fn usable_pools(&self, s: &mut Settings, job: &Job<'_>) -> Result<Vec<Pool>> {
        let use_ = job
            .args
            .intended_use
            .clone()
            .unwrap_or(AllowedUse::Workload);
        let usable = |s: &Settings| {
            pools::usable_for(
                &s.pools,
                &s.labels,
                &job.args.host,
                job.requested,
                job.v6,
                &use_,
            )
        };
        match usable(s) {
            Err(_) if s.cached => {
                self.refresh_settings(s, job).await?;
                usable(s)
            }
            r => r,
        }
    }

    async fn assign_family(
        &self,
        s: &mut Settings,
        job: &Job<'_>,
        n: usize,
        known: &mut KnownHandle,
        out: &mut Vec<IpAddr>,
    ) -> Result<()> {
        let host = job.args.host.as_str();
        let v6 = job.v6;
        let fam = |c: &IpNet| matches!(c, IpNet::V6(_)) == v6;
        let mut want = n;
        let mut tried: HashSet<IpNet> = HashSet::new();
        let mut pools = self.usable_pools(s, job).await?;

        // 1. Affine blocks (settings maybe from the cache).
        want -= self
            .take_affine(job, &pools, want, &mut tried, known, out)
            .await?;
        if want > 0 && s.cached {
            // Everything past this point reads config and pools fresh.
            self.refresh_settings(s, job).await?;
            pools = self.usable_pools(s, job).await?;
            want -= self
                .take_affine(job, &pools, want, &mut tried, known, out)
                .await?;
        }
        let in_pools = |c: &IpNet| pools.iter().any(|p| p.cidr.contains(c));

        // 2. Claim new blocks.
        let cfg = &s.config;
        let limit = effective_max_blocks(cfg);
        let mut rounds = 0;
        while want > 0 && cfg.auto_allocate_blocks() {
            rounds += 1;
            if rounds > MAX_RETRIES {
                return Err(IpamError::TooManyRetries {
                    what: format!("finding a block for {host}"),
                    attempts: rounds,
                });
            }
            let fresh: Vec<IpNet> = self
                .refresh_affine(host)
                .await?
                .into_iter()
                .filter(|c| fam(c))
                .collect();
            let unseen: Vec<IpNet> = fresh
                .iter()
                .filter(|c| in_pools(c) && !tried.contains(c))
                .copied()
                .collect();
            if !unseen.is_empty() {
                for cidr in unseen {
                    tried.insert(cidr);
                    if want > 0 {
                        want -= self
                            .take_from(cidr, want, job, Some(host), known, out)
                            .await?;
                    }
                }
                continue;
            }
            if fresh.len() >= limit as usize {
                return Err(IpamError::BlockLimit {
                    host: host.to_string(),
                    limit,
                });
            }
            let claimed = match self.claim_new_block(host, &pools, v6).await? {
                Some(cidr) => Some(cidr),
                // Every block exists: one another host left empty long enough.
                None => self.reclaim_empty_block(host, &pools, v6).await?,
            };
            match claimed {
                Some(cidr) => {
                    tried.insert(cidr);
                    want -= self
                        .take_from(cidr, want, job, Some(host), known, out)
                        .await?;
                }
                None => break,
            }
        }

        // 3. Borrow.
        if want > 0 && !cfg.strict_affinity() {
            want -= self.borrow(job, &pools, &tried, want, known, out).await?;
        }
        if want > 0 {
            return Err(IpamError::PoolExhausted {
                pools_tried: pools.iter().map(|p| p.cidr).collect(),
            });
        }
        Ok(())
    }

    /// Step 1: up to `want` addresses from the host's affine blocks in
    /// `pools` not yet `tried`; how many.
    async fn take_affine(
        &self,
        job: &Job<'_>,
        pools: &[Pool],
        mut want: usize,
        tried: &mut HashSet<IpNet>,
        known: &mut KnownHandle,
        out: &mut Vec<IpAddr>,
    ) -> Result<usize> {
        let host = job.args.host.as_str();
        let mut got = 0;
        for cidr in self.affine_blocks(host).await? {
            if want == 0 {
                break;
            }
            if is_v6(&cidr) != job.v6
                || !pools.iter().any(|p| p.cidr.contains(&cidr))
                || !tried.insert(cidr)
            {
                continue;
            }
            let k = self
                .take_from(cidr, want, job, Some(host), known, out)
                .await?;
            want -= k;
            got += k;
        }
        Ok(got)
    }

    /// Free addresses from blocks not affine to the host.
    async fn borrow(
        &self,
        job: &Job<'_>,
        pools: &[Pool],
        tried: &HashSet<IpNet>,
        mut want: usize,
        known: &mut KnownHandle,
        out: &mut Vec<IpAddr>,
    ) -> Result<usize> {
        let host = job.args.host.as_str();
        let (kvs, _) = self
            .store
            .list(&manul_datastore::keys::prefix::blocks(job.v6), None)
            .await?;
        let mut candidates: Vec<IpNet> = kvs
            .iter()
            .filter_map(|kv| kv.json::<AllocationBlock>().ok())
            .filter(|b| {
                pools.iter().any(|p| p.cidr.contains(&b.cidr))
                    && !tried.contains(&b.cidr)
                    && b.host() != Some(host)
                    && !b.unallocated.is_empty()
            })
            .map(|b| b.cidr)
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        let start = (host_seed(host) % candidates.len() as u64) as usize;
        candidates.rotate_left(start);
        let mut got = 0;
        for cidr in candidates {
            if want == 0 {
                break;
            }
            let k = self.take_from(cidr, want, job, None, known, out).await?;
            want -= k;
            got += k;
        }
        Ok(got)
    }

    /// Assign up to `want` addresses from one block; how many were. With
    /// `owner`, the block must (still) be affine to it, else it is dropped
    /// from the cache and nothing is assigned. Starts from the cached value
    /// of the block (see [`crate::cache`] for why that is safe): a warm
    /// assignment writes the handle and the block and reads nothing.
    async fn take_from(
        &self,
        cidr: IpNet,
        want: usize,
        job: &Job<'_>,
        owner: Option<&str>,
        known: &mut KnownHandle,
        out: &mut Vec<IpAddr>,
    ) -> Result<usize> {
        let st = &self.store;
        let handle = job.args.handle_id.as_str();
        let mut reserved = 0u64;
        let mut cur = self.cached_block(&cidr).map(|b| (b, true));
        for _ in 0..MAX_RETRIES {
            let step: Result<Step> = async {
                let (mut b, cached) = match cur.take() {
                    Some(x) => x,
                    None => match self.read_block(&cidr).await? {
                        Some(b) => (b, false),
                        None => return Ok(Step::Done(None)),
                    },
                };
                // What would write nothing is decided on a fresh value only.
                if owner.is_some_and(|h| b.value.host() != Some(h)) {
                    return Ok(if cached {
                        Step::Again(None)
                    } else {
                        Step::Done(None)
                    });
                }
                let problems = block::check(&b.value);
                if !problems.is_empty() {
                    if cached {
                        return Ok(Step::Again(None));
                    }
                    tracing::warn!(block = %cidr, ?problems, "not assigning from an inconsistent block");
                    return Ok(Step::Done(Some(Vec::new())));
                }
                let ips = block::assign(&mut b.value, want, handle, job.attrs, job.reserved);
                if ips.is_empty() {
                    return Ok(if cached {
                        Step::Again(None)
                    } else {
                        Step::Done(Some(ips))
                    });
                }
                let k = ips.len() as u64;
                if reserved < k {
                    st.increment_handle(handle, &cidr, k - reserved, known)
                        .await?;
                    reserved = k;
                }
                match st.swap_block(&mut b).await? {
                    BlockSwap::Written => {
                        self.cache.put_block(&b);
                        Ok(Step::Done(Some(ips)))
                    }
                    BlockSwap::Lost(Some(now)) => {
                        self.cache.put_block(&now);
                        Ok(Step::Again(Some(now)))
                    }
                    BlockSwap::Lost(None) => {
                        self.cache.forget_block(&cidr);
                        Ok(Step::Done(None))
                    }
                }
            }
            .await;
            match step {
                Ok(Step::Again(next)) => cur = next.map(|b| (*b, false)),
                Err(e) if e.is_conflict() => {}
                Err(e) => {
                    self.unreserve(handle, &cidr, reserved, known).await;
                    return Err(e);
                }
                Ok(Step::Done(None)) => {
                    if let Some(h) = owner {
                        self.cache_forget(h, &cidr);
                    }
                    self.unreserve(handle, &cidr, reserved, known).await;
                    return Ok(0);
                }
                Ok(Step::Done(Some(ips))) => {
                    let k = ips.len() as u64;
                    self.unreserve(handle, &cidr, reserved.saturating_sub(k), known)
                        .await;
                    out.extend(ips);
                    return Ok(k as usize);
                }
            }
        }
        self.unreserve(handle, &cidr, reserved, known).await;
        Err(IpamError::TooManyRetries {
            what: format!("block {cidr}"),
            attempts: MAX_RETRIES,
        })
    }

    /// Undo a handle increment whose block write did not happen.
    async fn unreserve(&self, handle: &str, cidr: &IpNet, n: u64, known: &mut KnownHandle) {
        if n == 0 {
            return;
        }
        if let Err(e) = self.store.decrement_handle(handle, cidr, n, known).await {
            tracing::warn!(handle, block = %cidr, error = %e, "could not undo a handle increment; the leak check will report the handle");
            *known = None;
        }
    }

    /// Assign `ip` to `handle` for `host` (Calico's `AssignIP`). If its
    /// block does not exist yet it is claimed for `host` (no block limit,
    /// as in Calico); in an existing block of another host the address is
    /// borrowed, which strict affinity forbids.
    pub async fn assign_ip(
        &self,
        ip: IpAddr,
        handle: &str,
        attrs: &BTreeMap<String, String>,
        host: &str,
    ) -> Result<()> {
        check_name("handle ID", handle)?;
        check_name("host", host)?;
        let all = self.pools().await?;
        let enabled: Vec<Pool> = all.into_iter().filter(Pool::enabled).collect();
        let pool = pools::containing(&enabled, ip).ok_or(IpamError::NotInPool(ip))?;
        let cidr = pool.block_of(ip).ok_or(IpamError::NotInPool(ip))?;
        let cfg = self.config().await?;
        let mut attrs = attrs.clone();
        attrs
            .entry(attr::NODE.to_string())
            .or_insert_with(|| host.to_string());
        let st = &self.store;
        let mut reserved = false;
        let mut known: KnownHandle = None;
        for _ in 0..MAX_RETRIES {
            let r: Result<bool> = async {
                let Some(mut b) = self.read_block(&cidr).await? else {
                    self.claim_block(host, cidr).await?;
                    return Ok(false);
                };
                if cfg.strict_affinity() && b.value.host() != Some(host) {
                    return Err(IpamError::StrictAffinity {
                        ip,
                        block: cidr,
                        block_host: b.value.host().map(str::to_string),
                        host: host.to_string(),
                    });
                }
                block::assign_ip(&mut b.value, ip, handle, &attrs).map_err(|e| match e {
                    block::BlockError::AlreadyAssigned { ip, handle } => {
                        IpamError::AlreadyAssigned { ip, handle }
                    }
                    other => IpamError::Block(other),
                })?;
                if !reserved {
                    st.increment_handle(handle, &cidr, 1, &mut known).await?;
                    reserved = true;
                }
                st.update_block(&mut b).await?;
                self.cache.put_block(&b);
                Ok(true)
            }
            .await;
            match r {
                Ok(true) => return Ok(()),
                Ok(false) => continue,
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    self.unreserve(handle, &cidr, u64::from(reserved), &mut known)
                        .await;
                    return Err(e);
                }
            }
        }
        self.unreserve(handle, &cidr, u64::from(reserved), &mut known)
            .await;
        Err(IpamError::TooManyRetries {
            what: format!("assigning {ip}"),
            attempts: MAX_RETRIES,
        })
    }
}
