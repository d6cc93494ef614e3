//! The speaker's core, without I/O: a state machine over the RIB, every
//! peer's Adj-RIB-Out and what the speaker knows of each session.
//!
//! ```text
//!  API calls, peers' events,        +------+   sessions to start/stop, commands
//!  timer expiries, connections ---> | Core | -> to sessions (UPDATEs, End-of-RIB,
//!  (Input, with the time)           +------+   Cease), timers, listener keys,
//!                                      |        best-path and peer changes
//!                                     Rib       (Output)
//! ```
//!
//! [`Core::handle`] takes one [`Input`] at a time; the changes it stages in
//! the RIB are decided and advertised once per pass ([`Core::end_pass`]),
//! so that a flood of UPDATEs costs one decision and one advertisement per
//! batch of them, not per message. What to do is queued as [`Output`]s for
//! [`Core::take_outputs`]. Time is passed in ([`Now`]); timers are asked
//! for ([`Output::SetTimer`]) and reported back ([`Input::Timer`]).
//! `crate::speaker::driver` runs it on tokio; the replay tests run it from
//! a text file.
//!
//! - `peers`: peer lifecycle (add, change, remove, incoming connections)
//! - `session`: sessions up and down, graceful restart (RFC 4724),
//!   End-of-RIB, max-prefix (RFC 4486), route refresh (RFC 2918, 7313)
//! - `drain`: removing a peer's paths a pass's worth at a time
//! - `distribute`: what each peer is sent, and best-path subscribers
//! - `status`: what status shows, and peer-change subscribers

mod distribute;
mod drain;
mod event;
mod peers;
mod session;
mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use event::{Input, Now, Output, Timer};

use crate::fsm::State;
use crate::rib::{AdjRibOut, BestChange, PeerIndex, Rib, RibChange, RibConfig};
use crate::speaker::{PeerConfig, PeerError, PeerStatus, SpeakerConfig};
use crate::types::Family;
use crate::wire::negotiate::Negotiated;
use crate::wire::{Origin, PathAttributes};
use drain::Drain;

/// Best-path changes gathered before they are advertised, at most (more
/// than this only when a single input brings more).
pub const MAX_CHANGES_PER_PASS: usize = 16384;
/// How often, at most, attribute sets nobody uses any more are dropped
/// (handles held outside the RIB — reported changes, UPDATEs being sent —
/// keep an unused set alive until the next collection).
const GC_EVERY: Duration = Duration::from_secs(5);

/// What the core knows of one peer.
#[derive(Debug)]
struct PeerEntry {
    cfg: PeerConfig,
    adj_out: AdjRibOut,
    state: State,
    /// Unix seconds when the session reached Established.
    established_at: Option<u64>,
    /// Times the session reached Established (flaps + 1 while up).
    established_count: u64,
    negotiated: Option<Negotiated>,
    /// Peer AS learned from OPEN (dynamic peers).
    asn: u32,
    last_error: Option<String>,
    /// Bumped on each session loss; a stale timer of an older one is void.
    generation: u64,
    stale_families: BTreeSet<Family>,
    /// End-of-RIB received this session (graceful restart deferral).
    eor: BTreeSet<Family>,
    dynamic: bool,
    /// Malformed UPDATEs received (RFC 7606), over every session.
    malformed: crate::speaker::MalformedCounts,
}

/// The speaker's core. See the module documentation.
#[derive(Debug)]
pub struct Core {
    cfg: SpeakerConfig,
    rib: Rib,
    /// By index, so that every pass visits peers in the same order.
    peers: BTreeMap<PeerIndex, PeerEntry>,
    by_addr: HashMap<IpAddr, PeerIndex>,
    /// Removed peers whose session may still report (until
    /// [`crate::session::events::PeerEvent::Ended`]) or whose paths are
    /// still being removed: their index is not given to another peer
    /// before both are over.
    retired: HashMap<PeerIndex, Retired>,
    /// Restarting (RFC 4724 §4.1): hold our advertisements back.
    deferring: bool,
    last_gc: Instant,
    /// Paths of peers that went away (or whose graceful restart ended),
    /// removed a pass's worth at a time.
    draining: VecDeque<Drain>,
    /// Someone wants best-path changes.
    watch_best: bool,
    /// Peers' status as last sent to peer subscribers; `None` while there
    /// are none (no per-pass work then).
    peers_sent: Option<HashMap<IpAddr, PeerStatus>>,
    /// Peers whose status the inputs since the last pass may have changed
    /// (their own session's events), and whether any other input came
    /// (then every peer is looked at): a pass publishes only those, plus
    /// any whose counters the pass changed, so a mesh of N peers does not
    /// build N statuses per pass ([`Core::publish_peers`]).
    status_dirty: BTreeSet<PeerIndex>,
    status_dirty_all: bool,
    out: Vec<Output>,
}

/// A removed peer on its way out.
#[derive(Debug, Default, Clone, Copy)]
struct Retired {
    session_ended: bool,
    paths_removed: bool,
}

