//! A prefix's paths as the prefix table stores them: 8 bytes per prefix.
//!
//! Almost every prefix has one path, with path ID 0 (no ADD-PATH) or a
//! small one. [`Paths`] packs that path, and the number of the RIB batch
//! that last touched the prefix, into one `u64`; a prefix with several
//! paths (or a path ID too large to pack) keeps them in [`PathLists`], a
//! slab beside the table, and its `u64` holds the list's index.
//!
//! Why 8 bytes: a full table's load is dominated by the table's memory
//! (its growth, page faults and cache misses), and a bucket is a key and a
//! value. With an 8-byte key, a 16-byte value made 24-byte buckets; this
//! makes 16.
//!
//! Layout, from the low bits: 32 bits of route id (or list index), 9 bits
//! of path ID, 1 bit "in a list", 22 bits of batch mark.

use smallvec::SmallVec;

use super::route::RouteId;

/// One path of a prefix: which route, and its ADD-PATH path ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub route: RouteId,
    pub path_id: u32,
}

/// A copy of a prefix's paths, apart from the table (a batch keeps the
/// paths a prefix had before it changed).
pub type PathList = SmallVec<[Slot; 2]>;

const ID_BITS: u32 = 32;
const PATH_ID_BITS: u32 = 9;
const LISTED: u64 = 1 << (ID_BITS + PATH_ID_BITS);
const MARK_SHIFT: u32 = ID_BITS + PATH_ID_BITS + 1;
/// Batch marks wrap at this (see [`Paths::batch`]).
pub const MARK_LIMIT: u32 = 1 << (64 - MARK_SHIFT);
const UNMARKED: u64 = (1 << MARK_SHIFT) - 1;

/// The paths of one prefix (never empty), packed; the empty bucket's
/// value is `Paths::default()` (never read as a prefix's paths). Copying
/// one copies the reference to a list, not the list: the table holds the
/// one that counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paths(u64);

/// Paths to read: one packed path, or a list.
#[derive(Debug)]
pub enum Slots<'a> {
    One([Slot; 1]),
    Many(&'a [Slot]),
}

impl std::ops::Deref for Slots<'_> {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        match self {
            Slots::One(s) => s,
            Slots::Many(v) => v,
        }
    }
}

/// The lists of the prefixes whose paths do not pack into a [`Paths`].
#[derive(Debug, Default)]
pub struct PathLists {
    lists: Vec<Vec<Slot>>,
    /// Indexes of emptied lists, to reuse.
    free: Vec<u32>,
}

