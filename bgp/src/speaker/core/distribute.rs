//! What each peer is sent (RFC 4271 §9.2: the Adj-RIBs-Out follow the
//! Loc-RIB), and what best-path subscribers are told.

use crate::fsm::State;
use crate::rib::{Decided, PeerIndex};
use crate::session::events::PeerCommand;
use crate::speaker::core::{Core, Output};
use crate::types::Family;

impl Core {
    /// Send each established peer its part of `decided`; tell subscribers.
    /// While we restart (RFC 4724 §4.1) peers are sent nothing yet.
    pub(super) fn distribute(&mut self, decided: &Decided) {
        if !self.deferring {
            for (peer, entry) in &mut self.peers {
                if entry.state != State::Established {
                    continue;
                }
                let out = entry.adj_out.apply(&mut self.rib, decided);
                if !out.is_empty() {
                    self.out.push(Output::ToPeer {
                        peer: *peer,
                        command: PeerCommand::Send(out),
                    });
                }
            }
        }
        if self.watch_best {
            let changes = self.rib.best_changes(decided);
            self.out.push(Output::BestChanges(changes));
        }
    }

    /// Send a peer the whole Loc-RIB as its export policy lets it, then
    /// End-of-RIB for each family of the session (RFC 4724 §2): the
    /// session came up, or our restart's deferral ended.
    pub(super) fn advertise_all(&mut self, peer: PeerIndex) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        let out = entry.adj_out.sync(&mut self.rib, None);
        if !out.is_empty() {
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::Send(out),
            });
        }
        for f in entry.negotiated.iter().flat_map(|n| n.families.iter()) {
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::EndOfRib(*f),
            });
        }
    }

    /// Resend everything of a family to one peer (route refresh, RFC 2918
    /// §4), between Beginning and End of Route Refresh markers when the
    /// peer speaks enhanced route refresh (RFC 7313 §4).
    pub(super) fn resend(&mut self, peer: PeerIndex, family: Family) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        let enhanced = entry
            .negotiated
            .as_ref()
            .is_some_and(|n| n.enhanced_route_refresh);
        if enhanced {
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::RefreshBorder { family, subtype: 1 },
            });
        }
        let out = entry.adj_out.sync(&mut self.rib, None);
        if !out.is_empty() {
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::Send(out),
            });
        }
        if enhanced {
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::RefreshBorder { family, subtype: 2 },
            });
        }
    }
}
