//! manul's confd: this node's live view of the cluster from etcd.
//!
//! - [`item`]: which etcd keys a node keeps, and their typed, reduced values.
//! - [`snapshot`]: [`Snapshot`], the consistent state at one revision, and
//!   [`Delta`], one change to it.
//! - [`sync`]: the tokio task — list, then watch by revision, survive
//!   compaction, outages and malformed values — publishing [`Batch`]es of
//!   deltas and a [`Status`] to subscribers.
//! - [`felix_config`]: the FelixConfiguration in effect for this node
//!   (`node.<name>` over `default`, field by field).
//! - [`bgp`]: the node's BGP view derived from the snapshot, incrementally
//!   (pure code, no I/O).
//!
//! confd knows Calico's data model but neither BGP sessions nor netlink:
//! the node agent hands the view to the speaker and the snapshot to felix.

pub mod bgp;
pub mod felix_config;
pub mod item;
pub mod snapshot;
pub mod sync;

pub use item::{BlockOwners, Item, ItemKey};
pub use snapshot::{Delta, Snapshot};
pub use sync::{Batch, Cause, Confd, ConfdConfig, Status, Subscription};
