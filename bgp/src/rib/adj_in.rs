//! Adj-RIB-In (RFC 4271 §3.2): which (prefix, path ID) keys a peer has a
//! post-import-policy path for. The paths themselves live once in the
//! shared prefix table ([`crate::rib::Rib`]); this index makes a peer's
//! routes reachable without scanning the whole table (peer down, graceful
//! restart stale marking and sweeping, RFC 4724 §4.2).

use std::collections::HashSet;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use crate::types::Family;

/// A route key: prefix and ADD-PATH path ID (0 without ADD-PATH).
pub type RouteKey = (IpNet, u32);

/// One peer's Adj-RIB-In index.
#[derive(Debug, Default, Clone)]
pub struct AdjRibIn {
    keys: HashSet<RouteKey, FxBuildHasher>,
}

impl AdjRibIn {
    pub fn insert(&mut self, key: RouteKey) {
        self.keys.insert(key);
    }

    pub fn remove(&mut self, key: &RouteKey) -> bool {
        self.keys.remove(key)
    }

    pub fn contains(&self, key: &RouteKey) -> bool {
        self.keys.contains(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &RouteKey> {
        self.keys.iter()
    }

    /// The keys of one family.
    pub fn of_family(&self, family: Family) -> Vec<RouteKey> {
        self.keys
            .iter()
            .filter(|(p, _)| Family::of(p) == family)
            .copied()
            .collect()
    }

    /// Empty the index, returning what it held.
    pub fn take(&mut self) -> Vec<RouteKey> {
        self.keys.drain().collect()
    }
}
