//! Adding many new prefixes on two threads: the common case of a table
//! arriving, whose UPDATEs carry thousands of prefixes each, none in the
//! table yet, all with one path.
//!
//! The prefix table splits in two halves that share nothing
//! ([`PrefixMap::halves_mut`], by the top bit of a prefix's hash); a second
//! thread adds the prefixes of one half while the caller's thread adds the
//! other's. A load is bound by the table's memory (cache misses, growth,
//! page faults), so two CPUs take about half the time: the prefix table
//! alone took 26–28 ms for 1M prefixes on two threads against 53–58 ms on
//! one (2026-11-24, this project's 2-CPU VM). The whole receive of 1M
//! prefixes by `manul-bgpd` went from 0.44–0.58× BIRD's time to 0.40–0.52×
//! (`bench/RESULTS.md`).
//!
//! Only the simple case is done here: a prefix not in the table, with a
//! path that packs ([`Paths::pack`]), of the announcement's family, not
//! removed earlier in the batch. Everything else (a prefix already present,
//! a repeated prefix, ...) is left, in order, to the RIB's one-at-a-time
//! path. The outcome does not depend on the threads' timing: the halves are
//! disjoint and their results are merged in a fixed order.

use std::collections::HashSet;
use std::sync::{Barrier, OnceLock};

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::decided::Decided;
use super::paths::{Paths, Slot};
use super::prefix_map::{Half, Located, PrefixMap};
use super::route::RouteId;
use super::table::PREFETCH_AHEAD;
use crate::types::Family;
use crate::wire::Nlri;

/// Announcements with fewer prefixes than this are added on one thread
/// (starting a thread costs tens of microseconds, the time to add a few
/// hundred prefixes).
pub(super) const BULK_MIN: usize = 4096;

/// What [`add_new`] did.
#[derive(Debug, Default)]
pub(super) struct Added {
    /// How many prefixes were added (each holds a reference to the route).
    pub count: u32,
    /// The indexes of the prefixes left for the caller, ascending.
    pub left: Vec<usize>,
}

/// What one announcement's prefixes share.
#[derive(Clone, Copy)]
pub(super) struct Announced<'a> {
    pub nlri: &'a [Nlri],
    pub family: Family,
    pub route: RouteId,
    /// The RIB batch marking what it touches.
    pub batch: u32,
    /// Prefixes removed earlier in the batch (never added here).
    pub gone: &'a HashSet<IpNet, FxBuildHasher>,
}

/// Add the prefixes of `a` that are new to `table`, on two threads, and
/// record them in `decided` (as decided: no previous best, the one path
/// best). `spare` is the other thread's list of decisions, kept by the
/// caller for its memory (left empty).
///
/// Each thread first sorts half of the prefixes by the half of the table
/// they belong in, then adds those of its own half that both found.
pub(super) fn add_new(
    table: &mut PrefixMap<Paths>,
    a: Announced<'_>,
    decided: &mut Decided,
    spare: &mut Decided,
) -> Added {
    let [low, high] = table.halves_mut();
    let mid = a.nlri.len() / 2;
    let sorted: [OnceLock<Sorted>; 2] = Default::default();
    let barrier = Barrier::new(2);
    let (mut first, second) = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("bgp-rib-load".into())
            .spawn_scoped(s, || {
                let mut met = Meeting::new(&barrier);
                let _ = sorted[1].set(sort(a, mid..a.nlri.len()));
                met.wait();
                let (x, y) = (sorted[0].get(), sorted[1].get());
                let mine = [x.map_or(&[][..], |x| &x[1]), y.map_or(&[][..], |y| &y[1])];
                add_half(high, mine, a, spare)
            });
        match other {
            Ok(t) => {
                let mut met = Meeting::new(&barrier);
                let _ = sorted[0].set(sort(a, 0..mid));
                met.wait();
                let (x, y) = (sorted[0].get(), sorted[1].get());
                let mine = [x.map_or(&[][..], |x| &x[0]), y.map_or(&[][..], |y| &y[0])];
                let first = add_half(low, mine, a, decided);
                let second = t.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                (first, second)
            }
            // No thread to be had: one half here, the other left to the caller.
            Err(_) => {
                let [own, other] = sort(a, 0..a.nlri.len());
                let first = add_half(low, [&own, &[]], a, decided);
                let left = other.iter().map(|&i| i as usize).collect();
                (first, Added { count: 0, left })
            }
        }
    });
    decided.append(spare);
    first.count += second.count;
    first.left = merge(&first.left, &second.left);
    first
}

