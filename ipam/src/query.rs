//! Read-only questions: who holds an address ([`Ipam::ip_info`]), how
//! full the pools and blocks are ([`Ipam::utilization`]), and which
//! addresses are borrowed ([`Ipam::borrowed_ips`]).
//!
//! A *borrowed* address is one whose `node` attribute names another host
//! than its block's affinity (or any host, in a block with no affinity).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::ipam::{AllocationBlock, attr};
use manul_datastore::keys::prefix;
use serde::Serialize;

use crate::block;
use crate::error::Result;
use crate::ipam::Ipam;
use crate::release::seq_of;

/// What is known about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpInfo {
    /// The address.
    pub ip: Option<IpAddr>,
    /// The pool it is in, if any.
    pub pool: Option<IpNet>,
    /// Its block, if the block exists.
    pub block: Option<IpNet>,
    /// The host the block is affine to.
    pub block_host: Option<String>,
    /// Whether it is assigned.
    pub assigned: bool,
    /// Its handle, when assigned.
    pub handle: Option<String>,
    /// Its attributes, when assigned.
    pub attributes: BTreeMap<String, String>,
    /// Its allocation sequence number (what a guarded release passes).
    pub sequence_number: Option<u64>,
    /// Assigned to another host than the block's (see the module docs).
    pub borrowed: bool,
}

/// Use of one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockUsage {
    /// The block.
    pub cidr: IpNet,
    /// The host it is affine to.
    pub host: Option<String>,
    /// Addresses in it.
    pub total: u64,
    /// Assigned.
    pub in_use: u64,
    /// Free.
    pub free: u64,
    /// Assigned to other hosts than the block's.
    pub borrowed: u64,
}

/// Use of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// The pool's name.
    pub name: String,
    /// Its range.
    pub cidr: IpNet,
    /// Whether new allocations are disabled.
    pub disabled: bool,
    /// Addresses in the pool.
    pub total: u128,
    /// Assigned (in all its blocks).
    pub in_use: u128,
    /// Not assigned (in blocks or not yet in any block).
    pub free: u128,
    /// Its blocks.
    pub blocks: Vec<BlockUsage>,
}

/// Use of every pool, and of blocks in no pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Utilization {
    /// Per pool, in name order.
    pub pools: Vec<PoolUsage>,
    /// Blocks outside every pool (the pool was deleted).
    pub orphan_blocks: Vec<BlockUsage>,
}

/// An address used by another host than its block's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BorrowedIp {
    /// The address.
    pub ip: IpAddr,
    /// Its block.
    pub block: IpNet,
    /// The host the block is affine to (`None`: no affinity).
    pub block_host: Option<String>,
    /// The host using the address (its `node` attribute).
    pub node: String,
    /// Its handle.
    pub handle: Option<String>,
}

fn is_borrowed(b: &AllocationBlock, a: &manul_datastore::ipam::AllocationAttribute) -> bool {
    match a.secondary.get(attr::NODE) {
        None => false,
        Some(node) => b.host() != Some(node.as_str()),
    }
}

/// One block's numbers.
pub fn block_usage(b: &AllocationBlock) -> BlockUsage {
    let in_use = block::in_use(b) as u64;
    let borrowed = b
        .allocations
        .iter()
        .flatten()
        .filter_map(|i| b.attributes.get(*i as usize))
        .filter(|a| is_borrowed(b, a))
        .count() as u64;
    let total = block::size(&b.cidr) as u64;
    BlockUsage {
        cidr: b.cidr,
        host: b.host().map(str::to_string),
        total,
        in_use,
        free: total.saturating_sub(in_use),
        borrowed,
    }
}

/// The borrowed addresses of one block, in address order.
pub fn borrowed_in(b: &AllocationBlock) -> Vec<BorrowedIp> {
    b.allocations
        .iter()
        .enumerate()
        .filter_map(|(o, i)| {
            let a = b.attributes.get((*i)? as usize)?;
            if !is_borrowed(b, a) {
                return None;
            }
            Some(BorrowedIp {
                ip: block::address(&b.cidr, o as u32),
                block: b.cidr,
                block_host: b.host().map(str::to_string),
                node: a.secondary.get(attr::NODE)?.clone(),
                handle: a.handle_id.clone(),
            })
        })
        .collect()
}

impl Ipam {
    /// Every borrowed address (see the module docs), in block order. Lists
    /// every block; blocks that do not decode are skipped (the leak check
    /// reports them).
    pub async fn borrowed_ips(&self) -> Result<Vec<BorrowedIp>> {
        let (kvs, _) = self.store.list(&prefix::all_blocks(), None).await?;
        let mut blocks: Vec<AllocationBlock> = kvs
            .iter()
            .filter_map(|kv| kv.json::<AllocationBlock>().ok())
            .collect();
        blocks.sort_by_key(|b| b.cidr);
        Ok(blocks.iter().flat_map(borrowed_in).collect())
    }

    /// What is known about `ip`.
    pub async fn ip_info(&self, ip: IpAddr) -> Result<IpInfo> {
        let pools = self.pools().await?;
        let mut info = IpInfo {
            ip: Some(ip),
            pool: crate::pools::containing(&pools, ip).map(|p| p.cidr),
            ..IpInfo::default()
        };
        let Some(cidr) = self.block_for(ip, &pools, &mut None).await? else {
            return Ok(info);
        };
        let Some(b) = self.store.get_block(&cidr).await? else {
            return Ok(info);
        };
        info.block = Some(cidr);
        info.block_host = b.value.host().map(str::to_string);
        if let Some(a) = block::attribute_of(&b.value, ip) {
            info.assigned = true;
            info.handle = a.handle_id.clone();
            info.attributes = a.secondary.clone();
            info.borrowed = is_borrowed(&b.value, a);
            info.sequence_number = seq_of(&b.value, ip);
        } else {
            info.assigned = block::ordinal(&cidr, ip)
                .and_then(|o| b.value.allocations.get(o as usize).copied().flatten())
                .is_some();
        }
        Ok(info)
    }

    /// Use of every pool and block (lists every block: a query, not an
    /// allocation path). Blocks that do not decode are skipped (the leak
    /// check reports them).
    pub async fn utilization(&self) -> Result<Utilization> {
        let pools = self.pools().await?;
        let mut out: Vec<PoolUsage> = pools
            .iter()
            .map(|p| PoolUsage {
                name: p.name.clone(),
                cidr: p.cidr,
                disabled: !p.enabled(),
                total: block::size(&p.cidr),
                in_use: 0,
                free: block::size(&p.cidr),
                blocks: Vec::new(),
            })
            .collect();
        let mut orphans = Vec::new();
        let (kvs, _) = self.store.list(&prefix::all_blocks(), None).await?;
        for kv in kvs {
            let Ok(b) = kv.json::<AllocationBlock>() else {
                continue;
            };
            let u = block_usage(&b);
            match out.iter_mut().find(|p| p.cidr.contains(&b.cidr)) {
                Some(p) => {
                    p.in_use += u128::from(u.in_use);
                    p.free = p.free.saturating_sub(u128::from(u.in_use));
                    p.blocks.push(u);
                }
                None => orphans.push(u),
            }
        }
        Ok(Utilization {
            pools: out,
            orphan_blocks: orphans,
        })
    }
}
