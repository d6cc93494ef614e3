//! Splitting an IP pool into 2^n equal pools, as `calicoctl ipam split`
//! does (calicoctl `commands/ipam/split.go`, `SplitPool`): the pool is
//! disabled, the children `split-<name>-<i>` are created as copies of it
//! (labels, annotations, every spec field, enabled) with the child
//! ranges, then the pool is deleted. Existing blocks stay valid: each lies
//! in one child, which is refused if it would be smaller than a block.
//!
//! calicoctl insists that the datastore be locked (`calicoctl datastore
//! migrate lock`) so that nothing is assigned from the pool meanwhile.
//! manul has no datastore lock, so it refuses instead while the pool is in
//! use: while any address in it is assigned ([`IpamError::PoolInUse`],
//! naming how many). A run interrupted after some children were created is
//! finished by running it again (a child that already exists with its
//! range is kept).

use ipnet::IpNet;
use manul_datastore::keys::{Key, ResourceKind};
use manul_datastore::resources::IpPool;

use crate::error::{IpamError, Result};
use crate::ipam::Ipam;
use crate::store::path;

/// What [`Ipam::split_pool`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitOutcome {
    /// The pool that was split.
    pub pool: String,
    /// The pools created (name, range), in address order.
    pub created: Vec<(String, IpNet)>,
}

/// Which pool to split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRef {
    /// By name.
    Name(String),
    /// By range.
    Cidr(IpNet),
}

impl PoolRef {
    /// The pool with this range, given as text (`--cidr`); Calico
    /// compares it with the pools' ranges as written, manul as networks.
    pub fn cidr(s: &str) -> Result<PoolRef> {
        s.parse::<IpNet>()
            .map(PoolRef::Cidr)
            .map_err(|_| IpamError::InvalidArgument(format!("{s:?} is not a CIDR")))
    }
}

/// `cidr` in `parts` equal ranges (calicoctl's `splitCIDR`): `parts` must
/// be a power of two of at least 2 and the range large enough.
pub fn split_cidr(cidr: IpNet, parts: u32) -> Result<Vec<IpNet>> {
    if parts < 2 || !parts.is_power_of_two() {
        return Err(IpamError::InvalidArgument(format!(
            "number to split CIDR into is not a valid power of 2: {parts}"
        )));
    }
    let power = parts.trailing_zeros() as u8;
    let new_len = cidr.prefix_len() + power;
    if new_len > cidr.max_prefix_len() {
        return Err(IpamError::InvalidArgument(format!(
            "the CIDR {cidr} is not large enough to be split into {parts} parts"
        )));
    }
    let subnets = cidr
        .trunc()
        .subnets(new_len)
        .map_err(|e| IpamError::InvalidArgument(e.to_string()))?;
    Ok(subnets.collect())
}

/// calicoctl's child name: `split-<name>-<i>`, the name cut to 245
/// characters when the result would pass 253.
fn child_name(parent: &str, i: usize) -> String {
    let name = format!("split-{parent}-{i}");
    if name.len() > 253 {
        let cut: String = parent.chars().take(245).collect();
        format!("split-{cut}-{i}")
    } else {
        name
    }
}

impl Ipam {
    /// Split a pool (see the module docs).
    pub async fn split_pool(&self, which: &PoolRef, parts: u32) -> Result<SplitOutcome> {
        let pools = self.pools().await?;
        let pool = pools
            .iter()
            .find(|p| match which {
                PoolRef::Name(n) => &p.name == n,
                PoolRef::Cidr(c) => p.cidr == *c,
            })
            .ok_or_else(|| {
                IpamError::InvalidArgument(match which {
                    PoolRef::Name(n) => format!("unable to find IP pool with name {n}"),
                    PoolRef::Cidr(c) => format!("unable to find IP pool with CIDR {c}"),
                })
            })?;
        let children = split_cidr(pool.cidr, parts)?;
        let child_len = children[0].prefix_len();
        if child_len > pool.block_size {
            return Err(IpamError::InvalidArgument(format!(
                "pool {} has blocks of /{}: its {parts} parts of /{child_len} would each be \
                 smaller than one block",
                pool.name, pool.block_size
            )));
        }
        let usage = self.utilization().await?;
        let in_use: u128 = usage
            .pools
            .iter()
            .filter(|u| u.name == pool.name)
            .map(|u| u.in_use)
            .sum();
        if in_use > 0 {
            return Err(IpamError::PoolInUse {
                pool: pool.name.clone(),
                addresses: in_use,
            });
        }

        let st = &self.store;
        let key = path(&Key::resource(ResourceKind::IpPool, pool.name.as_str()))?;
        // 1. Disable the pool (guarded: it must be as read).
        if let Some(kv) = st.get(&key).await? {
            let mut parent = IpPool::from_json(&kv.value).map_err(|e| IpamError::Malformed {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            if !parent.spec.disabled {
                parent.spec.disabled = true;
                st.update_json(&key, &parent, kv.mod_revision).await?;
            }
        }
        // 2. The children, copies of the pool with their ranges, enabled.
        let mut created = Vec::new();
        for (i, cidr) in children.iter().enumerate() {
            let name = child_name(&pool.name, i);
            let mut child = pool.resource.clone();
            child.metadata.name = name.clone();
            child.metadata.uid.clear();
            child.metadata.resource_version.clear();
            child.metadata.creation_timestamp = None;
            child.spec.cidr = *cidr;
            child.spec.disabled = false;
            let ckey = path(&Key::resource(ResourceKind::IpPool, name.as_str()))?;
            match st.create_json(&ckey, &child).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    // Exists: ours from an interrupted run only if its range is.
                    let same = st
                        .get(&ckey)
                        .await?
                        .and_then(|kv| IpPool::from_json(&kv.value).ok())
                        .is_some_and(|p| p.spec.cidr == *cidr);
                    if !same {
                        return Err(IpamError::InvalidArgument(format!(
                            "IP pool {name} already exists with another range: rename or \
                             delete it first"
                        )));
                    }
                }
                Err(e) => return Err(e),
            }
            created.push((name, *cidr));
        }
        // 3. The pool goes.
        if let Some(kv) = st.get(&key).await? {
            match st.delete(&key, kv.mod_revision).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        self.cache.expire_settings();
        Ok(SplitOutcome {
            pool: pool.name.clone(),
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_calicoctl() {
        let got = split_cidr("172.0.0.0/8".parse().unwrap(), 2).unwrap();
        assert_eq!(
            got,
            ["172.0.0.0/9", "172.128.0.0/9"].map(|s| s.parse::<IpNet>().unwrap())
        );
        let got = split_cidr("fd00::/120".parse().unwrap(), 4).unwrap();
        assert_eq!(got[3], "fd00::c0/122".parse::<IpNet>().unwrap());
        for bad in [0, 1, 3, 6] {
            let e = split_cidr("10.0.0.0/24".parse().unwrap(), bad).unwrap_err();
            assert!(e.to_string().contains("not a valid power of 2"), "{e}");
        }
        let e = split_cidr("10.0.0.0/31".parse().unwrap(), 4).unwrap_err();
        assert!(e.to_string().contains("not large enough"), "{e}");
        assert_eq!(child_name("p", 3), "split-p-3");
        assert_eq!(
            child_name(&"x".repeat(300), 0).len(),
            "split--0".len() + 245
        );
    }
}
