//! Node removal: what a host holds in IPAM ([`Ipam::host_holdings`]) and
//! releasing it ([`Ipam::remove_host`]).
//!
//! Calico's etcd-mode node deletion (libcalico-go `clientv3/node.go`,
//! `nodes.Delete`) releases the addresses of the node's WorkloadEndpoints
//! and its tunnel addresses, then calls `RemoveIPAMHost`, which releases
//! every affinity of the host with `ReleaseHostAffinities(host, false)`: an
//! empty block is deleted, a block still holding addresses keeps them and
//! loses its affinity, so any host may claim it later.
//!
//! manul does the same with one difference in how addresses are found, so
//! that a second run after an interruption can never free an address
//! handed to someone else in between: an address is released only while
//! IPAM still records it for this host — its `node` attribute names the
//! host (what the CNI plugin and the tunnel allocator write), or it has no
//! `node` attribute and the caller names it (a WorkloadEndpoint's or the
//! Node's tunnel address, as Calico releases them) — and each release is
//! guarded by the allocation sequence number read here.

use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::ipam::{AllocationBlock, attr};
use manul_datastore::keys::prefix;
use serde::Serialize;

use crate::block::{self, Released};
use crate::error::Result;
use crate::ipam::{Ipam, check_name};
use crate::release::{HostRelease, seq_of};

/// One address a host holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its block.
    pub block: IpNet,
    /// Its handle.
    pub handle: Option<String>,
    /// Its allocation sequence number when read (the release's guard).
    pub sequence_number: Option<u64>,
}

/// What a host holds in IPAM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostHoldings {
    /// Its addresses, in address order.
    pub addresses: Vec<HeldAddress>,
    /// The blocks it has an affinity to, in key order.
    pub affinities: Vec<IpNet>,
}

impl HostHoldings {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.affinities.is_empty()
    }
}

/// What [`Ipam::remove_host`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRemoval {
    /// Each address's outcome (`Reused`: reassigned since it was read,
    /// kept).
    pub addresses: Vec<(IpAddr, Released)>,
    /// The affinities released: blocks deleted (`released`) or left with
    /// their addresses and no affinity (`not_empty`).
    pub blocks: HostRelease,
}

impl Ipam {
    /// The addresses and affinities `host` holds; `named` are addresses
    /// the caller knows as the host's (its WorkloadEndpoints', its
    /// tunnel addresses), taken when IPAM records no `node` for them.
    pub async fn host_holdings(&self, host: &str, named: &[IpAddr]) -> Result<HostHoldings> {
        check_name("host", host)?;
        let mut out = HostHoldings::default();
        let (kvs, rev) = self.store.list(&prefix::all_blocks(), None).await?;
        for kv in &kvs {
            let b = kv.decode::<AllocationBlock>()?.value;
            for ip in held_in(&b, host, named) {
                out.addresses.push(HeldAddress {
                    ip,
                    block: b.cidr,
                    handle: block::holder(&b, ip),
                    sequence_number: seq_of(&b, ip),
                });
            }
        }
        out.addresses.sort_by_key(|a| a.ip);
        let (kvs, _) = self
            .store
            .list(&prefix::host_affinities(host), Some(rev))
            .await?;
        out.affinities = kvs
            .iter()
            .filter_map(|kv| match Key::parse(&kv.key) {
                Ok(Key::BlockAffinity { cidr, .. }) => Some(cidr),
                _ => None,
            })
            .collect();
        Ok(out)
    }

    /// Release what [`Ipam::host_holdings`] found: the addresses (each
    /// only if its sequence number is unchanged), then every affinity of
    /// the host ([`Ipam::release_host`]).
    pub async fn remove_host(&self, host: &str, holdings: &HostHoldings) -> Result<HostRemoval> {
        let ips: Vec<(IpAddr, Option<u64>)> = holdings
            .addresses
            .iter()
            .map(|a| (a.ip, a.sequence_number))
            .collect();
        let addresses = if ips.is_empty() {
            Vec::new()
        } else {
            self.release_ips(&ips).await?
        };
        let blocks = self.release_host(host).await?;
        Ok(HostRemoval { addresses, blocks })
    }
}

/// The addresses of block `b` that `host` holds (see the module docs).
fn held_in(b: &AllocationBlock, host: &str, named: &[IpAddr]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (o, a) in b.allocations.iter().enumerate() {
        let Some(a) = a.and_then(|i| b.attributes.get(i as usize)) else {
            continue;
        };
        let ip = block::address(&b.cidr, o as u32);
        let ours = match a.secondary.get(attr::NODE) {
            Some(node) => node == host,
            None => named.contains(&ip),
        };
        if ours {
            out.push(ip);
        }
    }
    out
}
