//! Best-path changes gathered over one pass of the speaker, from one or
//! more takes of the RIB ([`super::Rib::take_changes`]), merged so that each
//! prefix appears once: its best path before the first change and after
//! the last. The stateless Adj-RIB-Out ([`super::AdjRibOut`]) relies on it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::path::BestChange;

/// Changes of one pass.
#[derive(Debug, Default)]
pub struct ChangeSet {
    list: Vec<BestChange>,
    takes: usize,
}

impl ChangeSet {
    /// Add the changes of one take (each prefix at most once in it).
    pub fn extend(&mut self, more: Vec<BestChange>) {
        if more.is_empty() {
            return;
        }
        self.takes += 1;
        if self.list.is_empty() {
            self.list = more;
        } else {
            self.list.extend(more);
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The changes, one per prefix, leaving the set empty. A prefix that
    /// changed back to what it was is left out.
    pub fn take(&mut self) -> Vec<BestChange> {
        let takes = std::mem::take(&mut self.takes);
        let list = std::mem::take(&mut self.list);
        if takes <= 1 {
            return list;
        }
        let mut index: HashMap<IpNet, usize, FxBuildHasher> = HashMap::default();
        let mut merged: Vec<BestChange> = Vec::with_capacity(list.len());
        for c in list {
            match index.entry(c.prefix) {
                Entry::Vacant(e) => {
                    e.insert(merged.len());
                    merged.push(c);
                }
                Entry::Occupied(e) => {
                    let m = &mut merged[*e.get()];
                    m.best = c.best;
                    m.next_hops = c.next_hops;
                }
            }
        }
        // A prefix back to the same best may still have other next hops
        // (multipath): kept; the exports of equal paths are equal anyway.
        merged.retain(|c| c.previous.is_some() || c.best.is_some());
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::{NextHops, Path, PeerIndex};
    use std::sync::Arc;

    fn path(peer: u32) -> Path {
        Path {
            peer: PeerIndex(peer),
            path_id: 0,
            attrs: Arc::new(Default::default()),
            next_hop: "192.0.2.1".parse().unwrap(),
            stale: false,
        }
    }

    fn change(prefix: &str, previous: Option<Path>, best: Option<Path>) -> BestChange {
        BestChange {
            prefix: prefix.parse().unwrap(),
            previous,
            next_hops: best.iter().map(|b| b.next_hop).collect::<NextHops>(),
            best,
        }
    }

    #[test]
    fn one_take_passes_through_and_several_merge() {
        let mut set = ChangeSet::default();
        set.extend(vec![change("10.0.0.0/24", None, Some(path(1)))]);
        assert_eq!(set.len(), 1);
        assert_eq!(set.take().len(), 1);
        assert!(set.is_empty());

        let a = path(1);
        let b = path(2);
        set.extend(vec![
            change("10.0.0.0/24", None, Some(a.clone())),
            change("10.0.1.0/24", Some(a.clone()), Some(b.clone())),
        ]);
        set.extend(Vec::new());
        set.extend(vec![
            change("10.0.0.0/24", Some(a.clone()), Some(b.clone())),
            change("10.0.1.0/24", Some(b.clone()), None),
            change("10.0.2.0/24", None, Some(a.clone())),
        ]);
        let merged = set.take();
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].previous, None);
        assert_eq!(merged[0].best.as_ref().map(|p| p.peer), Some(PeerIndex(2)));
        assert_eq!(
            merged[1].previous.as_ref().map(|p| p.peer),
            Some(PeerIndex(1))
        );
        assert_eq!(merged[1].best, None);
        assert!(merged[1].next_hops.is_empty());
        assert_eq!(merged[2].prefix, "10.0.2.0/24".parse::<IpNet>().unwrap());
    }

    #[test]
    fn a_prefix_that_came_and_went_is_dropped() {
        let mut set = ChangeSet::default();
        set.extend(vec![change("10.0.0.0/24", None, Some(path(1)))]);
        set.extend(vec![change("10.0.0.0/24", Some(path(1)), None)]);
        assert!(set.take().is_empty());
    }
}
