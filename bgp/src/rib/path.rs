//! A path as stored in the RIB, and the best-path changes the RIB reports.

use std::net::IpAddr;

use ipnet::IpNet;
use smallvec::SmallVec;

use super::interner::Attrs;
use super::peer::PeerIndex;

/// A route key: prefix and ADD-PATH path ID (0 without ADD-PATH).
pub type RouteKey = (IpNet, u32);

/// One path to a prefix (the prefix is the table key). Kept small: a path
/// is an index, a path ID, a shared attribute handle and a next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub peer: PeerIndex,
    /// ADD-PATH path identifier (RFC 7911), 0 without ADD-PATH.
    pub path_id: u32,
    pub attrs: Attrs,
    /// The next hop, from NEXT_HOP or MP_REACH_NLRI; the interned
    /// attributes hold no next hop so that they are shared more.
    pub next_hop: IpAddr,
    /// Retained across a graceful restart, not yet refreshed (RFC 4724 §4.2).
    pub stale: bool,
}

impl Path {
    /// Same route: same source, identity, attributes (by pointer) and next hop.
    pub fn same_route(&self, other: &Path) -> bool {
        self.peer == other.peer
            && self.path_id == other.path_id
            && std::sync::Arc::ptr_eq(&self.attrs, &other.attrs)
            && self.next_hop == other.next_hop
    }
}

/// The next hops of a prefix (inline up to two, so that a selection of a
/// single-path prefix costs no allocation).
pub type NextHops = SmallVec<[IpAddr; 2]>;

/// The outcome of the decision process for one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub best: Option<Path>,
    /// Distinct next hops to install, the best's first; only the best's when
    /// multipath is off; empty when there is no best.
    pub next_hops: NextHops,
}

impl Selection {
    /// Whether the route to install or advertise differs (stale flags aside).
    pub fn differs(&self, other: &Selection) -> bool {
        let best_differs = match (&self.best, &other.best) {
            (Some(a), Some(b)) => !a.same_route(b),
            (None, None) => false,
            _ => true,
        };
        best_differs || self.next_hops != other.next_hops
    }
}

/// A prefix whose best path or multipath set changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestChange {
    pub prefix: IpNet,
    /// The best path before the change (`None`: the prefix was unknown).
    /// Adj-RIBs-Out are derived from the old and new best paths, so they
    /// need not store what was advertised (RFC 4271 §3.2 allows any
    /// implementation that behaves as if they did).
    pub previous: Option<Path>,
    /// The new best path, `None` when the prefix became unreachable.
    pub best: Option<Path>,
    /// The next hops to install (see [`Selection::next_hops`]).
    pub next_hops: NextHops,
}
