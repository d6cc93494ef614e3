//! IP pools: which exist, which a host may take addresses from, and the
//! block arithmetic at pool level (which block holds an address, the
//! candidate blocks of a pool in a host-specific order).
//!
//! A pool is usable for an assignment on a host (Calico's `determinePools`
//! and `filterPoolsByUse`) when it is of the family asked for, not
//! disabled, its block size is sane for it, its `allowedUses` (default
//! `Workload`, `Tunnel`) contain the assignment's intended use (`Workload`
//! for pods, `Tunnel` for a node's IPIP/VXLAN tunnel address,
//! `LoadBalancer` for service addresses), and:
//! - with no pools requested: its `nodeSelector` matches the host's Node
//!   labels and its `assignmentMode` is not `Manual`;
//! - with pools requested: it is one of them (node selectors are ignored,
//!   as Calico does for backward compatibility); a requested pool that does
//!   not exist or is disabled is an error.
//!
//! A host without a Node resource has no labels (Calico refuses to assign
//! then; manul lets `all()` pools serve it, so IPAM works before the node
//! registers). A pool that does not decode, or whose selector does not
//! parse, is logged with its key and skipped: one bad pool must not stop
//! allocation cluster-wide.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::keys::prefix;
use manul_datastore::resources::{AllowedUse, AssignmentMode, IpPool, Node};
use manul_datastore::{Key, ResourceKind, Selector};

use crate::error::{IpamError, Result};
use crate::store::{Store, path};

/// A pool as the allocator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// The pool's name.
    pub name: String,
    /// Its range (masked).
    pub cidr: IpNet,
    /// Its effective block prefix length.
    pub block_size: u8,
    /// The whole resource.
    pub resource: IpPool,
}

impl Pool {
    /// The block of this pool holding `ip`.
    pub fn block_of(&self, ip: IpAddr) -> Option<IpNet> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        IpNet::new(ip, self.block_size).ok().map(|n| n.trunc())
    }

    /// Number of blocks in the pool.
    pub fn block_count(&self) -> u128 {
        1u128 << (self.block_size - self.cidr.prefix_len()).min(127)
    }

    /// The `i`th block of the pool.
    pub fn block_at(&self, i: u128) -> Option<IpNet> {
        let host_bits = u32::from(self.cidr.max_prefix_len() - self.block_size);
        let offset = i.checked_shl(host_bits)?;
        let ip = match self.cidr.network() {
            IpAddr::V4(n) => IpAddr::V4(
                u32::try_from(u128::from(u32::from(n)) + offset)
                    .ok()?
                    .into(),
            ),
            IpAddr::V6(n) => IpAddr::V6(u128::from(n).checked_add(offset)?.into()),
        };
        IpNet::new(ip, self.block_size).ok()
    }

    /// Whether the pool is enabled for new allocations.
    pub fn enabled(&self) -> bool {
        !self.resource.spec.disabled
    }
}

/// FNV-1a of a host name: where a host starts looking in a pool, so hosts
/// spread over the pool and one host's successive claims stay together.
pub(crate) fn host_seed(host: &str) -> u64 {
    host.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Decode a pool; `None` (logged) when it cannot be used at all.
fn decode(kv: &manul_datastore::KeyValue) -> Option<Pool> {
    let resource = match IpPool::from_json(&kv.value) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(key = %kv.key, error = %e, "skipping malformed IP pool");
            return None;
        }
    };
    let cidr = resource.spec.cidr.trunc();
    let bs = resource.spec.block_size();
    if bs < u32::from(cidr.prefix_len()) || bs > u32::from(cidr.max_prefix_len()) {
        tracing::warn!(key = %kv.key, %cidr, block_size = bs, "skipping IP pool with an impossible block size");
        return None;
    }
    Some(Pool {
        name: resource.name().to_string(),
        cidr,
        block_size: bs as u8,
        resource,
    })
}

/// Every pool (enabled or not) that decodes.
pub(crate) async fn list(store: &Store) -> Result<Vec<Pool>> {
    let (kvs, _) = store
        .list(&prefix::kind(ResourceKind::IpPool), None)
        .await?;
    Ok(kvs.iter().filter_map(decode).collect())
}

