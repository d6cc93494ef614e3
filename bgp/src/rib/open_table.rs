//! A hash table built for loading a full routing table fast: open
//! addressing with linear probing over one array of `(key, value)` buckets.
//!
//! Three properties a general-purpose map does not give, and that a
//! million-prefix load spends its time on:
//! - **Prefetch.** [`OpenTable::prefetch`] names the bucket a key will be
//!   looked up in, so a caller walking an UPDATE's prefixes starts the
//!   memory fetch of a later prefix while it inserts this one; the cache
//!   miss per insert, the largest cost of a load, overlaps with work.
//! - **A value beside its key.** With the RIB's 8-byte values an IPv4
//!   bucket is 16 bytes, four to a cache line: the line a probe reads
//!   for the key holds the value too, so a lookup fetches (and prefetches)
//!   one line, or two when its run of buckets crosses a line's end; there
//!   is no array of control bytes to fetch first. (Keys and values in two
//!   arrays were measured no faster, and need a third line per lookup.)
//! - **Streaming growth.** A key's bucket is taken from the *top* bits of
//!   its hash, so the table is ordered by hash and
//!   doubling it moves every key from bucket `i` to near bucket `2i`: the
//!   copy walks both arrays front to back instead of writing at random.
//!
//! Empty buckets hold [`TableKey::EMPTY`] (a key no prefix can have) and
//! `V::default()`, which must not allocate. Deletion shifts the following
//! keys back (no tombstones), so lookups never slow down with churn.
//! The load factor stays at or below 3/4: a miss then probes 8.5 buckets
//! on average.

/// A key the table can hold.
pub trait TableKey: Copy + Eq {
    /// The key of an empty bucket; never inserted.
    const EMPTY: Self;
    /// A 64-bit hash whose *top* bits are well mixed.
    fn hash(&self) -> u64;
}

/// A 64-bit mix (xor-shift-multiply, as in MurmurHash3's finalizer) whose
/// every output bit depends on every input bit. A bare multiplication is
/// not enough: prefixes come in arithmetic runs (10.0.0.0/24, 10.0.1.0/24,
/// ...), and a multiple of such a run's stride can leave the top bits
/// clustered, which linear probing punishes.
///
/// The input is first combined with a random per-process seed, so that a
/// peer cannot choose prefixes that all land in one run of buckets (which
/// would make every insert probe the whole run).
pub fn mix(x: u64) -> u64 {
    let x = x ^ seed();
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// This process's hash seed (random, fixed once read).
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(0x006d_616e_756c_u64)
    })
}

const MIN_CAPACITY: usize = 16;

/// The table. Lookups take the key's hash ([`TableKey::hash`]) from the
/// caller, who computes it once for a prefetch and the lookup after it.
/// `SKIP` top bits of every hash are ignored (a caller that
/// spreads keys over several tables uses them to pick the table).
#[derive(Debug, Clone)]
pub struct OpenTable<K, V, const SKIP: u32> {
    /// Each bucket's key with its value beside it: one cache line holds
    /// both (and four IPv4 buckets).
    buckets: Vec<(K, V)>,
    len: usize,
    /// `64 - log2(capacity)`: a hash's bucket is `hash << SKIP >> shift`.
    shift: u32,
}

impl<K: TableKey, V: Default, const SKIP: u32> Default for OpenTable<K, V, SKIP> {
    fn default() -> Self {
        Self {
            buckets: Vec::new(),
            len: 0,
            shift: 64,
        }
    }
}

