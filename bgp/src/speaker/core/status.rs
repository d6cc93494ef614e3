//! What status shows of each peer, and telling peer subscribers what
//! changed since they were last told.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::rib::PeerIndex;
use crate::speaker::core::{Core, Output, PeerEntry};
use crate::speaker::status::{CapabilitySummary, PeerChange, PeerStatus};
use crate::wire::negotiate::Negotiated;

fn summary(n: &Negotiated) -> CapabilitySummary {
    CapabilitySummary {
        families: n.families.clone(),
        four_octet_as: n.four_octet_as,
        route_refresh: n.route_refresh,
        enhanced_route_refresh: n.enhanced_route_refresh,
        graceful_restart: n.peer_graceful_restart.is_some(),
        extended_message: n.extended_message,
        add_path: !n.add_path.is_empty(),
        hold_time: n.hold_time,
    }
}

impl Core {
    /// Every peer's status, sorted by address.
    pub fn status(&self) -> Vec<PeerStatus> {
        let mut v: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(index, e)| self.status_of(*index, e))
            .collect();
        v.sort_by_key(|s| s.address);
        v
    }

    /// One peer's status.
    fn status_of(&self, index: PeerIndex, e: &PeerEntry) -> PeerStatus {
        PeerStatus {
            address: e.cfg.address,
            asn: e.asn,
            state: e.state,
            established_at: e.established_at,
            established_count: e.established_count,
            capabilities: e.negotiated.as_ref().map(summary),
            accepted: self.rib.adj_in_len(index),
            advertised: e.adj_out.len(),
            stale: !e.stale_families.is_empty(),
            end_of_rib: e.eor.clone(),
            last_error: e.last_error.clone(),
            dynamic: e.dynamic,
            unsendable: e.adj_out.unsendable(),
            last_unsendable: e.adj_out.last_unsendable().map(str::to_string),
            malformed: e.malformed,
        }
    }

    /// Whether what a pass changes of a peer it had no input from (its
    /// counters: routes accepted, advertised, unsendable) differs from
    /// `sent`.
    fn counters_differ(&self, index: PeerIndex, e: &PeerEntry, sent: &PeerStatus) -> bool {
        sent.accepted != self.rib.adj_in_len(index)
            || sent.advertised != e.adj_out.len()
            || sent.unsendable != e.adj_out.unsendable()
            || sent.last_unsendable.as_deref() != e.adj_out.last_unsendable()
    }

    /// Whether best-path changes are wanted ([`Output::BestChanges`]).
    pub fn set_watch_best(&mut self, on: bool) {
        self.watch_best = on;
    }

    /// A new peer subscriber: those already watching are sent what changed
    /// so far ([`Output::PeerChanges`]); the new one gets every peer as it
    /// is now (the returned snapshot), and from then on all are sent
    /// changes at the end of each pass.
    pub fn watch_peers(&mut self) -> Vec<PeerStatus> {
        if self.peers_sent.is_some() {
            self.publish_peers();
        }
        let current = self.status();
        self.status_dirty.clear();
        self.status_dirty_all = false;
        self.peers_sent = Some(current.iter().map(|s| (s.address, s.clone())).collect());
        current
    }

    /// Nobody watches peers any more.
    pub fn unwatch_peers(&mut self) {
        self.peers_sent = None;
    }

    /// Queue the peers whose status changed since last sent, and the peers
    /// removed since, for peer subscribers. Only the peers the pass's
    /// inputs concern are looked at whole ([`Core::status_dirty`]), the
    /// others by their counters; after any other input, every peer.
    pub(super) fn publish_peers(&mut self) {
        let Some(mut sent) = self.peers_sent.take() else {
            return;
        };
        let all = std::mem::take(&mut self.status_dirty_all) || sent.len() != self.peers.len();
        let dirty = std::mem::take(&mut self.status_dirty);
        let mut changes = Vec::new();
        if all {
            let mut now = HashMap::with_capacity(self.peers.len());
            for status in self.status() {
                if sent.get(&status.address) != Some(&status) {
                    changes.push(PeerChange::Changed(status.clone()));
                }
                now.insert(status.address, status);
            }
            let mut removed: Vec<IpAddr> = sent
                .keys()
                .filter(|a| !now.contains_key(a))
                .copied()
                .collect();
            removed.sort();
            changes.extend(removed.into_iter().map(PeerChange::Removed));
            sent = now;
        } else {
            let mut changed = Vec::new();
            for (index, e) in &self.peers {
                let look = match sent.get(&e.cfg.address) {
                    Some(old) => dirty.contains(index) || self.counters_differ(*index, e, old),
                    None => true,
                };
                if !look {
                    continue;
                }
                let status = self.status_of(*index, e);
                if sent.get(&status.address) != Some(&status) {
                    changed.push(status.clone());
                    sent.insert(status.address, status);
                }
            }
            // As a whole look sends them: by address.
            changed.sort_by_key(|s| s.address);
            changes.extend(changed.into_iter().map(PeerChange::Changed));
        }
        self.peers_sent = Some(sent);
        if !changes.is_empty() {
            self.out.push(Output::PeerChanges(changes));
        }
    }
}