/// The host's Node labels; empty when the Node does not exist.
pub(crate) async fn node_labels(store: &Store, host: &str) -> Result<BTreeMap<String, String>> {
    let key = path(&Key::resource(ResourceKind::Node, host))?;
    let Some(kv) = store.get(&key).await? else {
        return Ok(BTreeMap::new());
    };
    let node = Node::from_json(&kv.value).map_err(|e| IpamError::Malformed {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    Ok(node.metadata.labels)
}

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// The pools an assignment for `use_` on `host` may take `v6`/IPv4
/// addresses from, in pool name order (etcd key order), out of `all` (from
/// [`list`]); `labels` are the host's Node labels ([`node_labels`]), used
/// only when no pools are requested.
pub(crate) fn usable_for(
    all: &[Pool],
    labels: &BTreeMap<String, String>,
    host: &str,
    requested: &[IpNet],
    v6: bool,
    use_: &AllowedUse,
) -> Result<Vec<Pool>> {
    let enabled: Vec<Pool> = all
        .iter()
        .filter(|p| p.enabled() && matches!(p.cidr, IpNet::V6(_)) == v6)
        .cloned()
        .collect();
    let none = |reason: String| IpamError::NoPools {
        host: host.to_string(),
        family: family(v6),
        reason,
    };
    let selected: Vec<Pool> = if requested.is_empty() {
        enabled
            .into_iter()
            .filter(|p| p.resource.spec.assignment_mode() != AssignmentMode::Manual)
            .filter(|p| match Selector::parse(p.resource.spec.node_selector()) {
                Ok(sel) => sel.matches(labels),
                Err(e) => {
                    tracing::warn!(pool = %p.name, error = %e, "skipping IP pool with a bad nodeSelector");
                    false
                }
            })
            .collect()
    } else {
        let mut out = Vec::new();
        for r in requested {
            let r = r.trunc();
            match enabled.iter().find(|p| p.cidr == r) {
                Some(p) => out.push(p.clone()),
                None => return Err(IpamError::UnknownPool(r)),
            }
        }
        out
    };
    if selected.is_empty() {
        return Err(none("no enabled pool selects this node".into()));
    }
    let usable: Vec<Pool> = selected
        .into_iter()
        .filter(|p| p.resource.spec.allows(use_))
        .collect();
    if usable.is_empty() {
        return Err(none(format!(
            "no pool that selects it allows the {use_} use (allowedUses)"
        )));
    }
    Ok(usable)
}

/// The enabled pool holding `ip`.
pub(crate) fn containing(pools: &[Pool], ip: IpAddr) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_datastore::resources::IpPoolSpec;

    fn pool(cidr: &str, bs: u32) -> Pool {
        let mut spec = IpPoolSpec::new(cidr.parse().unwrap());
        spec.block_size = bs;
        let resource = IpPool::new("p", spec);
        Pool {
            name: "p".into(),
            cidr: cidr.parse().unwrap(),
            block_size: resource.spec.block_size() as u8,
            resource,
        }
    }

    #[test]
    fn blocks_of_a_pool() {
        let p = pool("10.0.0.0/22", 26);
        assert_eq!(p.block_count(), 16);
        assert_eq!(p.block_at(0).unwrap().to_string(), "10.0.0.0/26");
        assert_eq!(p.block_at(15).unwrap().to_string(), "10.0.3.192/26");
        assert_eq!(
            p.block_of("10.0.1.70".parse().unwrap())
                .unwrap()
                .to_string(),
            "10.0.1.64/26"
        );
        assert!(p.block_of("10.0.4.1".parse().unwrap()).is_none());
        let v6 = pool("fd00::/120", 0);
        assert_eq!(v6.block_size, 122);
        assert_eq!(v6.block_count(), 4);
        assert_eq!(v6.block_at(3).unwrap().to_string(), "fd00::c0/122");
        let tiny = pool("255.255.255.0/24", 32);
        assert_eq!(
            tiny.block_at(255).unwrap().to_string(),
            "255.255.255.255/32"
        );
    }
}
