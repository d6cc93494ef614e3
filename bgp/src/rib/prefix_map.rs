//! The prefix table's storage: a map keyed by prefix, compact and split
//! into shards.
//!
//! Memory is the point. An IPv4 prefix is stored as one `u64` (address and
//! length), an IPv6 one as `(u128, u8)`, instead of the 18-byte `IpNet`;
//! with the RIB's 8-byte values ([`super::paths`]) a full IPv4 table is 16
//! bytes a bucket.
//!
//! Speed is the other point: the shards are open-addressing tables whose
//! lookups can be prefetched ([`PrefixMap::prefetch`]) and whose growth
//! streams.
//!
//! A hash table grows by doubling and, while it rehashes, holds the old and
//! the new bucket array at once: for a full table that transient would be
//! the peak of the process's memory. Split into 64 independently growing
//! shards, only 1/64 of the table is ever being copied. The shard is the
//! top bits of the key's hash; each shard places keys by the bits below.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::open_table::{OpenTable, TableKey, mix};

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// One key type's map, in shards.
#[derive(Debug)]
struct Sharded<K, V> {
    shards: Vec<OpenTable<K, V, SHARD_BITS>>,
}

impl<K: TableKey, V: Default> Default for Sharded<K, V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| OpenTable::default()).collect(),
        }
    }
}

impl<K: TableKey, V: Default> Sharded<K, V> {
    /// The shard of a key with this hash (its top bits).
    fn map(&self, hash: u64) -> &OpenTable<K, V, SHARD_BITS> {
        &self.shards[(hash >> (64 - SHARD_BITS)) as usize]
    }

    fn map_mut(&mut self, hash: u64) -> &mut OpenTable<K, V, SHARD_BITS> {
        &mut self.shards[(hash >> (64 - SHARD_BITS)) as usize]
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    fn len(&self) -> usize {
        self.shards.iter().map(OpenTable::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.shards.iter().all(OpenTable::is_empty)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.shards.iter_mut().flat_map(|s| s.values_mut())
    }
}

/// An IPv4 prefix: address above, length in the low byte. No prefix has
/// length 255, which marks an empty bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V4Key(u64);

impl TableKey for V4Key {
    const EMPTY: Self = V4Key(u64::MAX);
    fn hash(&self) -> u64 {
        mix(self.0)
    }
}

/// An IPv6 prefix: address and length (255 marks an empty bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V6Key(u128, u8);

impl TableKey for V6Key {
    const EMPTY: Self = V6Key(0, u8::MAX);
    fn hash(&self) -> u64 {
        // Fold the address into 64 bits, then mix the length in.
        let folded = (self.0 as u64) ^ ((self.0 >> 64) as u64).rotate_left(29);
        mix(folded ^ (u64::from(self.1) << 56))
    }
}

fn v4_key(n: &Ipv4Net) -> V4Key {
    V4Key((u64::from(u32::from(n.addr())) << 8) | u64::from(n.prefix_len()))
}

fn v4_net(k: &V4Key) -> IpNet {
    // The key was built from a valid prefix length.
    let addr = Ipv4Addr::from((k.0 >> 8) as u32);
    IpNet::V4(Ipv4Net::new(addr, (k.0 & 0xff) as u8).unwrap_or_default())
}

fn v6_key(n: &Ipv6Net) -> V6Key {
    V6Key(u128::from(n.addr()), n.prefix_len())
}

fn v6_net(k: &V6Key) -> IpNet {
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(k.0), k.1).unwrap_or_default())
}

/// One half of a [`PrefixMap`]'s shards, for both families
/// ([`PrefixMap::halves_mut`]): the prefixes whose hash has top bit 0, or 1.
/// The two halves share nothing, so two threads can change them at once.
#[derive(Debug)]
pub struct Half<'a, V> {
    v4: &'a mut [OpenTable<V4Key, V, SHARD_BITS>],
    v6: &'a mut [OpenTable<V6Key, V, SHARD_BITS>],
}

/// The shard of a hash within its half.
fn half_shard(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize & (SHARDS / 2 - 1)
}

impl<V: Default> Half<'_, V> {
    /// [`PrefixMap::upsert_at`] of a prefix in this half.
    pub fn upsert_at(&mut self, at: Located, f: impl FnOnce(Option<&mut V>) -> Option<V>) {
        match at.0 {
            Where::V4(k, h) => self.v4[half_shard(h)].upsert(k, h, f),
            Where::V6(k, h) => self.v6[half_shard(h)].upsert(k, h, f),
        };
    }

    /// [`PrefixMap::prefetch`] of a prefix in this half.
    #[inline]
    pub fn prefetch(&self, at: &Located) {
        match at.0 {
            Where::V4(_, h) => self.v4[half_shard(h)].prefetch(h),
            Where::V6(_, h) => self.v6[half_shard(h)].prefetch(h),
        }
    }
}

impl Located {
    /// Which half of the map holds the prefix (0 or 1).
    pub fn half(&self) -> usize {
        let (Where::V4(_, h) | Where::V6(_, h)) = self.0;
        (h >> 63) as usize
    }
}

/// A map keyed by prefix (both families).
#[derive(Debug)]
pub struct PrefixMap<V> {
    v4: Sharded<V4Key, V>,
    v6: Sharded<V6Key, V>,
}

