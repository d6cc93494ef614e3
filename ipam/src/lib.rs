//! manul's IP address management: pools, blocks, affinities, handles, in
//! Calico's etcd layout and JSON, so calico-node and manul-node can share a
//! cluster.
//!
//! - [`block`]: the pure arithmetic of one allocation block (ordinals,
//!   FIFO reuse, attributes, sequence numbers), no I/O.
//! - [`Ipam`] ([`ipam`]): the allocator over a [`manul_datastore::Datastore`].
//! - [`cache`]: what an `Ipam` remembers between calls (affine blocks,
//!   block values, config, pools, Node labels) and why that is safe.
//! - [`config`]: the IPAM config and Calico's rules for it.
//! - [`pools`]: which pools a host may use.
//! - `claim`: claiming a block (pending affinity, block, confirm);
//!   [`reclaim`]: taking another host's long-empty block when no block is
//!   left unclaimed.
//! - [`assign`]: [`Ipam::auto_assign`] and [`Ipam::assign_ip`].
//! - [`release`]: [`Ipam::release_ips`], [`Ipam::release_by_handle`],
//!   [`Ipam::release_host`].
//! - [`host_removal`]: what a removed node holds
//!   ([`Ipam::host_holdings`]) and releasing it ([`Ipam::remove_host`]).
//! - [`query`]: [`Ipam::ip_info`], [`Ipam::utilization`],
//!   [`Ipam::borrowed_ips`].
//! - [`reservations`]: IPReservations, skipped by automatic assignment.
//! - [`split`]: splitting a pool in 2^n (`manulctl ipam split`).
//! - [`check`]: the leak check and its [`Report`] (with a progress hook,
//!   [`Ipam::check_with_progress`]); [`repair`]: applying one.
//! - `store`: counted, typed compare-and-swap access ([`Stats`]).
//! - [`tunnel`]: a node's VXLAN tunnel addresses and VTEP MACs, kept as
//!   calico-node's `allocateip` keeps them (IPAM handle, Node fields).
//!
//! Every write is compare-and-swap, retried up to [`store::MAX_RETRIES`]
//! times after a conflict. Values read from etcd never cause a panic: a
//! malformed block, handle or affinity on the path of a call is an error
//! naming its key; malformed pools are skipped (logged) so one bad pool
//! does not stop allocation; the leak check reports malformed values.

pub mod assign;
pub mod block;
pub mod cache;
pub mod check;
mod claim;
pub mod config;
pub mod error;
pub mod host_removal;
pub mod ipam;
pub mod pools;
pub mod query;
pub mod reclaim;
pub mod release;
pub mod repair;
pub mod reservations;
pub mod split;
pub mod store;
pub mod tunnel;

pub use assign::AutoAssignArgs;
pub use block::Released;
pub use check::{ClusterIdentity, Problem, Progress, Records, Report};
pub use error::{IpamError, Result};
pub use host_removal::{HeldAddress, HostHoldings, HostRemoval};
pub use ipam::Ipam;
pub use query::{BlockUsage, BorrowedIp, IpInfo, PoolUsage, Utilization};
pub use release::HostRelease;
pub use repair::{RepairOptions, RepairOutcome};
pub use store::Stats;
