//! The RIB: one prefix table holding every usable path (the union of the
//! Adj-RIBs-In after import policy, RFC 4271 §3.2), per-peer route counts, and
//! the Loc-RIB view computed by the decision process ([`super::decision`]).
//!
//! [`Rib::update`] takes a batch of changes and reports, for each prefix
//! whose best path or multipath next-hop set changed, the outcome before and
//! after. Paths are stored as route ids ([`super::route`]) in a compact
//! prefix map ([`super::prefix_map`]).
//!
//! Here: the table, its queries, and peers coming and going; applying
//! changes to it is in `apply.rs`, the batch they make and its take and
//! settle in `batch.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::paths::{PathLists, Paths, Slot};
use super::prefix_map::PrefixMap;
use super::route::{Route, RouteArena};

mod apply;
mod batch;

use super::adj_out::AddPathSend;
use super::change::RibChange;
use super::decided::{Decided, select};
use super::decision;
use super::interner::{AttrInterner, Attrs};
use super::path::RouteKey;
use super::path::{BestChange, Path, Selection};
use super::peer::{PeerIndex, PeerInfo, RibConfig};
use crate::policy::Policy;
use crate::types::Family;
use batch::Batch;

/// Errors of RIB operations. A failed batch changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    #[error("no peer with index {}", .0.0)]
    UnknownPeer(PeerIndex),
}

/// A registered peer and its policies.
#[derive(Debug)]
pub(super) struct PeerSlot {
    pub(super) info: PeerInfo,
    pub(super) import: Policy,
    pub(super) export: Policy,
    /// Routes this peer has in the table (its Adj-RIB-In's size). The
    /// routes themselves are found by scanning the table, which only peer
    /// down and graceful restart do: a per-peer index would cost a hash
    /// entry per route on the hot path and a second table's worth of memory.
    pub(super) routes: usize,
}

/// The speaker's RIB.
#[derive(Debug)]
pub struct Rib {
    pub(super) cfg: RibConfig,
    pub(super) interner: AttrInterner,
    /// Slot 0 is [`PeerIndex::LOCAL`] and always empty.
    pub(super) peers: Vec<Option<PeerSlot>>,
    table: PrefixMap<Paths>,
    /// The paths of prefixes with more than one (or a large path ID).
    lists: PathLists,
    routes: RouteArena,
    /// Attribute handles dropped during the open batch, released when it
    /// is taken.
    retired: Vec<Attrs>,
    /// Changes applied but not yet taken ([`Rib::take_changes`]).
    batch: Batch,
    /// The second thread's decisions in a bulk add ([`bulk`]), kept for
    /// their memory.
    bulk_spare: Decided,
    /// Report prefixes whose other paths changed too, not only their best
    /// ([`Self::set_track_paths`]).
    track_paths: bool,
}

/// How many prefixes ahead of the one being applied an UPDATE's prefixes
/// are prefetched from the table: enough to cover a memory access with the
/// work of applying the ones in between.
pub(super) const PREFETCH_AHEAD: usize = 8;