impl Core {
    /// A core with no peers. A restarting speaker (RFC 4724 §4.1) asks
    /// for its deferral timer at once.
    pub fn new(cfg: SpeakerConfig, now: Now) -> Self {
        let mut rib_cfg = RibConfig::new(cfg.asn, cfg.router_id);
        rib_cfg.cluster_id = cfg.cluster_id;
        rib_cfg.multipath = cfg.multipath;
        let deferring = cfg.graceful_restart.enabled && cfg.graceful_restart.restarting;
        let mut out = Vec::new();
        if deferring {
            out.push(Output::SetTimer {
                timer: Timer::Deferral,
                at: now.instant + cfg.graceful_restart.deferral,
            });
        }
        Self {
            rib: Rib::new(rib_cfg),
            cfg,
            peers: BTreeMap::new(),
            by_addr: HashMap::new(),
            retired: HashMap::new(),
            deferring,
            last_gc: now.instant,
            draining: VecDeque::new(),
            watch_best: false,
            peers_sent: None,
            status_dirty: BTreeSet::new(),
            status_dirty_all: true,
            out,
        }
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// Take one input. Only peer changes can be refused.
    pub fn handle(&mut self, input: Input, now: Now) -> Result<(), PeerError> {
        if self.peers_sent.is_some() {
            match &input {
                Input::Peer(ev) => {
                    self.status_dirty.insert(ev.peer());
                }
                _ => self.status_dirty_all = true,
            }
        }
        match input {
            Input::AddPeer(cfg) => self.add_peer(cfg, false).map(drop),
            Input::UpdatePeer(cfg) => self.update_peer(cfg),
            Input::RemovePeer(addr) => self.remove_peer(addr),
            Input::Originate {
                prefix,
                communities,
                large_communities,
            } => {
                let attrs = PathAttributes {
                    origin: Some(Origin::Igp),
                    as_path: Some(Default::default()),
                    communities,
                    large_communities,
                    ..Default::default()
                };
                let change = RibChange::Originate {
                    prefix,
                    attrs,
                    next_hop: None,
                };
                // Decided and advertised with the pass, like a peer's routes.
                let _ = self.rib.stage(vec![change]);
                Ok(())
            }
            Input::Withdraw(prefix) => {
                let change = RibChange::WithdrawLocal { prefix };
                let _ = self.rib.stage(vec![change]);
                Ok(())
            }
            Input::Incoming(remote) => {
                self.incoming(remote);
                Ok(())
            }
            Input::Peer(ev) => {
                self.event(ev, now);
                Ok(())
            }
            Input::Timer(timer) => {
                self.timer(timer);
                Ok(())
            }
        }
    }

    /// Whether this pass holds enough changes: take no more peer events
    /// before [`Core::end_pass`] (a full table arriving at once is
    /// advertised in slices, not kept whole).
    pub fn pass_full(&self) -> bool {
        self.rib.pending() >= MAX_CHANGES_PER_PASS
    }

    /// End a pass: decide what the inputs since the last one changed,
    /// advertise it, tell subscribers. Whether anything was advertised
    /// (the pass did work: a driver lets others run before the next).
    pub fn end_pass(&mut self, now: Now) -> bool {
        let decided = self.rib.take_decided();
        let advertised = !decided.is_empty();
        if advertised {
            self.distribute(&decided);
        }
        // What the pass dropped goes once it is advertised.
        self.rib.settle(decided);
        if advertised && now.instant.duration_since(self.last_gc) >= GC_EVERY {
            self.rib.gc();
            self.last_gc = now.instant;
        }
        if self.peers_sent.is_some() {
            self.publish_peers();
        }
        advertised
    }

    /// Move the outputs queued so far to the end of `into`, in order.
    pub fn take_outputs(&mut self, into: &mut Vec<Output>) {
        into.append(&mut self.out);
    }

    /// Whether anything is queued in [`Core::take_outputs`].
    pub fn has_outputs(&self) -> bool {
        !self.out.is_empty()
    }

    /// Stop every session: without Cease if `graceful` (peers keep our
    /// routes, RFC 4724), else Cease / Administrative Shutdown. The core
    /// has no peers after.
    pub fn stop_all(&mut self, graceful: bool) {
        self.status_dirty_all = true;
        let notify = (!graceful).then(|| "speaker shutting down".to_string());
        for (peer, _) in std::mem::take(&mut self.peers) {
            self.out.push(Output::StopSession {
                peer,
                notify: notify.clone(),
            });
        }
        self.by_addr.clear();
    }

    /// The Loc-RIB: every prefix with its best path and next hops.
    pub fn loc_rib(&self) -> Vec<BestChange> {
        self.rib.loc_rib()
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn route_count(&self) -> usize {
        self.rib.len()
    }

    /// The RIB, to look at.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// Whether peers' paths are still being removed ([`Core::drain_some`]).
    pub fn draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// The RIB reports changes of a prefix's other paths only while some
    /// established peer is sent more than best paths (ADD-PATH).
    fn update_track_paths(&mut self) {
        let on = self
            .peers
            .values()
            .any(|e| e.state == State::Established && e.adj_out.sends_paths());
        self.rib.set_track_paths(on);
    }

    /// A timer expired.
    fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::Stale { peer, generation } => self.stale_timer(peer, generation),
            Timer::Deferral => self.end_deferral(),
        }
    }
}

/// A removed peer whose session has ended and whose paths are gone is
/// forgotten by the RIB (its index may then be reused).
fn retire_done(rib: &mut Rib, retired: &mut HashMap<PeerIndex, Retired>, peer: PeerIndex) {
    if retired
        .get(&peer)
        .is_some_and(|r| r.session_ended && r.paths_removed)
    {
        retired.remove(&peer);
        rib.forget_peer(peer);
    }
}
