//! The RIB: one prefix table holding every usable path (the union of the
//! Adj-RIBs-In after import policy, RFC 4271 §3.2), per-peer route counts, and
//! the Loc-RIB view computed by the decision process ([`super::decision`]).
//!
//! [`Rib::update`] takes a batch of changes and reports, for each prefix
//! whose best path or multipath next-hop set changed, the outcome before and
//! after. Paths are stored as route ids ([`super::route`]) in a compact
//! prefix map ([`super::prefix_map`]).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::paths::{MARK_LIMIT, PathList, PathLists, Paths, Slot};
use super::prefix_map::{Located, PrefixMap};
use super::route::{Route, RouteArena, RouteId};

use super::bulk;
use super::change::RibChange;
use super::decided::{Chosen, Decided, decide, next_hops, select};
use super::decision::{self, Ineligible};
use super::interner::{AttrInterner, Attrs};
use super::path::RouteKey;
use super::path::{BestChange, Path, Selection};
use super::peer::{PeerIndex, PeerInfo, PeerKind, RibConfig};
use crate::policy::{Outcome, Policy, PolicyContext};
use crate::types::Family;
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
}

/// The prefixes changed since the last [`Rib::take_changes`]: those it
/// added, already decided, and the others with their paths before the
/// first change and after the last.
#[derive(Debug)]
struct Batch {
    /// This batch's number, marked in the [`Paths`] of what it touches.
    number: u32,
    /// Prefixes the batch added, decided as they were added: the common
    /// case of a table arriving, one path each, so previous best none and
    /// best that path. Nothing else is kept for them (no [`Touched`]).
    decided: Decided,
    /// The other touched prefixes (those that had paths), in first-touch
    /// order.
    touched: Vec<Touched>,
    /// Prefixes touched again after their first touch (their `after` in
    /// `touched` is out of date; rare).
    retouched: Vec<IpNet>,
    /// Touched prefixes that lost their last path (and their mark with it).
    gone: HashSet<IpNet, FxBuildHasher>,
    /// Peers to forget once the changes are taken and settled.
    forget: Vec<PeerIndex>,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            number: 1,
            decided: Decided::default(),
            touched: Vec::new(),
            retouched: Vec::new(),
            gone: HashSet::default(),
            forget: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Touched {
    prefix: IpNet,
    /// The prefix's paths before the change (`None`: it had none). Routes
    /// dropped during the batch stay readable until it is taken.
    before: Option<PathList>,
    /// The prefix's paths after the change (`None`: it has none left).
    after: Option<PathList>,
}

/// A batch that touched or removed more than this many prefixes gives its
/// lists' memory back instead of keeping it for the next.
const KEEP_CAPACITY: usize = 1 << 17;

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

    /// How many prefixes the changes not yet taken touched.
    pub fn pending(&self) -> usize {
        self.batch.decided.len() + self.batch.touched.len()
    }

