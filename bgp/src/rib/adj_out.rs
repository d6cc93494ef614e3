//! Adj-RIB-Out (RFC 4271 §3.2, §9.2): what was advertised to one peer, and
//! the minimal announce/withdraw diff when best paths change, grouped by
//! shared attributes and next hop so the encoder packs many prefixes into
//! each UPDATE.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::export::ExportCache;
use super::interner::Attrs;
use super::path::BestChange;
use super::peer::PeerIndex;
use super::prefix_map::PrefixMap;
use super::table::Rib;
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

type Sent = (Attrs, IpAddr);

/// One peer's Adj-RIB-Out.
#[derive(Debug)]
pub struct AdjRibOut {
    peer: PeerIndex,
    sent: PrefixMap<Sent>,
}

impl AdjRibOut {
    pub fn new(peer: PeerIndex) -> Self {
        Self {
            peer,
            sent: PrefixMap::default(),
        }
    }

    pub fn peer(&self) -> PeerIndex {
        self.peer
    }

    /// Number of prefixes advertised.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// What was advertised for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<(&Attrs, IpAddr)> {
        self.sent.get(prefix).map(|(a, nh)| (a, *nh))
    }

    /// Fold best-path changes in; return only what changed for this peer.
    pub fn apply(&mut self, rib: &mut Rib, changes: &[BestChange]) -> OutUpdate {
        let mut cache = ExportCache::default();
        let mut before: HashMap<IpNet, Option<Sent>, FxBuildHasher> = HashMap::default();
        let mut order = Vec::new();
        for change in changes {
            let want = change
                .best
                .as_ref()
                .and_then(|best| rib.export_route(self.peer, &change.prefix, best, &mut cache));
            let old = match want {
                Some(w) => self.sent.insert(change.prefix, w),
                None => match self.sent.remove(&change.prefix) {
                    Some(old) => Some(old),
                    // Neither sent before nor wanted now (e.g. the peer the
                    // route came from): nothing to track for this peer.
                    None if !before.contains_key(&change.prefix) => continue,
                    None => None,
                },
            };
            match before.entry(change.prefix) {
                Entry::Vacant(e) => {
                    e.insert(old);
                    order.push(change.prefix);
                }
                Entry::Occupied(_) => {
                    if let Some(old) = old {
                        rib.release(old.0);
                    }
                }
            }
        }
        let mut out = OutUpdate::default();
        let mut groups: HashMap<(usize, IpAddr, Family), usize, FxBuildHasher> = HashMap::default();
        for prefix in order {
            let old = before.remove(&prefix).flatten();
            match (self.sent.get(&prefix), &old) {
                (None, None) => {}
                (None, Some(_)) => out.withdrawn.push(prefix),
                (Some((a, nh)), old) => {
                    let same = old
                        .as_ref()
                        .is_some_and(|(oa, onh)| Attrs::ptr_eq(a, oa) && nh == onh);
                    if !same {
                        let family = Family::of(&prefix);
                        let key = (Attrs::as_ptr(a) as usize, *nh, family);
                        let i = *groups.entry(key).or_insert_with(|| {
                            out.announce.push(OutGroup {
                                family,
                                attrs: Attrs::clone(a),
                                next_hop: *nh,
                                prefixes: Vec::new(),
                            });
                            out.announce.len() - 1
                        });
                        out.announce[i].prefixes.push(prefix);
                    }
                }
            }
            if let Some((a, _)) = old {
                rib.release(a);
            }
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out
    }

    /// Full resynchronisation against the whole Loc-RIB (session up, route
    /// refresh): announces what is missing or different, withdraws what
    /// the Loc-RIB no longer has.
    pub fn sync(&mut self, rib: &mut Rib) -> OutUpdate {
        let mut changes = rib.loc_rib();
        changes.extend(
            self.sent
                .keys()
                .filter(|p| rib.paths(p).is_empty())
                .map(|&prefix| BestChange {
                    prefix,
                    best: None,
                    next_hops: Vec::new(),
                }),
        );
        self.apply(rib, &changes)
    }

    /// The session went down: forget what was advertised.
    pub fn clear(&mut self, rib: &mut Rib) {
        for (_, (a, _)) in self.sent.drain() {
            rib.release(a);
        }
    }
}
