//! Adj-RIB-Out (RFC 4271 §3.2, §9.2): what to send one peer when best paths
//! change, grouped by shared attributes and next hop so the encoder packs
//! many prefixes into each UPDATE.
//!
//! Nothing per prefix is stored: what a peer was sent for a prefix is, by
//! construction, the export of the prefix's previous best path, so each
//! change is exported twice (old and new best) and only a difference is
//! sent. RFC 4271 §3.2 lets an implementation keep the Adj-RIBs-Out in any
//! form; this one costs no memory per prefix and peer, which is what lets
//! a full table pass through at the size of one table.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::decided::Decided;
use super::export::ExportCache;
use super::interner::Attrs;
use super::path::Path;
use super::paths::Slot;
use super::peer::PeerIndex;
use super::table::Rib;
use crate::policy::Policy;
use crate::types::Family;

/// Prefixes to announce with the same attributes and next hop. The
/// attributes hold no NEXT_HOP: the encoder puts `next_hop` in NEXT_HOP or
/// MP_REACH_NLRI as the family requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutGroup {
    pub family: Family,
    pub attrs: Attrs,
    pub next_hop: IpAddr,
    pub prefixes: Vec<IpNet>,
}

/// What to send to a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutUpdate {
    pub withdrawn: Vec<IpNet>,
    pub announce: Vec<OutGroup>,
}

impl OutUpdate {
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announce.is_empty()
    }
}

/// Collects announcements into groups of shared attributes and next hop.
#[derive(Default)]
struct Builder {
    out: OutUpdate,
    groups: HashMap<(usize, IpAddr, Family), usize, FxBuildHasher>,
    /// The group of the last announcement (consecutive prefixes mostly
    /// share one), to skip the lookup.
    last: Option<((usize, IpAddr, Family), usize)>,
}

impl Builder {
    fn announce(&mut self, prefix: IpNet, attrs: &Attrs, next_hop: IpAddr) {
        let family = Family::of(&prefix);
        let key = (Attrs::as_ptr(attrs) as usize, next_hop, family);
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => {
                let announce = &mut self.out.announce;
                let i = *self.groups.entry(key).or_insert_with(|| {
                    announce.push(OutGroup {
                        family,
                        attrs: Attrs::clone(attrs),
                        next_hop,
                        prefixes: Vec::new(),
                    });
                    announce.len() - 1
                });
                self.last = Some((key, i));
                i
            }
        };
        self.out.announce[i].prefixes.push(prefix);
    }
}

/// One peer's Adj-RIB-Out: a count of what it holds from us.
#[derive(Debug)]
pub struct AdjRibOut {
    peer: PeerIndex,
    advertised: usize,
}

type Exported = Option<(Attrs, IpAddr)>;

fn same(a: &Exported, b: &Exported) -> bool {
    match (a, b) {
        (Some((aa, an)), Some((ba, bn))) => Attrs::ptr_eq(aa, ba) && an == bn,
        (None, None) => true,
        _ => false,
    }
}

impl AdjRibOut {
    pub fn new(peer: PeerIndex) -> Self {
        Self {
            peer,
            advertised: 0,
        }
    }

    /// Number of prefixes advertised.
    pub fn len(&self) -> usize {
        self.advertised
    }

    pub fn is_empty(&self) -> bool {
        self.advertised == 0
    }

    /// What this peer gets for one prefix whose best path went from `old`
    /// to `new` (`old_policy`: the export policy `old` was sent under, when
    /// it is not the current one).
    fn diff(
        &mut self,
        rib: &mut Rib,
        cache: &mut ExportCache,
        out: &mut Builder,
        prefix: IpNet,
        (old, new): (Option<&Path>, Option<&Path>),
        old_policy: Option<&Policy>,
    ) {
        let peer = self.peer;
        let was = old.and_then(|p| rib.export_route_with(peer, &prefix, p, cache, old_policy));
        let now = new.and_then(|p| rib.export_route(peer, &prefix, p, cache));
        self.record(rib, out, prefix, was, now);
    }

    /// Record what changes for `prefix`: it was sent `was`, it gets `now`.
    fn record(
        &mut self,
        rib: &mut Rib,
        out: &mut Builder,
        prefix: IpNet,
        was: Exported,
        now: Exported,
    ) {
        match (&was, &now) {
            (None, None) => {}
            (Some(_), None) => {
                out.out.withdrawn.push(prefix);
                self.advertised = self.advertised.saturating_sub(1);
            }
            (None, Some((a, nh))) => {
                out.announce(prefix, a, *nh);
                self.advertised += 1;
            }
            (Some(_), Some((a, nh))) => {
                if !same(&was, &now) {
                    out.announce(prefix, a, *nh);
                }
            }
        }
        for (a, _) in was.into_iter().chain(now) {
            rib.release(a);
        }
    }

    /// What a batch of decisions ([`Rib::take_decided`], each prefix at
    /// most once) means for this peer.
    pub fn apply(&mut self, rib: &mut Rib, decided: &Decided) -> OutUpdate {
        let mut cache = ExportCache::default();
        let mut out = Builder::default();
        let peer = self.peer;
        let export = |rib: &mut Rib, cache: &mut ExportCache, prefix: &IpNet, slot: Slot| {
            let route = rib.route(slot);
            // Never back to the peer it came from (the common case of a
            // full table arriving): decided without making the path.
            if route.peer == peer {
                return None;
            }
            let path = route.path(slot.path_id);
            rib.export_route(peer, prefix, &path, cache)
        };
        for d in decided.iter() {
            let was = d
                .previous
                .and_then(|s| export(rib, &mut cache, &d.prefix, s));
            let now = d.best.and_then(|s| export(rib, &mut cache, &d.prefix, s));
            if was.is_none() && now.is_none() {
                // Nothing for this peer (a route it sent us itself).
                continue;
            }
            self.record(rib, &mut out, d.prefix, was, now);
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out.out
    }

    /// Advertise the whole Loc-RIB: to a peer that holds nothing from us
    /// (`previous` is `None`: session up, route refresh), or to one whose
    /// export policy was `previous` until now (only the difference goes).
    pub fn sync(&mut self, rib: &mut Rib, previous: Option<&Policy>) -> OutUpdate {
        let mut cache = ExportCache::default();
        let mut out = Builder::default();
        if previous.is_none() {
            self.advertised = 0;
        }
        for prefix in rib.prefixes() {
            let Some(best) = rib.best(&prefix) else {
                continue;
            };
            let old = previous.map(|_| &best);
            self.diff(
                rib,
                &mut cache,
                &mut out,
                prefix,
                (old, Some(&best)),
                previous,
            );
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out.out
    }

    /// The session went down: it holds nothing from us any more.
    pub fn clear(&mut self) {
        self.advertised = 0;
    }
}