    fn announce(
        &mut self,
        peer: PeerIndex,
        mut attrs: PathAttributes,
        next_hop: IpAddr,
        nlri: &[crate::wire::Nlri],
    ) {
        let Some(slot) = self.slot(peer) else { return };
        let info = &slot.info;
        let kind = info.kind();
        let session_as = info.local_as;
        let by_prefix = slot.import.by_prefix();
        // The next hop lives in the route so that attributes share better.
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
                self.remove(peer, (n.prefix, n.path_id.unwrap_or(0)));
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
        // A large announcement's new prefixes go in on two threads; the
        // rest (if any) one at a time, below.
        let left;
        let nlri = if nlri.len() >= bulk::BULK_MIN && !by_prefix {
            left = self.announce_bulk(peer, &base, &ctx, next_hop, nlri);
            left.as_deref().unwrap_or(nlri)
        } else {
            nlri
        };
        // Without prefix conditions the import outcome is the same for
        // every prefix of the UPDATE (per family, for the route): decide
        // once. Otherwise remember the last route made, which consecutive
        // prefixes mostly share.
        let mut memo: Option<(Family, Option<RouteId>)> = None;
        let mut last: Option<(usize, Family, RouteId)> = None;
        // Each prefix is located (keyed and hashed) once, when prefetched,
        // and kept here until its turn.
        let locate = |n: &crate::wire::Nlri| PrefixMap::<Paths>::locate(&n.prefix);
        let mut located: [Option<Located>; PREFETCH_AHEAD] = [None; PREFETCH_AHEAD];
        for (at, n) in located.iter_mut().zip(nlri) {
            let l = locate(n);
            self.table.prefetch(&l);
            *at = Some(l);
        }
        for (i, n) in nlri.iter().enumerate() {
            let ring = &mut located[i % PREFETCH_AHEAD];
            let at = ring.take().unwrap_or_else(|| locate(n));
            if let Some(ahead) = nlri.get(i + PREFETCH_AHEAD) {
                let l = locate(ahead);
                self.table.prefetch(&l);
                *ring = Some(l);
            }
            let key = (n.prefix, n.path_id.unwrap_or(0));
            let family = Family::of(&n.prefix);
            let decided = match memo {
                Some((f, route)) if f == family && !by_prefix => route,
                _ => {
                    let Some(slot) = self.peers.get(peer.0 as usize).and_then(Option::as_ref)
                    else {
                        return;
                    };
                    let route = match slot
                        .import
                        .apply(&n.prefix, &base, &ctx, &mut self.interner)
                    {
                        Outcome::Rejected => None,
                        Outcome::Accepted { attrs, .. } => {
                            let ptr = Attrs::as_ptr(&attrs) as usize;
                            Some(match last {
                                Some((p, f, id)) if p == ptr && f == family => id,
                                _ => {
                                    let id = self.routes.intern(peer, family, &attrs, next_hop);
                                    last = Some((ptr, family, id));
                                    id
                                }
                            })
                            // `attrs` dropped here: the route holds them.
                        }
                    };
                    memo = Some((family, route));
                    route
                }
            };
            match decided {
                None => self.remove(peer, key),
                Some(route) => self.insert(
                    at,
                    n.prefix,
                    peer,
                    Slot {
                        route,
                        path_id: key.1,
                    },
                ),
            }
        }
        self.retired.push(base);
    }

    /// Add the prefixes of an announcement that are new to the table, on
    /// two threads ([`bulk`]), and return the others, to add one at a time
    /// (`None`: none added, the import policy rejects the route).
    fn announce_bulk(
        &mut self,
        peer: PeerIndex,
        base: &Attrs,
        ctx: &PolicyContext,
        next_hop: IpAddr,
        nlri: &[crate::wire::Nlri],
    ) -> Option<Vec<crate::wire::Nlri>> {
        let first = nlri.first()?;
        let family = Family::of(&first.prefix);
        let import = &self.peers.get(peer.0 as usize)?.as_ref()?.import;
        let Outcome::Accepted { attrs, .. } =
            import.apply(&first.prefix, base, ctx, &mut self.interner)
        else {
            return None;
        };
        let route = self.routes.intern(peer, family, &attrs, next_hop);
        let added = bulk::add_new(
            &mut self.table,
            bulk::Announced {
                nlri,
                family,
                route,
                batch: self.batch.number,
                gone: &self.batch.gone,
            },
            &mut self.batch.decided,
            &mut self.bulk_spare,
        );
        self.routes.retain_n(route, added.count);
        if let Some(s) = self.peers.get_mut(peer.0 as usize).and_then(Option::as_mut) {
            s.routes += added.count as usize;
        }
        Some(added.left.iter().map(|&i| nlri[i]).collect())
    }