impl<V: Default> Default for PrefixMap<V> {
    fn default() -> Self {
        Self {
            v4: Sharded::default(),
            v6: Sharded::default(),
        }
    }
}

/// A prefix's table key with its hash, computed once for a prefetch and
/// the lookup that follows it ([`PrefixMap::locate`]).
#[derive(Debug, Clone, Copy)]
pub struct Located(Where);

#[derive(Debug, Clone, Copy)]
enum Where {
    V4(V4Key, u64),
    V6(V6Key, u64),
}

/// Run `$body` with `$map` bound to the shard map holding the located
/// prefix `$at`, `$key` to its key and `$hash` to its hash.
macro_rules! with_shard {
    ($self:ident . $get:ident, $at:expr, |$map:ident, $key:ident, $hash:ident| $body:expr) => {
        match $at.0 {
            Where::V4($key, $hash) => {
                let $map = $self.v4.$get($hash);
                $body
            }
            Where::V6($key, $hash) => {
                let $map = $self.v6.$get($hash);
                $body
            }
        }
    };
}

impl<V: Default> PrefixMap<V> {
    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// `prefix`'s key and hash.
    #[inline]
    pub fn locate(prefix: &IpNet) -> Located {
        Located(match prefix {
            IpNet::V4(n) => {
                let k = v4_key(n);
                Where::V4(k, k.hash())
            }
            IpNet::V6(n) => {
                let k = v6_key(n);
                Where::V6(k, k.hash())
            }
        })
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        let at = Self::locate(prefix);
        with_shard!(self.map, at, |m, k, h| m.get(&k, h))
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        self.get_mut_at(Self::locate(prefix))
    }

    /// [`Self::get_mut`] of a located prefix.
    pub fn get_mut_at(&mut self, at: Located) -> Option<&mut V> {
        with_shard!(self.map_mut, at, |m, k, h| m.get_mut(&k, h))
    }

    /// Look `prefix` up once: `f` gets its value to change in place, or
    /// `None` when there is none, and then returns the value to insert (or
    /// `None` to insert nothing).
    pub fn upsert(&mut self, prefix: &IpNet, f: impl FnOnce(Option<&mut V>) -> Option<V>) {
        self.upsert_at(Self::locate(prefix), f);
    }

    /// [`Self::upsert`] of a located prefix.
    pub fn upsert_at(&mut self, at: Located, f: impl FnOnce(Option<&mut V>) -> Option<V>) {
        with_shard!(self.map_mut, at, |m, k, h| m.upsert(k, h, f));
    }

    /// Start fetching the memory a lookup of a located prefix will read (a
    /// hint: a caller walking many prefixes prefetches a few ahead).
    #[inline]
    pub fn prefetch(&self, at: &Located) {
        with_shard!(self.map, at, |m, _k, h| m.prefetch(h));
    }

    /// Set the value of `prefix`, returning the one it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        let at = Self::locate(&prefix);
        with_shard!(self.map_mut, at, |m, k, h| m.insert(k, h, value))
    }

    pub fn contains_key(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        self.remove_at(Self::locate(prefix))
    }

    /// [`Self::remove`] of a located prefix.
    pub fn remove_at(&mut self, at: Located) -> Option<V> {
        with_shard!(self.map_mut, at, |m, k, h| m.remove(&k, h))
    }

    /// The two halves of the map ([`Located::half`]), to change apart.
    pub fn halves_mut(&mut self) -> [Half<'_, V>; 2] {
        let (v4a, v4b) = self.v4.shards.split_at_mut(SHARDS / 2);
        let (v6a, v6b) = self.v6.shards.split_at_mut(SHARDS / 2);
        [Half { v4: v4a, v6: v6a }, Half { v4: v4b, v6: v6b }]
    }

    /// Every entry, IPv4 first, in no particular order within a family.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        self.v4
            .iter()
            .map(|(k, v)| (v4_net(k), v))
            .chain(self.v6.iter().map(|(k, v)| (v6_net(k), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, to change in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.v4.values_mut().chain(self.v6.values_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_spreads_and_removes() {
        let mut t = PrefixMap::<u32>::default();
        for i in 0..4096u32 {
            let p: IpNet = format!("10.{}.{}.0/24", i >> 8, i & 255).parse().unwrap();
            t.upsert(&p, |v| {
                assert!(v.is_none(), "new prefix");
                Some(i)
            });
            t.upsert(&p, |v| {
                *v.expect("present") += 1;
                None
            });
        }
        let v6: IpNet = "2001:db8:1::/48".parse().unwrap();
        t.insert(v6, 1);
        assert_eq!(t.len(), 4097);
        assert_eq!(t.iter().count(), 4097);
        assert!(t.keys().any(|k| k == v6));
        // Every shard gets a share (64 shards, 64 on average).
        assert!(t.v4.shards.iter().all(|s| s.len() > 16), "uneven shards");
        let p: IpNet = "10.0.5.0/24".parse().unwrap();
        assert_eq!(t.get(&p), Some(&6));
        assert!(t.keys().any(|k| k == p), "keys come back as prefixes");
        assert_eq!(t.remove(&p), Some(6));
        assert!(t.remove(&p).is_none());
        assert_eq!(t.len(), 4096);
        assert!(!t.contains_key(&p));
        assert_eq!(t.insert(p, 1), None);
        assert_eq!(t.insert(p, 2), Some(1));
        assert_eq!(t.len(), 4097);
    }
}
