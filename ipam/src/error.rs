//! [`IpamError`]: what the allocator's calls can fail with.

use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::etcd;

use crate::block::BlockError;

/// An allocator failure.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// etcd failed (unavailable, refused, or a value is not the JSON its
    /// key calls for: [`etcd::Error::Malformed`] names the key).
    #[error(transparent)]
    Datastore(#[from] etcd::Error),
    /// A value read from etcd that decodes but makes no sense (a key
    /// outside the layout, a block whose CIDR differs from its key...).
    #[error("malformed value at {key}: {reason}")]
    Malformed {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Every usable pool is full (and, with strict affinity, no block can
    /// be claimed). Nothing was assigned.
    #[error("pool exhausted: no free address in {}", fmt_nets(pools_tried))]
    PoolExhausted {
        /// The pools searched.
        pools_tried: Vec<IpNet>,
    },
    /// No pool may be used for this request on this host.
    #[error("no usable IP pool for host {host:?} ({family}): {reason}")]
    NoPools {
        /// The host.
        host: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// Why none qualified.
        reason: String,
    },
    /// A requested pool does not exist, is disabled, or is of the other family.
    #[error("the given pool {0} does not exist, is disabled, or is of the other address family")]
    UnknownPool(IpNet),
    /// The host already has as many blocks as allowed and needs another.
    #[error(
        "host {host:?} needs a new IPAM block but already has {limit} (maxBlocksPerHost); \
         raise maxBlocksPerHost or free addresses"
    )]
    BlockLimit {
        /// The host.
        host: String,
        /// The limit in force.
        limit: u32,
    },
    /// The address is in no (enabled) pool.
    #[error("{0} is not in any enabled IP pool")]
    NotInPool(IpAddr),
    /// The address is already assigned.
    #[error("{ip} is already assigned (handle {handle:?})")]
    AlreadyAssigned {
        /// The address.
        ip: IpAddr,
        /// Its holder.
        handle: Option<String>,
    },
    /// Strict affinity forbids taking an address from another host's block.
    #[error(
        "{ip} is in block {block}, affine to {block_host:?}, not to {host:?}, and strict affinity is on"
    )]
    StrictAffinity {
        /// The address.
        ip: IpAddr,
        /// Its block.
        block: IpNet,
        /// The block's host.
        block_host: Option<String>,
        /// The host asking.
        host: String,
    },
    /// Compare-and-swap kept losing.
    #[error(
        "gave up after {attempts} conflicting writes on {what}: excessive concurrent IPAM requests"
    )]
    TooManyRetries {
        /// What was being written.
        what: String,
        /// How many attempts were made.
        attempts: usize,
    },
    /// A config that Calico would refuse.
    #[error("invalid IPAM config: {0}")]
    InvalidConfig(String),
    /// A bad argument (empty host or handle, a handle with '/'...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Block arithmetic refused (a block too large to handle...).
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A pool that may not be split while addresses in it are assigned
    /// (see [`crate::split`]).
    #[error(
        "IP pool {pool} is in use: {addresses} of its addresses are assigned. calicoctl splits \
         a pool only with the datastore locked; manul has no datastore lock, so it splits only \
         a pool nothing is assigned from: move the workloads to another pool first"
    )]
    PoolInUse {
        /// The pool.
        pool: String,
        /// Addresses assigned in it.
        addresses: u128,
    },
    /// A leak report that may not be applied to this cluster.
    #[error("refusing the report: {0}")]
    ReportRefused(String),
    /// A leak report whose revision is ahead of the datastore's: the data
    /// is older than the report (etcd restored from a backup?) or the
    /// report comes from another cluster. [`crate::RepairOptions`] can
    /// override this refusal.
    #[error(
        "refusing the report: its revision {report} is ahead of the datastore's {datastore}: \
         the data is older than the report (etcd restored from a backup?) or it comes from \
         another cluster"
    )]
    ReportAhead {
        /// The report's revision.
        report: i64,
        /// The datastore's revision now.
        datastore: i64,
    },
}

fn fmt_nets(nets: &[IpNet]) -> String {
    if nets.is_empty() {
        return "(no pools)".to_string();
    }
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Result of allocator calls.
pub type Result<T, E = IpamError> = std::result::Result<T, E>;

impl IpamError {
    /// Whether this is a lost compare-and-swap (retry after re-reading).
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, IpamError::Datastore(etcd::Error::Conflict { .. }))
    }

    /// Whether the key was missing.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, IpamError::Datastore(etcd::Error::NotFound { .. }))
    }
}