    /// Store `slot` (a route of `peer`) for `prefix` (located at `at`),
    /// replacing the peer's path with the same path ID.
    fn insert(&mut self, at: Located, prefix: IpNet, peer: PeerIndex, slot: Slot) {
        let Rib {
            table,
            lists,
            routes,
            batch,
            ..
        } = self;
        let mut replaced = None;
        let mut added = false;
        let number = batch.number;
        table.upsert_at(at, |paths| {
            let Some(paths) = paths else {
                added = true;
                let mut new = Paths::new(slot, lists);
                new.set_batch(number);
                if !batch.gone.is_empty() && batch.gone.contains(&prefix) {
                    batch.retouched.push(prefix);
                } else {
                    // One path: it is the best (`decided::decide`).
                    batch.decided.push(prefix, None, Some(slot), None);
                }
                return Some(new);
            };
            let first = paths.batch() != number;
            let before = first.then(|| paths.to_list(lists));
            let same = |s: &Slot| s.path_id == slot.path_id && routes.get(s.route).peer == peer;
            let found = paths.slots(lists).iter().position(same);
            match found {
                Some(pos) => {
                    replaced = Some(paths.slots(lists)[pos].route);
                    paths.replace(pos, slot, lists);
                }
                None => {
                    paths.push(slot, lists);
                    added = true;
                }
            }
            match before {
                Some(before) => {
                    paths.set_batch(number);
                    batch.touched.push(Touched {
                        prefix,
                        before: Some(before),
                        after: Some(paths.to_list(lists)),
                    });
                }
                None => batch.retouched.push(prefix),
            }
            None
        });
        self.routes.retain(slot.route);
        if let Some(old) = replaced {
            self.routes.release(old);
        }
        if added {
            if let Some(s) = self.peers.get_mut(peer.0 as usize).and_then(Option::as_mut) {
                s.routes += 1;
            }
        }
    }

    fn remove(&mut self, peer: PeerIndex, key: RouteKey) {
        self.remove_where(peer, key, false);
    }

    /// Remove `peer`'s path `key` (only if stale, with `only_stale`).
    fn remove_where(&mut self, peer: PeerIndex, key: RouteKey, only_stale: bool) {
        let (prefix, path_id) = key;
        let Rib {
            peers,
            table,
            lists,
            routes,
            batch,
            ..
        } = self;
        // Located once for the lookup and the removal that may follow.
        let at = PrefixMap::<Paths>::locate(&prefix);
        let Some(paths) = table.get_mut_at(at) else {
            return;
        };
        let slots = paths.slots(lists);
        let Some(pos) = slots.iter().position(|s| {
            let r = routes.get(s.route);
            s.path_id == path_id && r.peer == peer && (r.stale || !only_stale)
        }) else {
            return;
        };
        routes.release(slots[pos].route);
        let first = paths.batch() != batch.number;
        let before = first.then(|| paths.to_list(lists));
        let after = if paths.remove(pos, lists) {
            paths.set_batch(batch.number);
            Some(paths.to_list(lists))
        } else {
            paths.free(lists);
            table.remove_at(at);
            batch.gone.insert(prefix);
            None
        };
        match before {
            Some(before) => batch.touched.push(Touched {
                prefix,
                before: Some(before),
                after,
            }),
            None => batch.retouched.push(prefix),
        }
        if let Some(s) = peers.get_mut(peer.0 as usize).and_then(Option::as_mut) {
            s.routes = s.routes.saturating_sub(1);
        }
    }

    /// The prefixes whose outcome changed since the last call, each once,
    /// with its best path before and after; then let go of the routes and
    /// attribute handles the changes dropped.
    pub fn take_changes(&mut self) -> Vec<BestChange> {
        let decided = self.take_decided();
        let out = self.best_changes(&decided);
        self.settle(decided);
        out
    }