impl PathLists {
    fn add(&mut self, list: Vec<Slot>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.lists[i as usize] = list;
                i
            }
            None => {
                self.lists.push(list);
                // Four billion lists do not fit in memory before this does.
                u32::try_from(self.lists.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn get(&self, i: u32) -> &[Slot] {
        self.lists.get(i as usize).map_or(&[], Vec::as_slice)
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut Vec<Slot>> {
        self.lists.get_mut(i as usize)
    }

    fn take(&mut self, i: u32) -> Vec<Slot> {
        self.free.push(i);
        self.lists
            .get_mut(i as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Lists in use.
    pub fn len(&self) -> usize {
        self.lists.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Paths {
    /// One path, packed when its path ID fits, else in a list.
    pub fn new(slot: Slot, lists: &mut PathLists) -> Self {
        Self::pack(slot).unwrap_or_else(|| Self::listed(vec![slot], lists))
    }

    /// One path packed (`None`: its path ID is too large; it needs a list).
    pub fn pack(slot: Slot) -> Option<Self> {
        (slot.path_id < 1 << PATH_ID_BITS)
            .then(|| Paths(u64::from(slot.route.0) | u64::from(slot.path_id) << ID_BITS))
    }

    fn listed(list: Vec<Slot>, lists: &mut PathLists) -> Self {
        Paths(LISTED | u64::from(lists.add(list)))
    }

    fn id(self) -> u32 {
        self.0 as u32
    }

    fn is_listed(self) -> bool {
        self.0 & LISTED != 0
    }

    /// The packed path (when not in a list).
    fn one(self) -> Slot {
        Slot {
            route: RouteId(self.id()),
            path_id: ((self.0 >> ID_BITS) & ((1 << PATH_ID_BITS) - 1)) as u32,
        }
    }

    pub fn slots(self, lists: &PathLists) -> Slots<'_> {
        if self.is_listed() {
            Slots::Many(lists.get(self.id()))
        } else {
            Slots::One([self.one()])
        }
    }

    /// A copy of the paths, apart from the table.
    pub fn to_list(self, lists: &PathLists) -> PathList {
        PathList::from_slice(&self.slots(lists))
    }

    /// The batch that last touched this prefix (0: none yet). Marks are
    /// below [`MARK_LIMIT`]: the caller unmarks every prefix when its
    /// batch numbers wrap.
    pub fn batch(self) -> u32 {
        (self.0 >> MARK_SHIFT) as u32
    }

    pub fn set_batch(&mut self, batch: u32) {
        self.0 = (self.0 & UNMARKED) | (u64::from(batch % MARK_LIMIT) << MARK_SHIFT);
    }

    /// Keep the batch mark of `self`, the paths of `other`.
    fn with_paths_of(self, other: Paths) -> Self {
        Paths((other.0 & UNMARKED) | (self.0 & !UNMARKED))
    }

    /// Replace the path at `pos` (`slot` is not already among them).
    pub fn replace(&mut self, pos: usize, slot: Slot, lists: &mut PathLists) {
        if self.is_listed() {
            if let Some(s) = lists.get_mut(self.id()).and_then(|v| v.get_mut(pos)) {
                *s = slot;
            }
        } else {
            *self = self.with_paths_of(Self::new(slot, lists));
        }
    }

    pub fn push(&mut self, slot: Slot, lists: &mut PathLists) {
        if self.is_listed() {
            if let Some(v) = lists.get_mut(self.id()) {
                v.push(slot);
            }
        } else {
            *self = self.with_paths_of(Self::listed(vec![self.one(), slot], lists));
        }
    }

    /// Remove the path at `pos`; `false` when it was the only one (the
    /// caller then removes the prefix, and [`Self::free`]s it).
    pub fn remove(&mut self, pos: usize, lists: &mut PathLists) -> bool {
        if !self.is_listed() {
            return false;
        }
        let Some(v) = lists.get_mut(self.id()) else {
            return false;
        };
        if v.len() <= 1 {
            return false;
        }
        v.swap_remove(pos);
        if let [only] = v.as_slice() {
            if let Some(packed) = Self::pack(*only) {
                lists.take(self.id());
                *self = self.with_paths_of(packed);
            }
        }
        true
    }

    /// Give back the list of a prefix being removed from the table.
    pub fn free(self, lists: &mut PathLists) {
        if self.is_listed() {
            lists.take(self.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(route: u32, path_id: u32) -> Slot {
        Slot {
            route: RouteId(route),
            path_id,
        }
    }

    #[test]
    fn a_table_bucket_is_small() {
        assert_eq!(std::mem::size_of::<Paths>(), 8);
        assert_eq!(std::mem::size_of::<(u64, Paths)>(), 16);
    }

    #[test]
    fn one_path_packs_with_its_mark() {
        let mut lists = PathLists::default();
        let s = slot(u32::MAX - 1, (1 << PATH_ID_BITS) - 1);
        let mut p = Paths::new(s, &mut lists);
        assert!(lists.is_empty(), "packed, not listed");
        p.set_batch(MARK_LIMIT - 1);
        assert_eq!(&*p.slots(&lists), &[s]);
        assert_eq!(p.batch(), MARK_LIMIT - 1);
        p.replace(0, slot(3, 4), &mut lists);
        assert_eq!(&*p.slots(&lists), &[slot(3, 4)]);
        assert_eq!(p.batch(), MARK_LIMIT - 1, "a new path keeps the mark");
    }

    #[test]
    fn a_large_path_id_goes_to_a_list() {
        let mut lists = PathLists::default();
        let big = slot(5, 1 << PATH_ID_BITS);
        let mut p = Paths::new(big, &mut lists);
        assert_eq!(lists.len(), 1);
        assert_eq!(&*p.slots(&lists), &[big]);
        p.replace(0, slot(6, u32::MAX), &mut lists);
        assert_eq!(&*p.slots(&lists), &[slot(6, u32::MAX)]);
        assert!(!p.remove(0, &mut lists), "the last path is the caller's");
        p.free(&mut lists);
        assert!(lists.is_empty());
    }

    #[test]
    fn paths_grow_into_a_list_and_shrink_back() {
        let mut lists = PathLists::default();
        let mut p = Paths::new(slot(1, 0), &mut lists);
        p.set_batch(7);
        p.push(slot(2, 1), &mut lists);
        p.push(slot(3, 2), &mut lists);
        assert_eq!(p.slots(&lists).len(), 3);
        assert_eq!(p.to_list(&lists).as_slice(), &*p.slots(&lists));
        assert!(p.remove(0, &mut lists));
        assert!(p.remove(0, &mut lists));
        assert_eq!(&*p.slots(&lists), &[slot(2, 1)]);
        assert!(lists.is_empty(), "one packable path left: packed again");
        assert_eq!(p.batch(), 7, "the mark survives growing and shrinking");
        // The freed list is reused.
        let mut q = Paths::new(slot(8, 0), &mut lists);
        q.push(slot(9, 0), &mut lists);
        assert_eq!(lists.lists.len(), 1);
    }
}
