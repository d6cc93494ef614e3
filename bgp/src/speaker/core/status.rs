//! What status shows of each peer, and telling peer subscribers what
//! changed since they were last told.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::speaker::core::{Core, Output};
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
            .map(|(index, e)| PeerStatus {
                address: e.cfg.address,
                asn: e.asn,
                state: e.state,
                established_at: e.established_at,
                established_count: e.established_count,
                capabilities: e.negotiated.as_ref().map(summary),
                accepted: self.rib.adj_in_len(*index),
                advertised: e.adj_out.len(),
                stale: !e.stale_families.is_empty(),
                end_of_rib: e.eor.clone(),
                last_error: e.last_error.clone(),
                dynamic: e.dynamic,
                unsendable: e.adj_out.unsendable(),
                last_unsendable: e.adj_out.last_unsendable().map(str::to_string),
                malformed: e.malformed,
            })
            .collect();
        v.sort_by_key(|s| s.address);
        v
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
        self.peers_sent = Some(current.iter().map(|s| (s.address, s.clone())).collect());
        current
    }

    /// Nobody watches peers any more.
    pub fn unwatch_peers(&mut self) {
        self.peers_sent = None;
    }

    /// Queue the peers whose status changed since last sent, and the peers
    /// removed since, for peer subscribers.
    pub(super) fn publish_peers(&mut self) {
        let Some(sent) = self.peers_sent.take() else {
            return;
        };
        let mut changes = Vec::new();
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
        self.peers_sent = Some(now);
        if !changes.is_empty() {
            self.out.push(Output::PeerChanges(changes));
        }
    }
}
