//! The node's BGP view, derived from the [`crate::Snapshot`] by pure code:
//! effective AS, router ID, mesh on/off, route-reflector role, the peer
//! set, and the prefixes to advertise with their communities.
//!
//! - [`view`]: the output types ([`NodeBgpView`]).
//! - [`globals`]: node-wide settings and their precedence.
//! - [`peers`]: the peerings each source (mesh to one node, one BGPPeer) gives.
//! - [`prefixes`]: what is advertised.
//! - [`deriver`]: [`BgpDeriver`], which recomputes only what a batch of
//!   deltas touches and reports per-peer and per-prefix changes.
//! - [`task`]: [`BgpViewTask`], the deriver driven by a confd subscription.

pub mod deriver;
pub mod duration;
pub mod globals;
pub mod peers;
pub mod prefixes;
pub mod task;
pub mod view;

pub use deriver::{BgpChanges, BgpDeriver, derive};
pub use task::BgpViewTask;
pub use view::{
    Community, FilterRef, Globals, NodeBgpView, PeerSource, PeerView, PrefixOrigin, PrefixView,
};