impl<K: TableKey, V: Default, const SKIP: u32> OpenTable<K, V, SKIP> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The home bucket of a key with this hash.
    fn home(&self, hash: u64) -> usize {
        // `shift` is 64 only while there are no buckets (never probed).
        ((hash << SKIP) >> self.shift) as usize
    }

    /// The bucket holding `key` (whose hash is `hash`), or the empty one
    /// where it would go.
    fn find(&self, key: &K, hash: u64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let k = self.buckets[i].0;
            if k == *key {
                return Ok(i);
            }
            if k == K::EMPTY {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Start fetching what a lookup of the key whose hash is `hash` will
    /// read: the cache line of its home bucket and the next one (an insert
    /// scans on to the first empty bucket, 8.5 buckets on average at the
    /// highest load). A hint to the CPU; the table is unchanged.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let home = self.home(hash);
        let first = std::ptr::from_ref(&self.buckets[home]).cast::<u8>();
        prefetch_line(first);
        prefetch_line(first.wrapping_add(64));
    }

    pub fn get(&self, key: &K, hash: u64) -> Option<&V> {
        if self.len == 0 {
            return None;
        }
        self.find(key, hash).ok().map(|i| &self.buckets[i].1)
    }

    pub fn get_mut(&mut self, key: &K, hash: u64) -> Option<&mut V> {
        if self.len == 0 {
            return None;
        }
        let i = self.find(key, hash).ok()?;
        Some(&mut self.buckets[i].1)
    }

    /// Look `key` up once: `f` changes its value in place, or, when it has
    /// none, returns the value to insert (`None`: insert nothing). Returns
    /// whether a key was inserted.
    pub fn upsert(
        &mut self,
        key: K,
        hash: u64,
        f: impl FnOnce(Option<&mut V>) -> Option<V>,
    ) -> bool {
        if self.buckets.is_empty() {
            self.grow();
        }
        match self.find(&key, hash) {
            Ok(i) => {
                f(Some(&mut self.buckets[i].1));
                false
            }
            Err(mut i) => {
                let Some(value) = f(None) else {
                    return false;
                };
                if self.needs_growth() {
                    self.grow();
                    i = self.find(&key, hash).unwrap_or_else(|empty| empty);
                }
                self.buckets[i] = (key, value);
                self.len += 1;
                true
            }
        }
    }

    /// Set the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: K, hash: u64, value: V) -> Option<V> {
        let mut value = Some(value);
        let mut old = None;
        self.upsert(key, hash, |slot| match slot {
            Some(v) => {
                old = Some(std::mem::replace(v, value.take().unwrap_or_default()));
                None
            }
            None => value.take(),
        });
        old
    }

    pub fn remove(&mut self, key: &K, hash: u64) -> Option<V> {
        if self.len == 0 {
            return None;
        }
        let mut hole = self.find(key, hash).ok()?;
        let (_, value) = std::mem::replace(&mut self.buckets[hole], (K::EMPTY, V::default()));
        self.len -= 1;
        // Backward shift: move each following key of the run into the hole
        // when the hole lies between its home and where it sits (so every
        // key stays reachable from its home without tombstones).
        let mask = self.mask();
        let mut i = (hole + 1) & mask;
        loop {
            let k = self.buckets[i].0;
            if k == K::EMPTY {
                break;
            }
            let home = self.home(k.hash());
            // Distance from home to the slot, and from home to the hole,
            // both walking forward with wrap-around.
            if (hole.wrapping_sub(home) & mask) < (i.wrapping_sub(home) & mask) {
                self.buckets.swap(hole, i);
                hole = i;
            }
            i = (i + 1) & mask;
        }
        Some(value)
    }

    fn needs_growth(&self) -> bool {
        (self.len + 1) * 4 > self.buckets.len() * 3
    }

    /// Double the capacity (or make the first buckets). Keys are moved in
    /// bucket order, which is hash order: the writes stream forward.
    fn grow(&mut self) {
        let capacity = (self.buckets.len() * 2).max(MIN_CAPACITY);
        let old = std::mem::replace(
            &mut self.buckets,
            std::iter::repeat_with(|| (K::EMPTY, V::default()))
                .take(capacity)
                .collect(),
        );
        self.shift = 64 - capacity.trailing_zeros();
        let mask = self.mask();
        for (k, v) in old {
            if k == K::EMPTY {
                continue;
            }
            let mut i = self.home(k.hash());
            while self.buckets[i].0 != K::EMPTY {
                i = (i + 1) & mask;
            }
            self.buckets[i] = (k, v);
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.buckets
            .iter()
            .filter(|(k, _)| *k != K::EMPTY)
            .map(|(k, v)| (k, v))
    }

    /// Every value, to change in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.buckets
            .iter_mut()
            .filter(|(k, _)| *k != K::EMPTY)
            .map(|(_, v)| v)
    }
}