/// The "ourselves" next hop of a family.
pub(super) fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4Unicast => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6Unicast => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Self {
        Self {
            cfg,
            interner: AttrInterner::new(),
            peers: vec![None],
            table: PrefixMap::default(),
            lists: PathLists::default(),
            routes: RouteArena::default(),
            retired: Vec::new(),
            batch: Batch::default(),
            bulk_spare: Decided::default(),
            track_paths: false,
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// The attribute table (for inspection and memory accounting).
    pub fn interner(&self) -> &AttrInterner {
        &self.interner
    }

    /// Number of distinct routes (peer, attributes, next hop) in the table.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Drop interned attributes nobody uses any more (handles kept outside
    /// the RIB, e.g. from reported changes, delay their cleanup to here).
    pub fn gc(&mut self) -> usize {
        self.interner.gc()
    }

    /// Register a peer with its import and export policies.
    pub fn add_peer(&mut self, info: PeerInfo, import: Policy, export: Policy) -> PeerIndex {
        let slot = PeerSlot {
            info,
            import,
            export,
            routes: 0,
        };
        if let Some(i) = self.peers.iter().skip(1).position(Option::is_none) {
            self.peers[i + 1] = Some(slot);
            return PeerIndex(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
        self.peers.push(Some(slot));
        PeerIndex(u32::try_from(self.peers.len() - 1).unwrap_or(u32::MAX))
    }

    pub fn peer(&self, peer: PeerIndex) -> Option<&PeerInfo> {
        self.slot(peer).map(|s| &s.info)
    }

    /// Replace what the RIB knows of a peer's session (on each
    /// Established: its identifier, AS and our local addresses). Paths
    /// already held are re-evaluated only by later changes.
    pub fn set_peer_info(&mut self, peer: PeerIndex, info: PeerInfo) -> Result<(), RibError> {
        self.slot_mut(peer)?.info = info;
        Ok(())
    }

    /// Replace a peer's policies; returns the export policy replaced.
    /// Export changes are advertised by [`super::AdjRibOut::sync`] given
    /// the old policy; import changes apply to routes received from now on
    /// (ask the peer for a route refresh to re-import).
    pub fn set_policies(
        &mut self,
        peer: PeerIndex,
        import: Policy,
        export: Policy,
    ) -> Result<Policy, RibError> {
        let slot = self.slot_mut(peer)?;
        slot.import = import;
        Ok(std::mem::replace(&mut slot.export, export))
    }

    /// Number of (prefix, path ID) routes a peer has in its Adj-RIB-In.
    pub fn adj_in_len(&self, peer: PeerIndex) -> usize {
        self.slot(peer).map_or(0, |s| s.routes)
    }

    pub(super) fn slot(&self, peer: PeerIndex) -> Option<&PeerSlot> {
        self.peers.get(peer.0 as usize)?.as_ref()
    }

    fn slot_mut(&mut self, peer: PeerIndex) -> Result<&mut PeerSlot, RibError> {
        self.peers
            .get_mut(peer.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(RibError::UnknownPeer(peer))
    }

    /// Number of prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Every path to `prefix`, in no particular order.
    pub fn paths(&self, prefix: &IpNet) -> Vec<Path> {
        self.table.get(prefix).map_or_else(Vec::new, |p| {
            p.slots(&self.lists)
                .iter()
                .map(|s| self.routes.get(s.route).path(s.path_id))
                .collect()
        })
    }

    /// Prefixes whose paths are kept in a list (several paths, or a large
    /// path ID), not packed.
    pub fn listed_prefixes(&self) -> usize {
        self.lists.len()
    }

    /// The decision process's outcome for `prefix`.
    pub fn selection(&self, prefix: &IpNet) -> Selection {
        self.table.get(prefix).map_or_else(Selection::default, |p| {
            select(&p.slots(&self.lists), &self.routes, &self.cfg, &self.peers)
        })
    }

    /// The best path to `prefix`.
    pub fn best(&self, prefix: &IpNet) -> Option<Path> {
        self.selection(prefix).best
    }

    /// Whether decisions also report prefixes whose best path stays but
    /// other paths changed ([`super::Decision::paths_only`]): on while
    /// some peer is sent more than the best path (ADD-PATH, RFC 7911).
    pub fn set_track_paths(&mut self, on: bool) {
        self.track_paths = on;
    }

    /// The paths of `prefix` an ADD-PATH peer is offered, the best first
    /// (RFC 7911; which ones: [`AddPathSend`]).
    pub fn path_set(&self, prefix: &IpNet, send: AddPathSend) -> Vec<Path> {
        let Some(p) = self.table.get(prefix) else {
            return Vec::new();
        };
        let all: Vec<Path> = p
            .slots(&self.lists)
            .iter()
            .map(|s| self.routes.get(s.route).path(s.path_id))
            .collect();
        let peer = |i: PeerIndex| self.peers.get(i.0 as usize)?.as_ref().map(|s| &s.info);
        let mut order = decision::ecmp_set(&all, peer);
        if send == AddPathSend::All {
            let rest: Vec<usize> = (0..all.len()).filter(|i| !order.contains(i)).collect();
            order.extend(rest);
        }
        let mut all: Vec<Option<Path>> = all.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| all.get_mut(i).and_then(Option::take))
            .collect()
    }

    /// Every prefix in the table (e.g. to walk the Loc-RIB while changing
    /// the RIB in between).
    pub fn prefixes(&self) -> Vec<IpNet> {
        self.table.keys().collect()
    }

    /// The best path of every prefix (the Loc-RIB), as changes from nothing.
    pub fn loc_rib(&self) -> Vec<BestChange> {
        self.table
            .iter()
            .filter_map(|(prefix, paths)| {
                let slots = paths.slots(&self.lists);
                let s = select(&slots, &self.routes, &self.cfg, &self.peers);
                s.best.map(|best| BestChange {
                    prefix,
                    previous: None,
                    best: Some(best),
                    next_hops: s.next_hops,
                })
            })
            .collect()
    }

    /// A peer's Adj-RIB-In: its paths after import policy.
    pub fn adj_rib_in(&self, peer: PeerIndex) -> impl Iterator<Item = (IpNet, Path)> + '_ {
        self.table.iter().flat_map(move |(prefix, paths)| {
            paths.to_list(&self.lists).into_iter().filter_map(move |s| {
                let route = self.routes.get(s.route);
                (route.peer == peer).then(|| (prefix, route.path(s.path_id)))
            })
        })
    }

    /// The keys of a peer's routes that `keep` accepts (a table scan).
    fn keys_of(&self, peer: PeerIndex, keep: impl Fn(&Route) -> bool) -> Vec<RouteKey> {
        let mut keys = Vec::new();
        for (prefix, paths) in self.table.iter() {
            for s in paths.slots(&self.lists).iter() {
                let route = self.routes.get(s.route);
                if route.peer == peer && keep(route) {
                    keys.push((prefix, s.path_id));
                }
            }
        }
        keys
    }

    /// Apply a batch of changes; report the prefixes whose outcome changed
    /// (with any changes applied before and not taken yet).
    /// Nothing is applied when a change names an unknown peer.
    pub fn update(&mut self, changes: Vec<RibChange>) -> Result<Vec<BestChange>, RibError> {
        self.stage(changes)?;
        Ok(self.take_changes())
    }

    /// Apply changes without reporting them yet: a speaker applies every
    /// UPDATE of a pass, then takes the outcome once ([`Self::take_changes`]),
    /// so a prefix changed twice is decided and advertised once.
    /// Nothing is applied when a change names an unknown peer.
    pub fn stage(&mut self, changes: Vec<RibChange>) -> Result<(), RibError> {
        for change in &changes {
            if let RibChange::Announce { peer, .. } | RibChange::Withdraw { peer, .. } = change {
                self.slot_mut(*peer)?;
            }
        }
        for change in changes {
            match change {
                RibChange::Announce {
                    peer,
                    attrs,
                    next_hop,
                    nlri,
                } => self.announce(peer, attrs, next_hop, &nlri),
                RibChange::Withdraw { peer, nlri } => {
                    for (i, n) in nlri.iter().enumerate() {
                        if let Some(ahead) = nlri.get(i + PREFETCH_AHEAD) {
                            self.table
                                .prefetch(&PrefixMap::<Paths>::locate(&ahead.prefix));
                        }
                        self.remove(peer, (n.prefix, n.path_id.unwrap_or(0)));
                    }
                }
                RibChange::Originate {
                    prefix,
                    mut attrs,
                    next_hop,
                } => {
                    attrs.next_hop = None;
                    let family = Family::of(&prefix);
                    let attrs = self.interner.intern(attrs);
                    let next_hop = next_hop.unwrap_or_else(|| unspecified(family));
                    let route = self
                        .routes
                        .intern(PeerIndex::LOCAL, family, &attrs, next_hop);
                    self.retired.push(attrs);
                    let at = PrefixMap::<Paths>::locate(&prefix);
                    self.insert(at, prefix, PeerIndex::LOCAL, Slot { route, path_id: 0 });
                }
                RibChange::WithdrawLocal { prefix } => {
                    self.remove(PeerIndex::LOCAL, (prefix, 0));
                }
            }
        }
        Ok(())
    }

    /// The session went down without graceful restart: drop all its paths.
    pub fn peer_down(&mut self, peer: PeerIndex) -> Result<Vec<BestChange>, RibError> {
        let keys = self.retire(peer, None)?;
        self.remove_stale(peer, &keys);
        Ok(self.take_changes())
    }

    /// Graceful restart (RFC 4724 §4.2): keep the peer's paths of `family`
    /// but mark them stale; a re-announcement clears the mark. Returns how
    /// many paths were marked. Stale paths stay in use, so nothing changes.
    pub fn mark_stale(&mut self, peer: PeerIndex, family: Family) -> Result<usize, RibError> {
        self.slot_mut(peer)?;
        Ok(self.routes.mark_stale(peer, family))
    }

    /// End of graceful restart for `family` (End-of-RIB received or the
    /// timer expired, RFC 4724 §4.2): drop the paths still stale.
    pub fn sweep_stale(
        &mut self,
        peer: PeerIndex,
        family: Family,
    ) -> Result<Vec<BestChange>, RibError> {
        let keys = self.stale_keys(peer, Some(family))?;
        self.remove_stale(peer, &keys);
        Ok(self.take_changes())
    }

    /// Mark all of `peer`'s paths (of `family`, or all) stale and return
    /// their keys, for [`Self::remove_stale`] to drop a slice at a time: a
    /// peer with a full table goes without one pass building a million
    /// changes at once. Until removed, the paths stay in use.
    pub fn retire(
        &mut self,
        peer: PeerIndex,
        family: Option<Family>,
    ) -> Result<Vec<RouteKey>, RibError> {
        self.slot_mut(peer)?;
        for f in Family::ALL {
            if family.is_none_or(|only| only == f) {
                self.routes.mark_stale(peer, f);
            }
        }
        self.stale_keys(peer, family)
    }

    /// The keys of `peer`'s stale paths (of `family`, or all): a table scan.
    pub fn stale_keys(
        &self,
        peer: PeerIndex,
        family: Option<Family>,
    ) -> Result<Vec<RouteKey>, RibError> {
        self.slot(peer).ok_or(RibError::UnknownPeer(peer))?;
        Ok(self.keys_of(peer, |r| r.stale && family.is_none_or(|f| f == r.family)))
    }

    /// Remove those of `keys` that are still stale paths of `peer` (a path
    /// announced again since is fresh and stays). Staged: the changes are
    /// reported by the next [`Self::take_changes`].
    pub fn remove_stale(&mut self, peer: PeerIndex, keys: &[RouteKey]) {
        for key in keys {
            self.remove_where(peer, *key, true);
        }
    }

    /// Forget a peer whose paths are removed, once the pending changes are
    /// taken and settled (they are decided and advertised with what the
    /// RIB knows of it); its slot may then be reused.
    pub fn forget_peer(&mut self, peer: PeerIndex) {
        if peer != PeerIndex::LOCAL {
            self.batch.forget.push(peer);
        }
    }
}
