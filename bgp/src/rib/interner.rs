//! Attribute interning: identical [`PathAttributes`] share one allocation.
//!
//! A million prefixes announced with the same attributes hold a million
//! `Arc` clones of one value. The table keeps one reference of its own; an
//! entry whose only reference is the table's is unused and is dropped by
//! [`AttrInterner::release`] (eagerly, per handle) or [`AttrInterner::gc`].

use std::collections::HashSet;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::wire::PathAttributes;

/// A shared, interned attribute set.
pub type Attrs = Arc<PathAttributes>;

/// The table of interned attribute sets.
#[derive(Debug, Default)]
pub struct AttrInterner {
    set: HashSet<Attrs, FxBuildHasher>,
}

impl AttrInterner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared handle for `attrs`, adding it if new.
    pub fn intern(&mut self, attrs: PathAttributes) -> Attrs {
        if let Some(found) = self.set.get(&attrs) {
            return Arc::clone(found);
        }
        let handle = Arc::new(attrs);
        self.set.insert(Arc::clone(&handle));
        handle
    }

    /// The shared handle equal to `attrs`, interning a handle made elsewhere
    /// (so that a value built outside the table still ends up shared).
    pub fn intern_arc(&mut self, attrs: &Attrs) -> Attrs {
        if let Some(found) = self.set.get(&**attrs) {
            return Arc::clone(found);
        }
        self.set.insert(Arc::clone(attrs));
        Arc::clone(attrs)
    }

    /// Drop a handle; when only the table still holds the value, drop it too.
    pub fn release(&mut self, handle: Attrs) {
        // Two references left: ours (`handle`) and the table's.
        if Arc::strong_count(&handle) == 2 {
            if let Some(stored) = self.set.get(&*handle) {
                if Arc::ptr_eq(stored, &handle) {
                    self.set.remove(&*handle);
                }
            }
        }
    }

    /// Drop every entry nobody but the table uses; returns how many went.
    pub fn gc(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        before - self.set.len()
    }

    /// Number of distinct attribute sets held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Origin;

    fn attrs(med: u32) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            med: Some(med),
            ..Default::default()
        }
    }

    #[test]
    fn identical_sets_share_one_allocation() {
        let mut t = AttrInterner::new();
        let a = t.intern(attrs(1));
        let b = t.intern(attrs(1));
        let c = t.intern(attrs(2));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(t.len(), 2);
        let d = t.intern_arc(&Arc::new(attrs(1)));
        assert!(Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn releasing_the_last_handle_frees_the_entry() {
        let mut t = AttrInterner::new();
        let a = t.intern(attrs(1));
        let b = t.intern(attrs(1));
        t.release(a);
        assert_eq!(t.len(), 1);
        t.release(b);
        assert!(t.is_empty());
    }

    #[test]
    fn gc_drops_unused_entries() {
        let mut t = AttrInterner::new();
        let kept = t.intern(attrs(1));
        drop(t.intern(attrs(2)));
        assert_eq!(t.gc(), 1);
        assert_eq!(t.len(), 1);
        drop(kept);
        assert_eq!(t.gc(), 1);
        assert!(t.is_empty());
    }
}
