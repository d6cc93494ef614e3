//! A map keyed by prefix, split into shards: the prefix table (prefix ->
//! its paths) and each peer's Adj-RIB-Out are full-table maps.
//!
//! A hash map grows by doubling and, while it rehashes, holds the old and
//! the new bucket array at once: for a full table that transient is the
//! peak of the process's memory. Split into 64 independently growing shards,
//! only 1/64 of the table is ever being copied. The shard is picked from
//! hash bits that the shard's own map does not use for its buckets or its
//! control bytes, so every shard stays evenly loaded.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use super::path::Path;

/// The paths of one prefix; most prefixes have one, kept inline.
pub type Paths = SmallVec<[Path; 1]>;

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

type Shard<V> = HashMap<IpNet, V, FxBuildHasher>;

/// The prefix table: every path of every prefix.
pub type PrefixTable = PrefixMap<Paths>;

#[derive(Debug)]
pub struct PrefixMap<V> {
    shards: Vec<Shard<V>>,
    len: usize,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
        }
    }
}

impl<V> PrefixMap<V> {
    fn shard_of(prefix: &IpNet) -> usize {
        // hashbrown takes the bucket from the hash's low bits and the
        // control byte from its top 7: re-mix the hash (Fibonacci hashing)
        // and take the shard from the top of that, unrelated to both.
        let h = FxBuildHasher.hash_one(prefix);
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SHARD_BITS)) as usize
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        self.shards[Self::shard_of(prefix)].get(prefix)
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        self.shards[Self::shard_of(prefix)].get_mut(prefix)
    }

    /// The value of `prefix`, a default one created if there is none.
    pub fn entry(&mut self, prefix: IpNet) -> &mut V
    where
        V: Default,
    {
        let shard = &mut self.shards[Self::shard_of(&prefix)];
        match shard.entry(prefix) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.len += 1;
                e.insert(V::default())
            }
        }
    }

    /// Set the value of `prefix`, returning the one it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        let old = self.shards[Self::shard_of(&prefix)].insert(prefix, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn contains_key(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    /// Take every entry out, leaving the map empty.
    pub fn drain(&mut self) -> impl Iterator<Item = (IpNet, V)> + '_ {
        self.len = 0;
        self.shards.iter_mut().flat_map(|s| s.drain())
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        let removed = self.shards[Self::shard_of(prefix)].remove(prefix);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &IpNet> {
        self.shards.iter().flat_map(|s| s.keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::PeerIndex;
    use std::sync::Arc;

    fn path() -> Path {
        Path {
            peer: PeerIndex(1),
            path_id: 0,
            attrs: Arc::new(Default::default()),
            next_hop: "10.0.0.1".parse().unwrap(),
            stale: false,
        }
    }

    #[test]
    fn counts_spreads_and_removes() {
        let mut t = PrefixTable::default();
        let mut m = PrefixMap::<u32>::default();
        for i in 0..4096u32 {
            let p: IpNet = format!("10.{}.{}.0/24", i >> 8, i & 255).parse().unwrap();
            t.entry(p).push(path());
            t.entry(p); // an existing entry is not counted twice
        }
        assert_eq!(t.len(), 4096);
        assert_eq!(t.iter().count(), 4096);
        // Every shard gets a share (64 shards, 64 on average).
        assert!(t.shards.iter().all(|s| s.len() > 16), "uneven shards");
        let p: IpNet = "10.0.5.0/24".parse().unwrap();
        assert_eq!(t.get(&p).map(|v| v.len()), Some(1));
        assert!(t.remove(&p).is_some());
        assert!(t.remove(&p).is_none());
        assert_eq!(t.len(), 4095);
        assert!(t.get(&p).is_none());
        assert_eq!(m.insert(p, 1), None);
        assert_eq!(m.insert(p, 2), Some(1));
        assert_eq!(m.len(), 1);
        assert_eq!(m.drain().collect::<Vec<_>>(), [(p, 2)]);
        assert!(m.is_empty() && m.get(&p).is_none());
    }
}
