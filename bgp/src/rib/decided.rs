//! The decision process's outcome for the prefixes a batch changed, by
//! reference: each prefix's best path before and after as the table holds
//! it (route id and path ID), not as a [`super::BestChange`] with its own
//! copy of the path.
//!
//! A full table arriving is a million of these; a reference is 12 bytes
//! where a path is 40 with a shared attribute handle to count, so taking,
//! advertising and dropping them costs little. The routes they name stay
//! readable until the decisions are handed back to [`super::Rib::settle`]
//! (which takes them by value, so none is read after);
//! [`super::Rib::best_changes`] turns them into [`super::BestChange`]s for
//! whoever needs paths.
//!
//! Also here: the decision process run over one prefix's stored paths
//! (`decide`), whose outcome these decisions record.

use ipnet::IpNet;

use super::decision;
use super::interner::Attrs;
use super::path::{NextHops, Path, Selection};
use super::paths::Slot;
use super::peer::{PeerIndex, RibConfig};
use super::route::RouteArena;
use super::table::PeerSlot;

/// No entry in [`Decided`]'s next-hop lists.
const OWN_HOP: u32 = u32::MAX;

/// One prefix whose best path or next-hop set changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub prefix: IpNet,
    /// The best path before (`None`: the prefix had none).
    pub previous: Option<Slot>,
    /// The best path now (`None`: the prefix became unreachable).
    pub best: Option<Slot>,
    /// Where the next hops are when they are more than the best path's
    /// own (multipath): an index into [`Decided`]'s lists.
    hops: u32,
    /// Only the prefix's other paths changed (reported for ADD-PATH
    /// peers, [`super::Rib::set_track_paths`]); best and next hops stay.
    pub paths_only: bool,
}

/// The decisions of one batch, each prefix at most once.
#[derive(Debug, Default)]
pub struct Decided {
    list: Vec<Decision>,
    /// Next-hop sets other than the best path's own next hop (multipath).
    hops: Vec<NextHops>,
}

impl Decided {
    /// Decisions written into `list`'s memory (emptied).
    pub(super) fn reuse(mut list: Vec<Decision>) -> Self {
        list.clear();
        Self {
            list,
            hops: Vec::new(),
        }
    }

    /// The list, for its memory.
    pub(super) fn into_list(self) -> Vec<Decision> {
        self.list
    }

    /// How many decisions fit without growing.
    pub(super) fn capacity(&self) -> usize {
        self.list.capacity()
    }

    /// Make room for `n` more decisions.
    pub(super) fn reserve(&mut self, n: usize) {
        self.list.reserve(n);
    }

    /// Change the outcome recorded at `i` (the prefix changed again).
    pub(super) fn set(&mut self, i: usize, best: Option<Slot>, hops: Option<NextHops>) {
        let hops = self.hops_index(hops);
        if let Some(d) = self.list.get_mut(i) {
            d.best = best;
            d.hops = hops;
        }
    }

    /// Move `other`'s decisions after these (`other` is left empty, its
    /// memory kept for reuse).
    pub(super) fn append(&mut self, other: &mut Decided) {
        if other.hops.is_empty() {
            self.list.append(&mut other.list);
            return;
        }
        let offset = u32::try_from(self.hops.len()).unwrap_or(OWN_HOP);
        self.list.extend(other.list.drain(..).map(|mut d| {
            if d.hops != OWN_HOP {
                d.hops = d.hops.saturating_add(offset);
            }
            d
        }));
        self.hops.append(&mut other.hops);
    }

    /// Keep only the decisions `keep` says (in order).
    pub(super) fn retain(&mut self, keep: impl FnMut(&Decision) -> bool) {
        self.list.retain(keep);
    }

    fn hops_index(&mut self, hops: Option<NextHops>) -> u32 {
        match hops {
            Some(h) => {
                self.hops.push(h);
                u32::try_from(self.hops.len() - 1).unwrap_or(OWN_HOP)
            }
            None => OWN_HOP,
        }
    }

