//! A RIB batch: what the changes applied since the last take touched, and
//! taking it — the decision process over those prefixes, reported by
//! reference ([`Decided`]) — and settling it once advertised (letting go
//! of the routes, attribute handles and peers it dropped).

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::Rib;
use crate::rib::decided::{Chosen, Decided, decide, next_hops};
use crate::rib::path::BestChange;
use crate::rib::paths::{MARK_LIMIT, PathList, Slot};
use crate::rib::peer::PeerIndex;
use crate::rib::route::Route;

/// The prefixes changed since the last [`Rib::take_changes`]: those it
/// added, already decided, and the others with their paths before the
/// first change and after the last.
#[derive(Debug)]
pub(super) struct Batch {
    /// This batch's number, marked in the [`Paths`] of what it touches.
    pub(super) number: u32,
    /// Prefixes the batch added, decided as they were added: the common
    /// case of a table arriving, one path each, so previous best none and
    /// best that path. Nothing else is kept for them (no [`Touched`]).
    pub(super) decided: Decided,
    /// The other touched prefixes (those that had paths), in first-touch
    /// order.
    pub(super) touched: Vec<Touched>,
    /// Prefixes touched again after their first touch (their `after` in
    /// `touched` is out of date; rare).
    pub(super) retouched: Vec<IpNet>,
    /// Touched prefixes that lost their last path (and their mark with it).
    pub(super) gone: HashSet<IpNet, FxBuildHasher>,
    /// Peers to forget once the changes are taken and settled.
    pub(super) forget: Vec<PeerIndex>,
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
pub(super) struct Touched {
    pub(super) prefix: IpNet,
    /// The prefix's paths before the change (`None`: it had none). Routes
    /// dropped during the batch stay readable until it is taken.
    pub(super) before: Option<PathList>,
    /// The prefix's paths after the change (`None`: it has none left).
    pub(super) after: Option<PathList>,
}

/// A batch that touched or removed more than this many prefixes gives its
/// lists' memory back instead of keeping it for the next.
const KEEP_CAPACITY: usize = 1 << 17;

impl Rib {
    /// How many prefixes the changes not yet taken touched.
    pub fn pending(&self) -> usize {
        self.batch.decided.len() + self.batch.touched.len()
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
            } else if self.track_paths {
                // ADD-PATH peers see more than the best path.
                out.push_paths_only(t.prefix, after.best, after.hops);
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
            .filter(|d| !d.paths_only)
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
            *next = Decided::reuse(list);
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
}
