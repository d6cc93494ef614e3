//! Assigning addresses: [`Ipam::auto_assign`] and [`Ipam::assign_ip`].
//!
//! Order (Calico's `autoAssign`), per family:
//! 1. the host's confirmed affine blocks in the usable pools (cached, see
//!    [`crate::ipam`]);
//! 2. if automatic block allocation is on: list the host's affinities again
//!    (another process on the host may have claimed one), then claim a new
//!    block, unless the host already holds the per-host limit of blocks
//!    ([`crate::config::effective_max_blocks`]) — then it is
//!    [`IpamError::BlockLimit`], without borrowing, as in Calico;
//! 3. unless strict affinity is on: borrow free addresses from other
//!    blocks of the usable pools (other hosts' blocks, or blocks with no
//!    affinity);
//! 4. else [`IpamError::PoolExhausted`] naming the pools.
//!
//! Writes per block: the handle first (count incremented), then the block
//! (compare-and-swap, sequence number bumped). A lost compare-and-swap
//! re-reads the block and tries again, keeping the handle increment; if
//! the block write finally fails the increment is undone. A call that
//! fails part way releases what it had assigned, so a failure leaves no
//! addresses behind (a crash may: the leak check finds them).
//!
//! Attributes: when the caller gives no `node` attribute, the host is
//! recorded as `node` (Calico's CNI plugin always sets it), so borrowed
//! addresses can be told from the block host's own.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::ipam::{AllocationBlock, IpamConfig, attr};

use crate::block;
use crate::config::effective_max_blocks;
use crate::error::{IpamError, Result};
use crate::ipam::{Ipam, check_name};
use crate::pools::{self, Pool, host_seed};
use crate::store::MAX_RETRIES;

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
}