/// The two threads' meeting point between sorting and adding. A thread
/// that panics before it still keeps the appointment (on unwinding), so
/// the other never waits forever; the panic then reaches the caller.
struct Meeting<'a> {
    barrier: &'a Barrier,
    met: bool,
}

impl<'a> Meeting<'a> {
    fn new(barrier: &'a Barrier) -> Self {
        Self {
            barrier,
            met: false,
        }
    }

    fn wait(&mut self) {
        if !self.met {
            self.met = true;
            self.barrier.wait();
        }
    }
}

impl Drop for Meeting<'_> {
    fn drop(&mut self) {
        self.wait();
    }
}

/// Indexes of prefixes, by the half of the table each belongs in.
type Sorted = [Vec<u32>; 2];

fn sort(a: Announced<'_>, range: std::ops::Range<usize>) -> Sorted {
    let mut out: Sorted = Default::default();
    for i in range {
        if let Ok(index) = u32::try_from(i) {
            out[locate(&a.nlri[i]).half()].push(index);
        }
    }
    out
}

fn locate(n: &Nlri) -> Located {
    PrefixMap::<Paths>::locate(&n.prefix)
}

/// Add those of the prefixes of `a` at the indexes `mine` (two ascending
/// lists, one after the other) that are new, to `half`.
fn add_half(
    mut half: Half<'_, Paths>,
    mine: [&[u32]; 2],
    a: Announced<'_>,
    decided: &mut Decided,
) -> Added {
    let count = mine[0].len() + mine[1].len();
    let index = |j: usize| {
        mine[0]
            .get(j)
            .or_else(|| mine[1].get(j - mine[0].len()))
            .map(|&i| i as usize)
    };
    let mut out = Added::default();
    decided.reserve(count);
    // Each prefix is located once, when prefetched, and kept until its turn:
    // the lookahead of the one-at-a-time path (`Rib::announce`), written out
    // again because a helper shared by both measured 10-15 % slower.
    let mut ring: [Option<Located>; PREFETCH_AHEAD] = [None; PREFETCH_AHEAD];
    for (j, at) in ring.iter_mut().enumerate() {
        if let Some(i) = index(j) {
            let l = locate(&a.nlri[i]);
            half.prefetch(&l);
            *at = Some(l);
        }
    }
    for j in 0..count {
        let Some(i) = index(j) else { break };
        let n = &a.nlri[i];
        let cell = &mut ring[j % PREFETCH_AHEAD];
        let at = cell.take().unwrap_or_else(|| locate(n));
        if let Some(ahead) = index(j + PREFETCH_AHEAD) {
            let l = locate(&a.nlri[ahead]);
            half.prefetch(&l);
            *cell = Some(l);
        }
        let slot = Slot {
            route: a.route,
            path_id: n.path_id.unwrap_or(0),
        };
        let simple =
            Family::of(&n.prefix) == a.family && (a.gone.is_empty() || !a.gone.contains(&n.prefix));
        let Some(mut paths) = Paths::pack(slot).filter(|_| simple) else {
            out.left.push(i);
            continue;
        };
        paths.set_batch(a.batch);
        let mut added = false;
        half.upsert_at(at, |present| {
            added = present.is_none();
            added.then_some(paths)
        });
        if added {
            decided.push(n.prefix, None, Some(slot), None);
            out.count += 1;
        } else {
            out.left.push(i);
        }
    }
    out
}

/// Two ascending lists as one.
fn merge(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::{Barrier, Meeting, merge};

    #[test]
    fn a_thread_that_panics_before_the_meeting_still_keeps_it() {
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let _met = Meeting::new(&barrier);
                panic!("before the meeting");
            });
            // Returns (the test would hang otherwise).
            Meeting::new(&barrier).wait();
            assert!(t.join().is_err());
        });
    }

    #[test]
    fn merging_keeps_the_order() {
        assert_eq!(merge(&[1, 4, 9], &[0, 2, 10, 11]), [0, 1, 2, 4, 9, 10, 11]);
        assert_eq!(merge(&[], &[3]), [3]);
    }
}