/// Ask the CPU to bring the cache line at `p` in (no effect elsewhere).
#[inline]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the intrinsic needs SSE, which every x86_64 CPU has; a
    // prefetch reads nothing the program sees and cannot fault, whatever
    // the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl TableKey for u64 {
        const EMPTY: Self = u64::MAX;
        fn hash(&self) -> u64 {
            mix(*self)
        }
    }

    /// A key whose hash the test chooses, to force collisions and runs
    /// that wrap around the end of the table.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct Forced(u32, u64);

    impl TableKey for Forced {
        const EMPTY: Self = Forced(u32::MAX, 0);
        fn hash(&self) -> u64 {
            self.1
        }
    }

    /// A tiny deterministic generator (no test dependency needed).
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn agrees_with_a_hash_map_under_random_inserts_and_removes() {
        let mut t = OpenTable::<u64, u32, 0>::default();
        let mut m = HashMap::new();
        let mut s = 0x1234_5678_9abc_def0;
        for step in 0..200_000u32 {
            let key = xorshift(&mut s) % 5000;
            match xorshift(&mut s) % 3 {
                0 => assert_eq!(t.remove(&key, key.hash()), m.remove(&key), "step {step}"),
                _ => assert_eq!(
                    t.insert(key, key.hash(), step),
                    m.insert(key, step),
                    "step {step}"
                ),
            }
            assert_eq!(t.len(), m.len());
        }
        for (k, v) in &m {
            assert_eq!(t.get(k, k.hash()), Some(v));
        }
        assert_eq!(t.iter().count(), m.len());
        assert!(t.buckets.len() * 3 >= t.len() * 4, "load factor above 3/4");
    }

    #[test]
    fn colliding_keys_that_wrap_the_end_stay_reachable_through_removes() {
        let mut t = OpenTable::<Forced, u32, 0>::default();
        // Capacity 16 (shift 60): hash top nibble 0xf homes at the last bucket.
        let last = 0xf000_0000_0000_0000;
        for i in 0..6 {
            t.insert(Forced(i, last), last, i);
        }
        t.insert(Forced(10, 0), 0, 10); // homes at 0, displaced by the wrapped run
        assert_eq!(t.buckets.len(), 16);
        assert_eq!(t.remove(&Forced(0, last), last), Some(0));
        assert_eq!(t.remove(&Forced(3, last), last), Some(3));
        for i in [1, 2, 4, 5] {
            assert_eq!(t.get(&Forced(i, last), last), Some(&i), "key {i}");
        }
        assert_eq!(t.get(&Forced(10, 0), 0), Some(&10));
        assert_eq!(t.len(), 5);
        // Grow past the 3/4 load: everything is still found.
        let mut present: Vec<(Forced, u32)> = [1, 2, 4, 5]
            .into_iter()
            .map(|i| (Forced(i, last), i))
            .chain([(Forced(10, 0), 10)])
            .collect();
        for i in 20..40 {
            let key = Forced(i, u64::from(i) << 58);
            t.insert(key, key.hash(), i);
            present.push((key, i));
        }
        for (key, value) in &present {
            assert_eq!(t.get(key, key.hash()), Some(value), "{key:?}");
        }
        assert_eq!(t.len(), 25);
    }

    #[test]
    fn upsert_changes_in_place_or_inserts_once() {
        let mut t = OpenTable::<u64, u32, 6>::default();
        let h = |k: u64| k.hash();
        assert!(t.upsert(7, h(7), |v| {
            assert!(v.is_none());
            Some(1)
        }));
        assert!(!t.upsert(7, h(7), |v| {
            *v.expect("present") += 1;
            None
        }));
        assert!(
            !t.upsert(8, h(8), |_| None),
            "nothing inserted when f says so"
        );
        assert_eq!(t.get(&7, h(7)), Some(&2));
        assert_eq!(t.get(&8, h(8)), None);
        assert_eq!(t.len(), 1);
        t.prefetch(h(9));
        for v in t.values_mut() {
            *v = 5;
        }
        assert_eq!(t.get_mut(&7, h(7)).copied(), Some(5));
    }
}