    /// The prefixes whose outcome changed since the last take, each once,
    /// by reference: the routes they name stay readable until the caller,
    /// having advertised them, hands them to [`Self::settle`].
    pub fn take_decided(&mut self) -> Decided {
        let mut touched = std::mem::take(&mut self.batch.touched);
        let retouched = std::mem::take(&mut self.batch.retouched);
        let mut out = std::mem::take(&mut self.batch.decided);
        if !retouched.is_empty() {
            // Rare: bring the outcome of added prefixes, and the paths-after
            // of the others, up to date for prefixes touched twice.
            let added = out.len();
            let index: HashMap<IpNet, usize, FxBuildHasher> = out
                .iter()
                .map(|d| d.prefix)
                .chain(touched.iter().map(|t| t.prefix))
                .enumerate()
                .map(|(i, p)| (p, i))
                .collect();
            let mut emptied = false;
            for prefix in retouched {
                let Some(&i) = index.get(&prefix) else {
                    continue;
                };
                let now = self.table.get(&prefix).map(|p| p.to_list(&self.lists));
                if i < added {
                    let chosen = now.map_or_else(Chosen::default, |p| {
                        decide(&p, &self.routes, &self.cfg, &self.peers)
                    });
                    emptied |= chosen.best.is_none();
                    out.set(i, chosen.best, chosen.hops);
                } else {
                    touched[i - added].after = now;
                }
            }
            if emptied {
                // Added and removed again: no change at all.
                out.retain(|d| d.previous.is_some() || d.best.is_some());
            }
        }
        if self.batch.gone.capacity() > KEEP_CAPACITY {
            self.batch.gone = HashSet::default();
        } else {
            self.batch.gone.clear();
        }
        // A new number unmarks every prefix at once; at the wrap (every
        // four million batches), unmark them one by one so that no old mark
        // looks current.
        self.batch.number = (self.batch.number + 1) % MARK_LIMIT;
        if self.batch.number == 0 {
            self.batch.number = 1;
            for p in self.table.values_mut() {
                p.set_batch(0);
            }
        }
        out.reserve(touched.len());
        let outcome = |paths: &Option<PathList>| {
            paths.as_ref().map_or_else(Chosen::default, |p| {
                decide(p, &self.routes, &self.cfg, &self.peers)
            })
        };
        for t in touched.drain(..) {
            // The same paths (an identical re-announcement, a refresh):
            // nothing to decide.
            let unchanged = match (&t.before, &t.after) {
                (Some(b), Some(a)) => b == a,
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                continue;
            }
            let before = outcome(&t.before);
            let after = outcome(&t.after);
            if after.differs(&before, &self.routes) {
                out.push(t.prefix, before.best, after.best, after.hops);
            }
        }
        // Keep the list's memory for the next batch, unless a table-wide
        // change (a peer going down) made it large.
        if touched.capacity() <= KEEP_CAPACITY {
            self.batch.touched = touched;
        }
        out
    }

    /// `decided` with paths, as [`Self::take_changes`] reports them.
    pub fn best_changes(&self, decided: &Decided) -> Vec<BestChange> {
        let path = |s: Slot| self.routes.get(s.route).path(s.path_id);
        decided
            .iter()
            .map(|d| BestChange {
                prefix: d.prefix,
                previous: d.previous.map(path),
                best: d.best.map(path),
                next_hops: next_hops(decided.multipath_hops(d), d.best, &self.routes),
            })
            .collect()
    }

    /// The route a decision names (readable until [`Self::settle`]).
    pub fn route(&self, slot: Slot) -> &Route {
        self.routes.get(slot.route)
    }

    /// Take back decisions once advertised, and let go of what the
    /// decisions taken so far dropped: routes no prefix uses, their
    /// attribute handles, and peers being forgotten. Changes staged and not
    /// yet taken still need what they dropped: with any pending, that is
    /// let go at a later settle.
    pub fn settle(&mut self, done: Decided) {
        let list = done.into_list();
        let next = &mut self.batch.decided;
        if next.is_empty() && list.capacity() <= KEEP_CAPACITY && list.capacity() > next.capacity()
        {
            *next = Decided::reuse(list, 0);
        }
        if self.pending() > 0 || !self.batch.retouched.is_empty() {
            return;
        }
        for peer in std::mem::take(&mut self.batch.forget) {
            if let Some(slot) = self.peers.get_mut(peer.0 as usize) {
                *slot = None;
            }
        }
        let freed = self.routes.collect();
        for handle in freed.into_iter().chain(std::mem::take(&mut self.retired)) {
            self.interner.release(handle);
        }
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