fn is_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
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
        // Independent reads, made at once: one round trip instead of three.
        let (cfg, all_pools, labels) = tokio::try_join!(
            self.config(),
            async {
                if wanted(false) || wanted(true) {
                    pools::list(&self.store).await
                } else {
                    Ok(Vec::new())
                }
            },
            async {
                if need_labels {
                    pools::node_labels(&self.store, &args.host).await
                } else {
                    Ok(BTreeMap::new())
                }
            },
        )?;
        let mut attrs = args.attrs.clone();
        attrs
            .entry(attr::NODE.to_string())
            .or_insert_with(|| args.host.clone());
        let mut out = Vec::new();
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
            let assigned =
                match pools::usable_for_workload(&all_pools, &labels, &args.host, &requested, v6) {
                    Ok(usable) => {
                        self.assign_family(&cfg, args, &attrs, &usable, v6, n, &mut out)
                            .await
                    }
                    Err(e) => Err(e),
                };
            if let Err(e) = assigned {
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

    #[allow(clippy::too_many_arguments)]
    async fn assign_family(
        &self,
        cfg: &IpamConfig,
        args: &AutoAssignArgs,
        attrs: &BTreeMap<String, String>,
        pools: &[Pool],
        v6: bool,
        n: usize,
        out: &mut Vec<IpAddr>,
    ) -> Result<()> {
        let host = args.host.as_str();
        let handle = args.handle_id.as_str();
        let in_pools = |c: &IpNet| pools.iter().any(|p| p.cidr.contains(c));
        let fam = |c: &IpNet| matches!(c, IpNet::V6(_)) == v6;
        let mut want = n;
        let mut tried: HashSet<IpNet> = HashSet::new();

        // 1. Affine blocks.
        for cidr in self.affine_blocks(host).await? {
            if want == 0 {
                return Ok(());
            }
            if !fam(&cidr) || !in_pools(&cidr) || !tried.insert(cidr) {
                continue;
            }
            want -= self
                .take_from(cidr, want, handle, attrs, Some(host), out)
                .await?;
        }

        // 2. Claim new blocks.
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
                            .take_from(cidr, want, handle, attrs, Some(host), out)
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
            match self.claim_new_block(host, pools, v6).await? {
                Some(cidr) => {
                    tried.insert(cidr);
                    want -= self
                        .take_from(cidr, want, handle, attrs, Some(host), out)
                        .await?;
                }
                None => break,
            }
        }

        // 3. Borrow.
        if want > 0 && !cfg.strict_affinity() {
            want -= self
                .borrow(host, handle, attrs, pools, &tried, v6, want, out)
                .await?;
        }
        if want > 0 {
            return Err(IpamError::PoolExhausted {
                pools_tried: pools.iter().map(|p| p.cidr).collect(),
            });
        }
        Ok(())
    }

    /// Free addresses from blocks not affine to `host`.
    #[allow(clippy::too_many_arguments)]
    async fn borrow(
        &self,
        host: &str,
        handle: &str,
        attrs: &BTreeMap<String, String>,
        pools: &[Pool],
        tried: &HashSet<IpNet>,
        v6: bool,
        mut want: usize,
        out: &mut Vec<IpAddr>,
    ) -> Result<usize> {
        let (kvs, _) = self
            .store
            .list(&manul_datastore::keys::prefix::blocks(v6), None)
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
            let k = self.take_from(cidr, want, handle, attrs, None, out).await?;
            want -= k;
            got += k;
        }
        Ok(got)
    }

    /// Assign up to `want` addresses from one block; how many were. With
    /// `owner`, the block must (still) be affine to it, else it is dropped
    /// from the cache and nothing is assigned.
    async fn take_from(
        &self,
        cidr: IpNet,
        want: usize,
        handle: &str,
        attrs: &BTreeMap<String, String>,
        owner: Option<&str>,
        out: &mut Vec<IpAddr>,
    ) -> Result<usize> {
        let st = &self.store;
        let mut reserved = 0u64;
        for _ in 0..MAX_RETRIES {
            let got: Result<Option<Vec<IpAddr>>> = async {
                let Some(mut b) = st.get_block(&cidr).await? else {
                    return Ok(None);
                };
                if let Some(h) = owner {
                    if b.value.host() != Some(h) {
                        return Ok(None);
                    }
                }
                let problems = block::check(&b.value);
                if !problems.is_empty() {
                    tracing::warn!(block = %cidr, ?problems, "not assigning from an inconsistent block");
                    return Ok(Some(Vec::new()));
                }
                let ips = block::assign(&mut b.value, want, handle, attrs);
                if ips.is_empty() {
                    return Ok(Some(ips));
                }
                let k = ips.len() as u64;
                if reserved < k {
                    st.increment_handle(handle, &cidr, k - reserved).await?;
                    reserved = k;
                }
                st.update_block(&mut b).await?;
                Ok(Some(ips))
            }
            .await;
            match got {
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    self.unreserve(handle, &cidr, reserved).await;
                    return Err(e);
                }
                Ok(None) => {
                    if let Some(h) = owner {
                        self.cache_forget(h, &cidr);
                    }
                    self.unreserve(handle, &cidr, reserved).await;
                    return Ok(0);
                }
                Ok(Some(ips)) => {
                    let k = ips.len() as u64;
                    self.unreserve(handle, &cidr, reserved.saturating_sub(k))
                        .await;
                    out.extend(ips);
                    return Ok(k as usize);
                }
            }
        }
        self.unreserve(handle, &cidr, reserved).await;
        Err(IpamError::TooManyRetries {
            what: format!("block {cidr}"),
            attempts: MAX_RETRIES,
        })
    }

    /// Undo a handle increment whose block write did not happen.
    async fn unreserve(&self, handle: &str, cidr: &IpNet, n: u64) {
        if n == 0 {
            return;
        }
        if let Err(e) = self.store.decrement_handle(handle, cidr, n).await {
            tracing::warn!(handle, block = %cidr, error = %e, "could not undo a handle increment; the leak check will report the handle");
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
        for _ in 0..MAX_RETRIES {
            let r: Result<bool> = async {
                let Some(mut b) = st.get_block(&cidr).await? else {
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
                    st.increment_handle(handle, &cidr, 1).await?;
                    reserved = true;
                }
                st.update_block(&mut b).await?;
                Ok(true)
            }
            .await;
            match r {
                Ok(true) => return Ok(()),
                Ok(false) => continue,
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    self.unreserve(handle, &cidr, u64::from(reserved)).await;
                    return Err(e);
                }
            }
        }
        self.unreserve(handle, &cidr, u64::from(reserved)).await;
        Err(IpamError::TooManyRetries {
            what: format!("assigning {ip}"),
            attempts: MAX_RETRIES,
        })
    }
}
