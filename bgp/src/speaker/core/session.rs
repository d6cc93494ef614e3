//! What peers' sessions report: up and down, routes, End-of-RIB, route
//! refresh; and graceful restart (RFC 4724) in both roles: keeping a
//! restarting peer's routes stale, and deferring our own advertisements
//! while we restart.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use crate::fsm::{DownReason, State};
use crate::rib::PeerIndex;
use crate::rib::adj_out::OutSession;
use crate::session::events::{PeerCommand, PeerEvent};
use crate::speaker::core::drain::Drained;
use crate::speaker::core::{Core, Now, Output, Timer, retire_done};
use crate::types::Family;
use crate::wire::Notification;
use crate::wire::negotiate::Negotiated;
use crate::wire::notification::{cease, code};

/// What a session that reached Established tells about itself.
struct Established {
    router_id: Ipv4Addr,
    asn: u32,
    local: SocketAddr,
    remote: SocketAddr,
    /// The addresses of the interface holding `local` (empty: unknown).
    interface: Vec<IpNet>,
}

impl Core {
    pub(super) fn event(&mut self, ev: PeerEvent, now: Now) {
        let peer = ev.peer();
        if !self.peers.contains_key(&peer) {
            // A removed peer's session, reporting what it did before it
            // heard: its routes must not come back into the RIB.
            if let PeerEvent::Ended { peer } = ev {
                if let Some(r) = self.retired.get_mut(&peer) {
                    r.session_ended = true;
                }
                retire_done(&mut self.rib, &mut self.retired, peer);
            }
            return;
        }
        match ev {
            PeerEvent::State { peer, state } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    e.state = state;
                }
            }
            PeerEvent::Malformed { peer, counts } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    e.malformed.add(&counts);
                }
            }
            PeerEvent::Problem { peer, message } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    e.last_error = Some(message);
                }
            }
            PeerEvent::Up {
                peer,
                negotiated,
                peer_router_id,
                peer_asn,
                local,
                remote,
                interface,
            } => {
                let session = Established {
                    router_id: peer_router_id,
                    asn: peer_asn,
                    local,
                    remote,
                    interface,
                };
                self.peer_up(peer, *negotiated, session, now);
            }
            PeerEvent::Routes { peer, changes } => {
                // Applied now, decided and advertised once per pass.
                let _ = self.rib.stage(changes);
                self.check_max_prefixes(peer);
            }
            PeerEvent::EndOfRib { peer, family } => self.end_of_rib(peer, family),
            PeerEvent::RouteRefresh {
                peer,
                family,
                subtype,
            } => {
                // RFC 2918 §4 / RFC 7313 §4: a request (0) gets everything again.
                if subtype == 0 {
                    self.resend(peer, family);
                }
            }
            PeerEvent::Down { peer, reason } => {
                self.peer_down(peer, reason, now);
                self.update_track_paths();
            }
            // A session of a peer still configured ends only when the
            // core stops it; nothing to do.
            PeerEvent::Ended { .. } => {}
        }
    }

    fn peer_up(&mut self, peer: PeerIndex, negotiated: Negotiated, session: Established, now: Now) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.state = State::Established;
        entry.established_at = Some(now.unix_secs);
        entry.established_count += 1;
        entry.asn = session.asn;
        entry.eor.clear();
        // Our next hops on this session, both families (RFC 2545 §3,
        // RFC 4760 §3, RFC 8950): `rib::local`.
        let local = crate::rib::local::pick(
            session.local.ip(),
            session.remote.ip(),
            &session.interface,
            entry.cfg.options.next_hop_v6,
        );
        if let Some(mut info) = self.rib.peer(peer).cloned() {
            info.router_id = session.router_id;
            info.peer_as = session.asn;
            info.local_v4 = local.v4;
            info.local_v6 = local.v6;
            info.local_link_local = local.link_local;
            let _ = self.rib.set_peer_info(peer, info);
        }
        let on = |set: &BTreeSet<Family>| Family::ALL.map(|f| set.contains(&f));
        let out = OutSession {
            families: on(&negotiated.families),
            extended_next_hop_v4: negotiated.extended_next_hop_v4,
            add_path_tx: on(&negotiated.context.add_path_tx),
            add_path_send: entry.cfg.options.add_path.send_paths,
        };
        entry.adj_out.start(&mut self.rib, out);
        // RFC 4724 §4.2: families the restarted peer no longer preserves
        // forwarding for lose their stale routes now.
        let preserved: BTreeSet<Family> = negotiated
            .peer_graceful_restart
            .as_ref()
            .map(|gr| {
                gr.families
                    .iter()
                    .filter(|(_, f)| *f)
                    .map(|(fam, _)| *fam)
                    .collect()
            })
            .unwrap_or_default();
        let dropped: Vec<Family> = entry
            .stale_families
            .iter()
            .filter(|f| !preserved.contains(f))
            .copied()
            .collect();
        for f in &dropped {
            entry.stale_families.remove(f);
        }
        entry.negotiated = Some(negotiated);
        for f in dropped {
            self.queue_drain(peer, Drained::Stale(f));
        }
        self.update_track_paths();
        if !self.deferring {
            self.advertise_all(peer);
        }
    }

    fn peer_down(&mut self, peer: PeerIndex, reason: DownReason, now: Now) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.state = State::Idle;
        entry.established_at = None;
        entry.generation += 1;
        entry.eor.clear();
        entry.adj_out.clear(&mut self.rib);
        let negotiated = entry.negotiated.take();
        // RFC 4724 §4.2: when the session ends without a NOTIFICATION (the
        // connection was lost, or a restarted peer opened a new one), keep
        // the routes of a peer that announced graceful restart, stale, for
        // its restart time. A NOTIFICATION either way (hold timer expiry
        // included) ends the session for good (RFC 8538's N bit would
        // change that; manul does not announce it).
        let graceful = matches!(reason, DownReason::ConnectionLost | DownReason::Collision);
        let gr = negotiated
            .as_ref()
            .and_then(|n| n.peer_graceful_restart.clone());
        match gr {
            Some(gr) if graceful && gr.restart_time > 0 => {
                let families = negotiated.map(|n| n.families).unwrap_or_default();
                for f in &families {
                    let _ = self.rib.mark_stale(peer, *f);
                }
                entry.stale_families = families;
                let wait = std::time::Duration::from_secs(u64::from(gr.restart_time))
                    .min(self.cfg.graceful_restart.max_stale_time);
                tracing::info!(peer = %entry.cfg.address, "session lost; keeping its routes for {wait:?} (graceful restart)");
                let timer = Timer::Stale {
                    peer,
                    generation: entry.generation,
                };
                self.out.push(Output::SetTimer {
                    timer,
                    at: now.instant + wait,
                });
            }
            _ => {
                entry.stale_families.clear();
                self.queue_drain(peer, Drained::All { forget: false });
            }
        }
    }

    /// RFC 4724 §4.2: the stale timer of a restarting peer expired before
    /// its End-of-RIB: its routes still stale go.
    pub(super) fn stale_timer(&mut self, peer: PeerIndex, generation: u64) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        if entry.generation != generation || entry.stale_families.is_empty() {
            return;
        }
        tracing::info!(peer = %entry.cfg.address, "graceful restart time over: removing stale routes");
        for f in std::mem::take(&mut entry.stale_families) {
            self.queue_drain(peer, Drained::Stale(f));
        }
    }

    /// RFC 4724 §4.2: a restarting peer's End-of-RIB for a family ends its
    /// restart there: the routes it did not send again go. §4.1: while we
    /// restart, the last awaited End-of-RIB ends our deferral.
    fn end_of_rib(&mut self, peer: PeerIndex, family: Family) {
        if let Some(e) = self.peers.get_mut(&peer) {
            e.eor.insert(family);
            if e.stale_families.remove(&family) {
                self.queue_drain(peer, Drained::Stale(family));
            }
        }
        if self.deferring && self.all_eor_received() {
            self.end_deferral();
        }
    }

    /// RFC 4486 §4: past its maximum number of prefixes, a session ends
    /// with Cease / Maximum Number of Prefixes Reached.
    fn check_max_prefixes(&mut self, peer: PeerIndex) {
        let Some(entry) = self.peers.get(&peer) else {
            return;
        };
        let Some(max) = entry.cfg.options.max_prefixes else {
            return;
        };
        let count = self.rib.adj_in_len(peer);
        if count > max as usize && entry.state == State::Established {
            tracing::warn!(peer = %entry.cfg.address, count, max, "maximum number of prefixes reached");
            // AFI, SAFI and the limit as data.
            let mut data = vec![0, 1, 1];
            data.extend_from_slice(&max.to_be_bytes());
            let n = Notification::new(code::CEASE, cease::MAX_PREFIXES_REACHED, data);
            self.out.push(Output::ToPeer {
                peer,
                command: PeerCommand::Reset(n),
            });
        }
    }

    /// Whether every established peer we wait for has sent End-of-RIB for
    /// each of its families. RFC 4724 §4.1: a restarting speaker waits for
    /// its peers' End-of-RIB "excluding the ones with the Restart State bit
    /// set in the received capability and excluding the ones that do not
    /// advertise the graceful restart capability": neither will send one
    /// before it has ours.
    fn all_eor_received(&self) -> bool {
        self.peers.values().all(|e| {
            let Some(n) = e.negotiated.as_ref() else {
                return true;
            };
            let awaited = e.state == State::Established
                && n.peer_graceful_restart
                    .as_ref()
                    .is_some_and(|gr| !gr.restart_state);
            !awaited || n.families.iter().all(|f| e.eor.contains(f))
        })
    }

    /// RFC 4724 §4.1: after the peers' End-of-RIB (or the deferral timer),
    /// run the decision process and advertise, then send our End-of-RIB.
    pub(super) fn end_deferral(&mut self) {
        if !self.deferring {
            return;
        }
        self.deferring = false;
        let established: Vec<PeerIndex> = self
            .peers
            .iter()
            .filter(|(_, e)| e.state == State::Established)
            .map(|(i, _)| *i)
            .collect();
        for peer in established {
            self.advertise_all(peer);
        }
    }
}
