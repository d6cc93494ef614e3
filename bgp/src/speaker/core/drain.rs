//! Removing a peer's paths a pass's worth at a time: a peer with a full
//! table goes without one pass building a million changes at once.

use crate::rib::{PeerIndex, RouteKey};
use crate::speaker::core::{Core, MAX_CHANGES_PER_PASS, retire_done};
use crate::types::Family;

/// Stale paths of one peer still to remove.
#[derive(Debug)]
pub(super) struct Drain {
    peer: PeerIndex,
    keys: Vec<RouteKey>,
    done: usize,
    /// The peer was removed: forget it in the RIB once drained.
    forget: bool,
}

/// Which of a peer's paths to drain.
#[derive(Debug, Clone, Copy)]
pub(super) enum Drained {
    /// Those of a family still stale when its graceful restart ends.
    Stale(Family),
    /// All of them (marked stale first): the session ended for good, or
    /// the peer was removed (`forget`: then the RIB forgets it once they
    /// are gone and its session has ended; until then they are decided
    /// with what it knows of it).
    All { forget: bool },
}

impl Core {
    /// Queue the removal of some of `peer`'s paths.
    pub(super) fn queue_drain(&mut self, peer: PeerIndex, what: Drained) {
        let (keys, forget) = match what {
            Drained::Stale(family) => (self.rib.stale_keys(peer, Some(family)), false),
            Drained::All { forget } => (self.rib.retire(peer, None), forget),
        };
        let keys = keys.unwrap_or_default();
        if !keys.is_empty() || forget {
            self.draining.push_back(Drain {
                peer,
                keys,
                done: 0,
                forget,
            });
        }
    }

    /// Remove up to a pass's worth of queued stale paths (staged; taken
    /// with the pass's other changes).
    pub fn drain_some(&mut self) {
        let mut budget = MAX_CHANGES_PER_PASS;
        while budget > 0 {
            let Some(d) = self.draining.front_mut() else {
                return;
            };
            let end = (d.done + budget).min(d.keys.len());
            self.rib.remove_stale(d.peer, &d.keys[d.done..end]);
            budget -= end - d.done;
            d.done = end;
            if d.done == d.keys.len() {
                if d.forget {
                    let peer = d.peer;
                    if let Some(r) = self.retired.get_mut(&peer) {
                        r.paths_removed = true;
                    }
                    retire_done(&mut self.rib, &mut self.retired, peer);
                }
                self.draining.pop_front();
            }
        }
    }
}
