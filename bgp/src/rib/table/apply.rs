//! Applying changes to the table: announcements (a large one's new
//! prefixes on two threads, [`crate::rib::bulk`]), and the insert and
//! removal of one path, each recorded in the open batch.

use std::net::IpAddr;

use ipnet::IpNet;

use super::batch::Touched;
use super::{PREFETCH_AHEAD, Rib};
use crate::policy::{Outcome, PolicyContext, Verdict};
use crate::rib::bulk;
use crate::rib::decision::{self, Ineligible};
use crate::rib::interner::Attrs;
use crate::rib::path::RouteKey;
use crate::rib::paths::{Paths, Slot};
use crate::rib::peer::{PeerIndex, PeerKind};
use crate::rib::prefix_map::{Located, PrefixMap};
use crate::rib::route::RouteId;
use crate::types::Family;
use crate::wire::PathAttributes;

impl Rib {
    pub(super) fn announce(
        &mut self,
        peer: PeerIndex,
        mut attrs: PathAttributes,
        next_hop: IpAddr,
        nlri: &[crate::wire::Nlri],
    ) {
        let Some(slot) = self.slot(peer) else { return };
        let info = &slot.info;
        let kind = info.kind();
        let (session_as, allow_own_as) = (info.local_as, info.allow_own_as);
        let mut by_prefix = slot.import.by_prefix();
        let filter = by_prefix && slot.import.decides_only();
        // The next hop lives in the route so that attributes share better.
        attrs.next_hop = None;
        // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored.
        if kind == PeerKind::Ebgp {
            attrs.local_pref = None;
        }
        let verdict: Result<(), Ineligible> =
            decision::check_loops(&attrs, &self.cfg, session_as, allow_own_as);
        if verdict.is_err() {
            // Excluded from the decision process (RFC 4271 §9.1.2, RFC 4456
            // §8): treated as a withdrawal of what the peer had before.
            for n in nlri {
                self.remove(peer, (n.prefix, n.path_id.unwrap_or(0)));
            }
            return;
        }
        let ctx = PolicyContext {
            local_as: session_as,
            peer_kind: kind,
            source: kind.into(),
            reflected: false,
        };
        // A route filter (an import policy that only accepts or rejects,
        // by prefix): the rejected prefixes are withdrawn here, and the
        // accepted ones go on as under a policy that accepts them all
        // unchanged, in bulk when they are many.
        let kept;
        let nlri = if filter {
            kept = self.filter_nlri(peer, &attrs, &ctx, nlri);
            by_prefix = false;
            kept.as_slice()
        } else {
            nlri
        };
        if nlri.is_empty() {
            return;
        }
        let base = self.interner.intern(attrs);
        // A large announcement's new prefixes go in on two threads; the
        // rest (if any) one at a time, below.
        let left;
        let nlri = if nlri.len() >= bulk::BULK_MIN && !by_prefix && self.mostly_new(nlri) {
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

    /// The prefixes of an announcement that `peer`'s import filter
    /// accepts; those it rejects are withdrawn (what the peer had before
    /// for them goes, RFC 4271 §9.1.1: a route import policy rejects is
    /// not in the Adj-RIB-In).
    fn filter_nlri(
        &mut self,
        peer: PeerIndex,
        attrs: &PathAttributes,
        ctx: &PolicyContext,
        nlri: &[crate::wire::Nlri],
    ) -> Vec<crate::wire::Nlri> {
        let mut kept = Vec::with_capacity(nlri.len());
        let mut rejected = Vec::new();
        if let Some(slot) = self.slot(peer) {
            for n in nlri {
                match slot.import.decide(&n.prefix, attrs, ctx) {
                    Some(Verdict::Reject) => rejected.push((n.prefix, n.path_id.unwrap_or(0))),
                    _ => kept.push(*n),
                }
            }
        }
        for key in rejected {
            self.remove(peer, key);
        }
        kept
    }

    /// Whether an announcement's prefixes look new to the table: none of
    /// a sample of them, spread over it, is there. A table arriving is new;
    /// a route refresh or a re-announcement is not, and would only be
    /// looked up twice by the bulk add ([`bulk`]) for nothing.
    fn mostly_new(&self, nlri: &[crate::wire::Nlri]) -> bool {
        const SAMPLES: usize = 8;
        let step = (nlri.len() / SAMPLES).max(1);
        !nlri
            .iter()
            .step_by(step)
            .take(SAMPLES)
            .any(|n| self.table.contains_key(&n.prefix))
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
    pub(super) fn insert(&mut self, at: Located, prefix: IpNet, peer: PeerIndex, slot: Slot) {
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

    pub(super) fn remove(&mut self, peer: PeerIndex, key: RouteKey) {
        self.remove_where(peer, key, false);
    }

    /// Remove `peer`'s path `key` (only if stale, with `only_stale`).
    pub(super) fn remove_where(&mut self, peer: PeerIndex, key: RouteKey, only_stale: bool) {
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
}