    /// Record a decision; `hops`: the next hops when they are not just the
    /// best path's own.
    pub(super) fn push(
        &mut self,
        prefix: IpNet,
        previous: Option<Slot>,
        best: Option<Slot>,
        hops: Option<NextHops>,
    ) {
        let hops = self.hops_index(hops);
        self.list.push(Decision {
            prefix,
            previous,
            best,
            hops,
            paths_only: false,
        });
    }

    /// Record that only `prefix`'s other paths changed (its best is `best`
    /// before and after; its next hops `hops` as in [`Self::push`]).
    pub(super) fn push_paths_only(
        &mut self,
        prefix: IpNet,
        best: Option<Slot>,
        hops: Option<NextHops>,
    ) {
        let hops = self.hops_index(hops);
        self.list.push(Decision {
            prefix,
            previous: best,
            best,
            hops,
            paths_only: true,
        });
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Decision> {
        self.list.iter()
    }

    /// The next hops of `d` when they are more than its best path's own
    /// next hop (`None`: just that one, or none without a best path).
    pub fn multipath_hops(&self, d: &Decision) -> Option<&NextHops> {
        self.hops.get(d.hops as usize)
    }
}

/// The decision process's outcome for one prefix, by reference.
#[derive(Debug, Default)]
pub(super) struct Chosen {
    pub(super) best: Option<Slot>,
    /// The next hops when they are not just the best path's own (multipath).
    pub(super) hops: Option<NextHops>,
}

/// The next hops to install for a best path `best` whose next-hop set is
/// `hops` when it is more than the best path's own (multipath).
pub(super) fn next_hops(
    hops: Option<&NextHops>,
    best: Option<Slot>,
    routes: &RouteArena,
) -> NextHops {
    match (hops, best) {
        (Some(h), _) => h.clone(),
        (None, Some(b)) => smallvec::smallvec![routes.get(b.route).next_hop],
        (None, None) => NextHops::new(),
    }
}

impl Chosen {
    /// The next hops to install.
    pub(super) fn next_hops(&self, routes: &RouteArena) -> NextHops {
        next_hops(self.hops.as_ref(), self.best, routes)
    }

    /// Whether the route to install or advertise differs from `other`'s
    /// (stale flags aside: a stale route and its fresh re-announcement are
    /// the same route, as [`Path::same_route`] has it).
    pub(super) fn differs(&self, other: &Chosen, routes: &RouteArena) -> bool {
        let best_differs = match (self.best, other.best) {
            (Some(a), Some(b)) => {
                a.path_id != b.path_id
                    || (a.route != b.route && {
                        let (ra, rb) = (routes.get(a.route), routes.get(b.route));
                        !(ra.peer == rb.peer
                            && Attrs::ptr_eq(&ra.attrs, &rb.attrs)
                            && ra.next_hop == rb.next_hop)
                    })
            }
            (None, None) => false,
            _ => true,
        };
        best_differs
            || ((self.hops.is_some() || other.hops.is_some())
                && self.next_hops(routes) != other.next_hops(routes))
    }
}

/// The decision process over one prefix's stored paths.
pub(super) fn decide(
    slots: &[Slot],
    routes: &RouteArena,
    cfg: &RibConfig,
    peers: &[Option<PeerSlot>],
) -> Chosen {
    if let [slot] = slots {
        return Chosen {
            best: Some(*slot),
            hops: None,
        };
    }
    let peer = |i: PeerIndex| peers.get(i.0 as usize)?.as_ref().map(|s| &s.info);
    let all: Vec<Path> = slots
        .iter()
        .map(|s| routes.get(s.route).path(s.path_id))
        .collect();
    let Some((i, next_hops)) = decision::select_index(&all, cfg, peer) else {
        return Chosen::default();
    };
    let own = all[i].next_hop;
    Chosen {
        best: Some(slots[i]),
        hops: (next_hops.as_slice() != [own]).then_some(next_hops),
    }
}

/// [`decide`] with the best path as a [`Path`].
pub(super) fn select(
    slots: &[Slot],
    routes: &RouteArena,
    cfg: &RibConfig,
    peers: &[Option<PeerSlot>],
) -> Selection {
    let chosen = decide(slots, routes, cfg, peers);
    Selection {
        best: chosen.best.map(|b| routes.get(b.route).path(b.path_id)),
        next_hops: chosen.next_hops(routes),
    }
}
