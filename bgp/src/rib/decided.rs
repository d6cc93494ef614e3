//! The decision process's outcome for the prefixes a batch changed, by
//! reference: each prefix's best path before and after as the table holds
//! it (route id and path ID), not as a [`super::BestChange`] with its own
//! copy of the path.
//!
//! A full table arriving is a million of these; a reference is 12 bytes
//! where a path is 40 with a shared attribute handle to count, so taking,
//! advertising and dropping them costs little. The routes they name stay
//! readable until the decisions are handed back to [`super::Rib::settle`]
//! (which takes them by value, so none is read after);
//! [`super::Rib::best_changes`] turns them into [`super::BestChange`]s for
//! whoever needs paths.

use ipnet::IpNet;

use super::path::NextHops;
use super::prefix_map::Slot;

/// No entry in [`Decided`]'s next-hop lists.
const OWN_HOP: u32 = u32::MAX;

/// One prefix whose best path or next-hop set changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub prefix: IpNet,
    /// The best path before (`None`: the prefix had none).
    pub previous: Option<Slot>,
    /// The best path now (`None`: the prefix became unreachable).
    pub best: Option<Slot>,
    /// Where the next hops are when they are more than the best path's
    /// own (multipath): an index into [`Decided`]'s lists.
    hops: u32,
}

/// The decisions of one batch, each prefix at most once.
#[derive(Debug, Default)]
pub struct Decided {
    list: Vec<Decision>,
    /// Next-hop sets other than the best path's own next hop (multipath).
    hops: Vec<NextHops>,
}

impl Decided {
    /// Decisions written into `list`'s memory (emptied), room for `n`.
    pub(super) fn reuse(mut list: Vec<Decision>, n: usize) -> Self {
        list.clear();
        list.reserve(n);
        Self {
            list,
            hops: Vec::new(),
        }
    }

    /// The list, for its memory.
    pub(super) fn into_list(self) -> Vec<Decision> {
        self.list
    }

    /// Record a decision; `hops`: the next hops when they are not just the
    /// best path's own.
    pub(super) fn push(
        &mut self,
        prefix: IpNet,
        previous: Option<Slot>,
        best: Option<Slot>,
        hops: Option<NextHops>,
    ) {
        let hops = match hops {
            Some(h) => {
                self.hops.push(h);
                u32::try_from(self.hops.len() - 1).unwrap_or(OWN_HOP)
            }
            None => OWN_HOP,
        };
        self.list.push(Decision {
            prefix,
            previous,
            best,
            hops,
        });
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Decision> {
        self.list.iter()
    }

    /// The next hops of `d` when they are more than its best path's own
    /// next hop (`None`: just that one, or none without a best path).
    pub fn multipath_hops(&self, d: &Decision) -> Option<&NextHops> {
        self.hops.get(d.hops as usize)
    }
}
