//! The RIB: one prefix table holding every usable path (the union of the
//! Adj-RIBs-In after import policy, RFC 4271 §3.2), per-peer route counts, and
//! the Loc-RIB view computed by the decision process ([`super::decision`]).
//!
//! [`Rib::update`] takes a batch of changes and reports, for each prefix
//! whose best path or multipath next-hop set changed, the new outcome.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use super::prefix_map::PrefixTable;

use super::change::RibChange;
use super::decision::{self, Ineligible};
use super::interner::{AttrInterner, Attrs};
use super::path::RouteKey;
use super::path::{BestChange, Path, Selection};
use super::peer::{PeerIndex, PeerInfo, PeerKind, RibConfig};
use crate::policy::{Outcome, Policy, PolicyContext};
use crate::types::{Family, RouterId};
use crate::wire::PathAttributes;

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
    table: PrefixTable,
    /// Handles dropped during a batch, released once the batch is done.
    retired: Vec<Attrs>,
}

/// The prefixes a batch touched, with their outcome before it.
#[derive(Default)]
struct Batch {
    /// Touched prefixes in first-touch order, with their outcome before.
    touched: Vec<(IpNet, Selection)>,
    /// Which prefixes are in `touched` (keys only: cheap to fill and to drop).
    seen: HashSet<IpNet, FxBuildHasher>,
}

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
            table: PrefixTable::default(),
            retired: Vec::new(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// The attribute table (for inspection and memory accounting).
    pub fn interner(&self) -> &AttrInterner {
        &self.interner
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

    /// Remove a peer and all its paths.
    pub fn remove_peer(&mut self, peer: PeerIndex) -> Result<Vec<BestChange>, RibError> {
        let changes = self.peer_down(peer)?;
        if let Some(slot) = self.peers.get_mut(peer.0 as usize) {
            *slot = None;
        }
        Ok(changes)
    }

    pub fn peer(&self, peer: PeerIndex) -> Option<&PeerInfo> {
        self.slot(peer).map(|s| &s.info)
    }

    /// Record the BGP Identifier a (re-)established session announced.
    pub fn set_peer_router_id(&mut self, peer: PeerIndex, id: RouterId) -> Result<(), RibError> {
        self.slot_mut(peer)?.info.router_id = id;
        Ok(())
    }

    /// Replace what the RIB knows of a peer's session (on each
    /// Established: its identifier, AS and our local addresses). Paths
    /// already held are re-evaluated only by later changes.
    pub fn set_peer_info(&mut self, peer: PeerIndex, info: PeerInfo) -> Result<(), RibError> {
        self.slot_mut(peer)?.info = info;
        Ok(())
    }

    /// Replace a peer's policies. Export changes take effect at the next
    /// [`super::AdjRibOut::sync`]; import changes apply to routes received
    /// from now on (ask the peer for a route refresh to re-import).
    pub fn set_policies(
        &mut self,
        peer: PeerIndex,
        import: Policy,
        export: Policy,
    ) -> Result<(), RibError> {
        let slot = self.slot_mut(peer)?;
        slot.import = import;
        slot.export = export;
        Ok(())
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
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        self.table.get(prefix).map_or(&[], SmallVec::as_slice)
    }

    /// The decision process's outcome for `prefix`.
    pub fn selection(&self, prefix: &IpNet) -> Selection {
        decision::select(self.paths(prefix), &self.cfg, |i| self.peer(i))
    }

    /// The best path to `prefix`.
    pub fn best(&self, prefix: &IpNet) -> Option<Path> {
        self.selection(prefix).best
    }

    /// The best path of every prefix (the Loc-RIB), e.g. for a session's
    /// initial advertisement.
    pub fn loc_rib(&self) -> Vec<BestChange> {
        self.table
            .keys()
            .filter_map(|prefix| {
                let s = self.selection(prefix);
                s.best.map(|best| BestChange {
                    prefix: *prefix,
                    best: Some(best),
                    next_hops: s.next_hops,
                })
            })
            .collect()
    }

    /// A peer's Adj-RIB-In: its paths after import policy.
    pub fn adj_rib_in(&self, peer: PeerIndex) -> impl Iterator<Item = (IpNet, &Path)> + '_ {
        self.table.iter().flat_map(move |(prefix, paths)| {
            paths
                .iter()
                .filter(move |p| p.peer == peer)
                .map(move |p| (*prefix, p))
        })
    }

    /// The keys of a peer's routes, of one family or all (a table scan).
    fn keys_of(&self, peer: PeerIndex, family: Option<Family>) -> Vec<RouteKey> {
        self.table
            .iter()
            .filter(|(prefix, _)| family.is_none_or(|f| Family::of(prefix) == f))
            .flat_map(|(prefix, paths)| {
                paths
                    .iter()
                    .filter(|p| p.peer == peer)
                    .map(|p| (*prefix, p.path_id))
            })
            .collect()
    }

    /// Apply a batch of changes; report the prefixes whose outcome changed.
    /// Nothing is applied when a change names an unknown peer.
    pub fn update(&mut self, changes: Vec<RibChange>) -> Result<Vec<BestChange>, RibError> {
        for change in &changes {
            if let RibChange::Announce { peer, .. } | RibChange::Withdraw { peer, .. } = change {
                self.slot_mut(*peer)?;
            }
        }
        let mut batch = Batch::default();
        for change in changes {
            match change {
                RibChange::Announce {
                    peer,
                    attrs,
                    next_hop,
                    nlri,
                } => self.announce(&mut batch, peer, attrs, next_hop, &nlri),
                RibChange::Withdraw { peer, nlri } => {
                    for n in nlri {
                        self.remove(&mut batch, peer, (n.prefix, n.path_id.unwrap_or(0)));
                    }
                }
                RibChange::Originate {
                    prefix,
                    mut attrs,
                    next_hop,
                } => {
                    attrs.next_hop = None;
                    let path = Path {
                        peer: PeerIndex::LOCAL,
                        path_id: 0,
                        attrs: self.interner.intern(attrs),
                        next_hop: next_hop.unwrap_or_else(|| unspecified(Family::of(&prefix))),
                        stale: false,
                    };
                    self.insert(&mut batch, prefix, path);
                }
                RibChange::WithdrawLocal { prefix } => {
                    self.remove(&mut batch, PeerIndex::LOCAL, (prefix, 0));
                }
            }
        }
        Ok(self.finish(batch))
    }

    fn announce(
        &mut self,
        batch: &mut Batch,
        peer: PeerIndex,
        mut attrs: PathAttributes,
        next_hop: IpAddr,
        nlri: &[crate::wire::Nlri],
    ) {
        let Some(slot) = self.slot(peer) else { return };
        let info = &slot.info;
        let kind = info.kind();
        let session_as = info.local_as;
        // The next hop lives in the path so that attributes share better.
        attrs.next_hop = None;
        // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored.
        if kind == PeerKind::Ebgp {
            attrs.local_pref = None;
        }
        let verdict: Result<(), Ineligible> = decision::check_loops(&attrs, &self.cfg, session_as);
        if verdict.is_err() {
            // Excluded from the decision process (RFC 4271 §9.1.2, RFC 4456
            // §8): treated as a withdrawal of what the peer had before.
            for n in nlri {
                self.remove(batch, peer, (n.prefix, n.path_id.unwrap_or(0)));
            }
            return;
        }
        let base = self.interner.intern(attrs);
        let ctx = PolicyContext {
            local_as: session_as,
            peer_kind: kind,
            source: kind.into(),
            reflected: false,
        };
        for n in nlri {
            let key = (n.prefix, n.path_id.unwrap_or(0));
            let Some(slot) = self.peers.get(peer.0 as usize).and_then(Option::as_ref) else {
                return;
            };
            match slot
                .import
                .apply(&n.prefix, &base, &ctx, &mut self.interner)
            {
                Outcome::Rejected => self.remove(batch, peer, key),
                Outcome::Accepted { attrs, .. } => {
                    let path = Path {
                        peer,
                        path_id: key.1,
                        attrs,
                        next_hop,
                        stale: false,
                    };
                    self.insert(batch, n.prefix, path);
                }
            }
        }
        self.retired.push(base);
    }

    /// Note a prefix's outcome before the batch first changes it.
    fn touch(&self, batch: &mut Batch, prefix: IpNet) {
        if batch.seen.insert(prefix) {
            // A prefix with no path had no outcome: no decision to run.
            let before = match self.table.get(&prefix) {
                Some(paths) if !paths.is_empty() => {
                    decision::select(paths, &self.cfg, |i| self.peer(i))
                }
                _ => Selection::default(),
            };
            batch.touched.push((prefix, before));
        }
    }

    fn insert(&mut self, batch: &mut Batch, prefix: IpNet, path: Path) {
        self.touch(batch, prefix);
        let peer = path.peer;
        let paths = self.table.entry(prefix);
        match paths
            .iter_mut()
            .find(|p| p.peer == path.peer && p.path_id == path.path_id)
        {
            Some(existing) => {
                let old = std::mem::replace(existing, path);
                self.retired.push(old.attrs);
            }
            None => {
                paths.push(path);
                if let Some(slot) = self.peers.get_mut(peer.0 as usize).and_then(Option::as_mut) {
                    slot.routes += 1;
                }
            }
        }
    }

    fn remove(&mut self, batch: &mut Batch, peer: PeerIndex, key: RouteKey) {
        let (prefix, path_id) = key;
        let Some(paths) = self.table.get(&prefix) else {
            return;
        };
        let Some(pos) = paths
            .iter()
            .position(|p| p.peer == peer && p.path_id == path_id)
        else {
            return;
        };
        self.touch(batch, prefix);
        if let Some(slot) = self.peers.get_mut(peer.0 as usize).and_then(Option::as_mut) {
            slot.routes = slot.routes.saturating_sub(1);
        }
        if let Some(paths) = self.table.get_mut(&prefix) {
            let old = paths.swap_remove(pos);
            self.retired.push(old.attrs);
            if paths.is_empty() {
                self.table.remove(&prefix);
            }
        }
    }

    /// Compare each touched prefix's outcome with the one before, then let
    /// go of the attribute handles the batch dropped.
    fn finish(&mut self, batch: Batch) -> Vec<BestChange> {
        let Batch { touched, seen } = batch;
        drop(seen);
        let mut out = Vec::with_capacity(touched.len());
        for (prefix, before) in touched {
            let after = self.selection(&prefix);
            if after.differs(&before) {
                out.push(BestChange {
                    prefix,
                    best: after.best,
                    next_hops: after.next_hops,
                });
            }
        }
        for handle in std::mem::take(&mut self.retired) {
            self.interner.release(handle);
        }
        out
    }

    /// The session went down without graceful restart: drop all its paths.
    pub fn peer_down(&mut self, peer: PeerIndex) -> Result<Vec<BestChange>, RibError> {
        self.slot_mut(peer)?;
        let keys = self.keys_of(peer, None);
        let mut batch = Batch::default();
        for key in keys {
            self.remove(&mut batch, peer, key);
        }
        Ok(self.finish(batch))
    }

    /// Graceful restart (RFC 4724 §4.2): keep the peer's paths of `family`
    /// but mark them stale; a re-announcement clears the mark. Returns how
    /// many paths were marked. Stale paths stay in use, so nothing changes.
    pub fn mark_stale(&mut self, peer: PeerIndex, family: Family) -> Result<usize, RibError> {
        self.slot_mut(peer)?;
        let keys = self.keys_of(peer, Some(family));
        let mut marked = 0;
        for (prefix, id) in keys {
            if let Some(paths) = self.table.get_mut(&prefix) {
                for p in paths
                    .iter_mut()
                    .filter(|p| p.peer == peer && p.path_id == id)
                {
                    p.stale = true;
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }

    /// End of graceful restart for `family` (End-of-RIB received or the
    /// timer expired, RFC 4724 §4.2): drop the paths still stale.
    pub fn sweep_stale(
        &mut self,
        peer: PeerIndex,
        family: Family,
    ) -> Result<Vec<BestChange>, RibError> {
        self.slot_mut(peer)?;
        let keys = self.keys_of(peer, Some(family));
        let mut batch = Batch::default();
        for key in keys {
            let stale = self
                .paths(&key.0)
                .iter()
                .any(|p| p.peer == peer && p.path_id == key.1 && p.stale);
            if stale {
                self.remove(&mut batch, peer, key);
            }
        }
        Ok(self.finish(batch))
    }
}
