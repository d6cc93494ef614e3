//! The speaker core: one task that owns the RIB and every peer's
//! Adj-RIB-Out, takes events from peer tasks and commands from the API,
//! and sends each peer what changed for it.
//!
//! Events are taken in batches (everything queued, up to a bound) so a
//! flood of UPDATEs costs one decision pass and one advertisement pass per
//! batch, not per message.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::fsm::{DownReason, State};
use crate::policy::Policy;
use crate::rib::{
    AdjRibOut, BestChange, Decided, PeerIndex, PeerInfo, Rib, RibChange, RibConfig, RouteKey,
};
use crate::session::events::{PeerCommand, PeerEvent};
use crate::session::peer::{LocalIdentity, PeerTask};
use crate::session::socket;
use crate::speaker::status::{CapabilitySummary, PeerChange, PeerStatus, unix_now};
use crate::speaker::{ExportMode, ImportMode, PeerConfig, PeerError, SpeakerConfig};
use crate::types::Family;
use crate::wire::negotiate::Negotiated;
use crate::wire::notification::{cease, code};
use crate::wire::{Community, LargeCommunity, Notification, Origin, PathAttributes};

/// Events handled per batch at most, so API calls are never starved.
const BATCH: usize = 256;
/// Best-path changes gathered before they are advertised, at most (more
/// than this only when a single event brings more).
const MAX_CHANGES_PER_PASS: usize = 16384;
/// How often, at most, attribute sets nobody uses any more are dropped
/// (handles held outside the RIB — reported changes, UPDATEs being sent —
/// keep an unused set alive until the next collection).
const GC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Queue between peer tasks and the core; full = peers stop reading their
/// sockets (TCP backpressure) until the core catches up.
const EVENT_QUEUE: usize = 4;

/// Commands from the [`crate::speaker::Speaker`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    AddPeer(PeerConfig, oneshot::Sender<Result<(), PeerError>>),
    UpdatePeer(PeerConfig, oneshot::Sender<Result<(), PeerError>>),
    RemovePeer(IpAddr, oneshot::Sender<Result<(), PeerError>>),
    Originate {
        prefix: IpNet,
        communities: Vec<Community>,
        large_communities: Vec<LargeCommunity>,
    },
    Withdraw(IpNet),
    Subscribe(oneshot::Sender<mpsc::UnboundedReceiver<Vec<BestChange>>>),
    SubscribePeers(oneshot::Sender<mpsc::UnboundedReceiver<Vec<PeerChange>>>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Routes(oneshot::Sender<Vec<BestChange>>),
    RouteCount(oneshot::Sender<usize>),
    Incoming(TcpStream, SocketAddr),
    StaleTimeout {
        peer: PeerIndex,
        generation: u64,
    },
    DeferralOver,
    /// Stop every session. `graceful`: close without Cease so peers keep
    /// our routes (RFC 4724); otherwise Cease / Administrative Shutdown.
    Shutdown {
        graceful: bool,
        done: oneshot::Sender<()>,
    },
}

struct PeerEntry {
    cfg: PeerConfig,
    commands: mpsc::UnboundedSender<PeerCommand>,
    task: JoinHandle<()>,
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
}

pub(crate) struct Core {
    cfg: SpeakerConfig,
    local: Arc<LocalIdentity>,
    rib: Rib,
    peers: HashMap<PeerIndex, PeerEntry>,
    by_addr: HashMap<IpAddr, PeerIndex>,
    events_tx: mpsc::Sender<PeerEvent>,
    events: mpsc::Receiver<PeerEvent>,
    commands_tx: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
    subscribers: Vec<mpsc::UnboundedSender<Vec<BestChange>>>,
    /// Subscribers to peers' status changes, and what they were last sent
    /// (empty while there are none: no per-pass work then).
    peer_subscribers: Vec<mpsc::UnboundedSender<Vec<PeerChange>>>,
    peers_sent: HashMap<IpAddr, PeerStatus>,
    listeners: Vec<Arc<TcpListener>>,
    /// Restarting (RFC 4724 §4.1): hold our advertisements back.
    deferring: bool,
    last_gc: Instant,
    /// The runtime the speaker was started on: peer sessions run there, so
    /// that decoding and the RIB work in parallel (the core has a thread
    /// of its own).
    sessions: tokio::runtime::Handle,
    /// Paths of peers that went away (or whose graceful restart ended),
    /// removed a pass's worth at a time.
    draining: VecDeque<Drain>,
}

/// Stale paths of one peer still to remove.
#[derive(Debug)]
struct Drain {
    peer: PeerIndex,
    keys: Vec<RouteKey>,
    done: usize,
    /// The peer was removed: forget it in the RIB once drained.
    forget: bool,
}

/// Which of a peer's paths to drain.
#[derive(Debug, Clone, Copy)]
enum Drained {
    /// Those of a family still stale when its graceful restart ends.
    Stale(Family),
    /// All of them (marked stale first): the session ended for good, or
    /// the peer was removed (`forget`: then the RIB forgets it once they
    /// are gone; until then they are decided with what it knows of it).
    All { forget: bool },
}

/// Queue the removal of some of `peer`'s paths, a pass's worth at a time.
fn queue_drain(rib: &mut Rib, draining: &mut VecDeque<Drain>, peer: PeerIndex, what: Drained) {
    let (keys, forget) = match what {
        Drained::Stale(family) => (rib.stale_keys(peer, Some(family)), false),
        Drained::All { forget } => (rib.retire(peer, None), forget),
    };
    let keys = keys.unwrap_or_default();
    if !keys.is_empty() || forget {
        draining.push_back(Drain {
            peer,
            keys,
            done: 0,
            forget,
        });
    }
}

fn import_policy(mode: ImportMode) -> Policy {
    match mode {
        ImportMode::All => Policy::accept_all(),
        ImportMode::None => Policy::reject_all(),
    }
}

fn export_policy(mode: ExportMode) -> Policy {
    match mode {
        ExportMode::Originated => Policy::node_default_export(),
        ExportMode::All => Policy::accept_all(),
        ExportMode::None => Policy::reject_all(),
    }
}

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
    pub(crate) fn new(
        cfg: SpeakerConfig,
        listeners: Vec<Arc<TcpListener>>,
        commands_tx: mpsc::UnboundedSender<Command>,
        commands: mpsc::UnboundedReceiver<Command>,
        sessions: tokio::runtime::Handle,
    ) -> Self {
        let mut rib_cfg = RibConfig::new(cfg.asn, cfg.router_id);
        rib_cfg.cluster_id = cfg.cluster_id;
        rib_cfg.multipath = cfg.multipath;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let deferring = cfg.graceful_restart.enabled && cfg.graceful_restart.restarting;
        Self {
            local: Arc::new(LocalIdentity::of(&cfg)),
            rib: Rib::new(rib_cfg),
            cfg,
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            events_tx,
            events,
            commands_tx,
            commands,
            subscribers: Vec::new(),
            peer_subscribers: Vec::new(),
            peers_sent: HashMap::new(),
            listeners,
            deferring,
            last_gc: Instant::now(),
            sessions,
            draining: VecDeque::new(),
        }
    }

    /// Run until shut down, or until `alive` is dropped (the sessions'
    /// runtime went away).
    pub(crate) async fn run(mut self, mut alive: oneshot::Receiver<()>) {
        if self.deferring {
            let tx = self.commands_tx.clone();
            let deferral = self.cfg.graceful_restart.deferral;
            tokio::spawn(async move {
                tokio::time::sleep(deferral).await;
                let _ = tx.send(Command::DeferralOver);
            });
        }
        loop {
            tokio::select! {
                biased;
                _ = &mut alive => {
                    self.shutdown(false).await;
                    return;
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { graceful, done }) => {
                        self.shutdown(graceful).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        self.shutdown(false).await;
                        return;
                    }
                },
                ev = self.events.recv() => {
                    let Some(ev) = ev else { return };
                    self.event(ev);
                    for _ in 1..BATCH {
                        // Bound what one pass holds: a full table arriving
                        // at once is advertised in slices, not kept whole.
                        if self.rib.pending() >= MAX_CHANGES_PER_PASS {
                            break;
                        }
                        match self.events.try_recv() {
                            Ok(ev) => self.event(ev),
                            Err(_) => break,
                        }
                    }
                    // Retired paths go while routes keep arriving too.
                    self.drain_some();
                }
                () = std::future::ready(()), if !self.draining.is_empty() => {
                    self.drain_some();
                }
            }
            let decided = self.rib.take_decided();
            let advertised = !decided.is_empty();
            if advertised {
                self.distribute(&decided);
            }
            // What the pass dropped goes once it is advertised.
            self.rib.settle(decided);
            if advertised {
                if self.last_gc.elapsed() >= GC_EVERY {
                    self.rib.gc();
                    self.last_gc = Instant::now();
                }
                // A pass is CPU work with no await in it; let the tasks it
                // woke (status replies, peers' writers) run before the next,
                // or a busy core would starve whatever shares its thread.
                tokio::task::yield_now().await;
            }
            if !self.peer_subscribers.is_empty() {
                self.publish_peers();
            }
        }
    }

    /// Send peer subscribers the peers whose status changed since last
    /// sent, and the peers removed since.
    fn publish_peers(&mut self) {
        self.peer_subscribers.retain(|s| !s.is_closed());
        if self.peer_subscribers.is_empty() {
            self.peers_sent = HashMap::new();
            return;
        }
        let mut changes = Vec::new();
        let mut seen = HashMap::with_capacity(self.peers.len());
        for status in self.status() {
            let address = status.address;
            if self.peers_sent.get(&address) != Some(&status) {
                changes.push(PeerChange::Changed(status.clone()));
            }
            seen.insert(address, status);
        }
        let mut removed: Vec<IpAddr> = self
            .peers_sent
            .keys()
            .filter(|a| !seen.contains_key(a))
            .copied()
            .collect();
        removed.sort();
        changes.extend(removed.into_iter().map(PeerChange::Removed));
        self.peers_sent = seen;
        if changes.is_empty() {
            return;
        }
        if let Some((last, rest)) = self.peer_subscribers.split_last() {
            for s in rest {
                let _ = s.send(changes.clone());
            }
            let _ = last.send(changes);
        }
    }

    /// A new peer subscriber: the others get what changed so far, then it
    /// gets every peer as it is now.
    fn subscribe_peers(&mut self) -> mpsc::UnboundedReceiver<Vec<PeerChange>> {
        self.publish_peers();
        let (tx, rx) = mpsc::unbounded_channel();
        let current = self.status();
        let _ = tx.send(current.iter().cloned().map(PeerChange::Changed).collect());
        self.peers_sent = current.into_iter().map(|s| (s.address, s)).collect();
        self.peer_subscribers.push(tx);
        rx
    }

    /// Remove up to a pass's worth of queued stale paths (staged; taken
    /// with the pass's other changes).
    fn drain_some(&mut self) {
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
                    self.rib.forget_peer(d.peer);
                }
                self.draining.pop_front();
            }
        }
    }

    // --- peers ---------------------------------------------------------------

    fn add_peer(&mut self, cfg: PeerConfig, dynamic: bool) -> Result<PeerIndex, PeerError> {
        self.add_peer_after(cfg, dynamic, None)
    }

    /// Add a peer whose session starts only once `previous` (the task of
    /// the session it replaces) has ended, so the old session's Cease
    /// reaches the peer before the new session's OPEN.
    fn add_peer_after(
        &mut self,
        cfg: PeerConfig,
        dynamic: bool,
        previous: Option<JoinHandle<()>>,
    ) -> Result<PeerIndex, PeerError> {
        if self.by_addr.contains_key(&cfg.address) {
            return Err(PeerError::Exists(cfg.address));
        }
        let local_as = cfg.options.local_asn.unwrap_or(self.cfg.asn);
        let mut info = PeerInfo::new(cfg.address, Ipv4Addr::UNSPECIFIED, cfg.asn, local_as);
        info.rr_client = cfg.options.route_reflector_client;
        info.next_hop_self = cfg.options.next_hop_self;
        let index = self.rib.add_peer(
            info,
            import_policy(cfg.options.import),
            export_policy(cfg.options.export),
        );
        if let Some(pw) = &cfg.options.password {
            for l in &self.listeners {
                if let Err(e) = socket::set_md5_key(&**l, cfg.address, None, pw.as_bytes()) {
                    tracing::warn!(peer = %cfg.address, "TCP-MD5 key on listener: {e}");
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = PeerTask::new(
            index,
            cfg.clone(),
            self.local.clone(),
            rx,
            self.events_tx.clone(),
        );
        let handle = self.sessions.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            task.run().await;
        });
        self.by_addr.insert(cfg.address, index);
        self.peers.insert(
            index,
            PeerEntry {
                asn: cfg.asn,
                cfg,
                commands: tx,
                task: handle,
                adj_out: AdjRibOut::new(index),
                state: State::Idle,
                established_at: None,
                established_count: 0,
                negotiated: None,
                last_error: None,
                generation: 0,
                stale_families: BTreeSet::new(),
                eor: BTreeSet::new(),
                dynamic,
            },
        );
        Ok(index)
    }

    /// Remove a peer; returns the task of its session, which ends once it
    /// has sent its Cease and closed.
    fn remove_peer(&mut self, addr: IpAddr) -> Result<Option<JoinHandle<()>>, PeerError> {
        let index = self.by_addr.remove(&addr).ok_or(PeerError::Unknown(addr))?;
        let mut task = None;
        if let Some(mut entry) = self.peers.remove(&index) {
            let _ = entry.commands.send(PeerCommand::Stop {
                notify: Some("peer removed from configuration".into()),
            });
            entry.adj_out.clear();
            if entry.cfg.options.password.is_some() {
                for l in &self.listeners {
                    let _ = socket::set_md5_key(&**l, addr, None, &[]);
                }
            }
            task = Some(entry.task);
        }
        let what = Drained::All { forget: true };
        queue_drain(&mut self.rib, &mut self.draining, index, what);
        Ok(task)
    }

    fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), PeerError> {
        let index = *self
            .by_addr
            .get(&cfg.address)
            .ok_or(PeerError::Unknown(cfg.address))?;
        let Some(entry) = self.peers.get_mut(&index) else {
            return Err(PeerError::Unknown(cfg.address));
        };
        if entry.cfg.needs_reset(&cfg) {
            let dynamic = entry.dynamic;
            let previous = self.remove_peer(cfg.address)?;
            return self.add_peer_after(cfg, dynamic, previous).map(drop);
        }
        let import_changed = entry.cfg.options.import != cfg.options.import;
        let previous_export = self
            .rib
            .set_policies(
                index,
                import_policy(cfg.options.import),
                export_policy(cfg.options.export),
            )
            .ok();
        if let Some(mut info) = self.rib.peer(index).cloned() {
            info.rr_client = cfg.options.route_reflector_client;
            info.next_hop_self = cfg.options.next_hop_self;
            let _ = self.rib.set_peer_info(index, info);
        }
        entry.cfg = cfg.clone();
        let _ = entry.commands.send(PeerCommand::Reconfigure(Box::new(cfg)));
        if entry.state == State::Established {
            if import_changed {
                if let Some(n) = &entry.negotiated {
                    for f in &n.families {
                        let _ = entry.commands.send(PeerCommand::RequestRefresh(*f));
                    }
                }
            }
            if !self.deferring {
                let out = entry.adj_out.sync(&mut self.rib, previous_export.as_ref());
                if !out.is_empty() {
                    let _ = entry.commands.send(PeerCommand::Send(out));
                }
            }
        }
        Ok(())
    }

    // --- commands --------------------------------------------------------------

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::AddPeer(cfg, reply) => {
                let _ = reply.send(self.add_peer(cfg, false).map(drop));
            }
            Command::UpdatePeer(cfg, reply) => {
                let _ = reply.send(self.update_peer(cfg));
            }
            Command::RemovePeer(addr, reply) => {
                let _ = reply.send(self.remove_peer(addr).map(drop));
            }
            Command::Originate {
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
            }
            Command::Withdraw(prefix) => {
                let change = RibChange::WithdrawLocal { prefix };
                let _ = self.rib.stage(vec![change]);
            }
            Command::Subscribe(reply) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let snapshot = self.rib.loc_rib();
                if !snapshot.is_empty() {
                    let _ = tx.send(snapshot);
                }
                self.subscribers.push(tx);
                let _ = reply.send(rx);
            }
            Command::SubscribePeers(reply) => {
                let _ = reply.send(self.subscribe_peers());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Routes(reply) => {
                let _ = reply.send(self.rib.loc_rib());
            }
            Command::RouteCount(reply) => {
                let _ = reply.send(self.rib.len());
            }
            Command::Incoming(stream, remote) => self.incoming(stream, remote),
            Command::StaleTimeout { peer, generation } => {
                let Some(entry) = self.peers.get_mut(&peer) else {
                    return;
                };
                if entry.generation != generation || entry.stale_families.is_empty() {
                    return;
                }
                tracing::info!(peer = %entry.cfg.address, "graceful restart time over: removing stale routes");
                for f in std::mem::take(&mut entry.stale_families) {
                    queue_drain(&mut self.rib, &mut self.draining, peer, Drained::Stale(f));
                }
            }
            Command::DeferralOver => self.end_deferral(),
            // Handled by `run` before it gets here.
            Command::Shutdown { .. } => {}
        }
    }

    /// A connection from `remote`: to its configured peer, or a new dynamic
    /// peer from a matching listen range; otherwise closed.
    fn incoming(&mut self, stream: TcpStream, remote: SocketAddr) {
        let addr = match remote.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if let Some(entry) = self.by_addr.get(&addr).and_then(|i| self.peers.get(i)) {
            let _ = entry.commands.send(PeerCommand::Incoming(stream));
            return;
        }
        let Some(range) = self
            .cfg
            .listen_ranges
            .iter()
            .find(|r| r.range.contains(&addr))
        else {
            tracing::debug!(%remote, "connection from an unknown address refused");
            return;
        };
        let mut options = range.options.clone();
        options.passive = true;
        let cfg = PeerConfig {
            address: addr,
            port: remote.port(),
            asn: range.asn.unwrap_or(0),
            options,
        };
        match self.add_peer(cfg, true) {
            Ok(index) => {
                if let Some(entry) = self.peers.get(&index) {
                    let _ = entry.commands.send(PeerCommand::Incoming(stream));
                }
            }
            Err(e) => tracing::warn!(%remote, "dynamic peer: {e}"),
        }
    }

    // --- events from peers ----------------------------------------------------

    fn event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::State { peer, state } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    e.state = state;
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
                remote: _,
            } => self.peer_up(peer, *negotiated, peer_router_id, peer_asn, local),
            PeerEvent::Routes {
                peer,
                changes: routes,
            } => {
                // Applied now, decided and advertised once per pass.
                let _ = self.rib.stage(routes);
                self.check_max_prefixes(peer);
            }
            PeerEvent::EndOfRib { peer, family } => {
                if let Some(e) = self.peers.get_mut(&peer) {
                    e.eor.insert(family);
                    if e.stale_families.remove(&family) {
                        queue_drain(
                            &mut self.rib,
                            &mut self.draining,
                            peer,
                            Drained::Stale(family),
                        );
                    }
                }
                if self.deferring && self.all_eor_received() {
                    self.end_deferral();
                }
            }
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
            PeerEvent::Down { peer, reason } => self.peer_down(peer, reason),
        }
    }

    fn peer_up(
        &mut self,
        peer: PeerIndex,
        negotiated: Negotiated,
        peer_router_id: Ipv4Addr,
        peer_asn: u32,
        local: SocketAddr,
    ) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.state = State::Established;
        entry.established_at = Some(unix_now());
        entry.established_count += 1;
        entry.asn = peer_asn;
        entry.eor.clear();
        if let Some(mut info) = self.rib.peer(peer).cloned() {
            info.router_id = peer_router_id;
            info.peer_as = peer_asn;
            match local.ip() {
                IpAddr::V4(v4) => info.local_v4 = Some(v4),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => info.local_v4 = Some(v4),
                    None => info.local_v6 = Some(v6),
                },
            }
            let _ = self.rib.set_peer_info(peer, info);
        }
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
        for f in dropped {
            entry.stale_families.remove(&f);
            queue_drain(&mut self.rib, &mut self.draining, peer, Drained::Stale(f));
        }
        let families = negotiated.families.clone();
        entry.negotiated = Some(negotiated);
        if !self.deferring {
            let out = entry.adj_out.sync(&mut self.rib, None);
            if !out.is_empty() {
                let _ = entry.commands.send(PeerCommand::Send(out));
            }
            for f in families {
                let _ = entry.commands.send(PeerCommand::EndOfRib(f));
            }
        }
    }

    fn peer_down(&mut self, peer: PeerIndex, reason: DownReason) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.state = State::Idle;
        entry.established_at = None;
        entry.generation += 1;
        entry.eor.clear();
        entry.adj_out.clear();
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
                let (tx, generation) = (self.commands_tx.clone(), entry.generation);
                tracing::info!(peer = %entry.cfg.address, "session lost; keeping its routes for {wait:?} (graceful restart)");
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(Command::StaleTimeout { peer, generation });
                });
            }
            _ => {
                entry.stale_families.clear();
                let what = Drained::All { forget: false };
                queue_drain(&mut self.rib, &mut self.draining, peer, what);
            }
        }
    }

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
            // RFC 4486 §4: Cease / Maximum Number of Prefixes Reached, with
            // AFI, SAFI and the limit as data.
            let mut data = vec![0, 1, 1];
            data.extend_from_slice(&max.to_be_bytes());
            let n = Notification::new(code::CEASE, cease::MAX_PREFIXES_REACHED, data);
            let _ = entry.commands.send(PeerCommand::Reset(n));
        }
    }

    /// Resend everything for a family to one peer (route refresh).
    fn resend(&mut self, peer: PeerIndex, family: Family) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        let enhanced = entry
            .negotiated
            .as_ref()
            .is_some_and(|n| n.enhanced_route_refresh);
        if enhanced {
            let _ = entry
                .commands
                .send(PeerCommand::RefreshBorder { family, subtype: 1 });
        }
        entry.adj_out.clear();
        let out = entry.adj_out.sync(&mut self.rib, None);
        if !out.is_empty() {
            let _ = entry.commands.send(PeerCommand::Send(out));
        }
        if enhanced {
            let _ = entry
                .commands
                .send(PeerCommand::RefreshBorder { family, subtype: 2 });
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
    fn end_deferral(&mut self) {
        if !self.deferring {
            return;
        }
        self.deferring = false;
        for entry in self.peers.values_mut() {
            if entry.state != State::Established {
                continue;
            }
            let out = entry.adj_out.sync(&mut self.rib, None);
            if !out.is_empty() {
                let _ = entry.commands.send(PeerCommand::Send(out));
            }
            for f in entry.negotiated.iter().flat_map(|n| n.families.iter()) {
                let _ = entry.commands.send(PeerCommand::EndOfRib(*f));
            }
        }
    }

    /// Send each established peer its part of `decided`; tell subscribers.
    fn distribute(&mut self, decided: &Decided) {
        if !self.deferring {
            for entry in self.peers.values_mut() {
                if entry.state != State::Established {
                    continue;
                }
                let out = entry.adj_out.apply(&mut self.rib, decided);
                if !out.is_empty() {
                    let _ = entry.commands.send(PeerCommand::Send(out));
                }
            }
        }
        self.subscribers.retain(|s| !s.is_closed());
        if self.subscribers.is_empty() {
            return;
        }
        let changes = self.rib.best_changes(decided);
        if let Some((last, rest)) = self.subscribers.split_last() {
            for s in rest {
                let _ = s.send(changes.clone());
            }
            let _ = last.send(changes);
        }
    }

    fn status(&self) -> Vec<PeerStatus> {
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
            })
            .collect();
        v.sort_by_key(|s| s.address);
        v
    }

    async fn shutdown(&mut self, graceful: bool) {
        let notify = (!graceful).then(|| "speaker shutting down".to_string());
        let entries: Vec<PeerEntry> = self.peers.drain().map(|(_, e)| e).collect();
        for e in &entries {
            let _ = e.commands.send(PeerCommand::Stop {
                notify: notify.clone(),
            });
        }
        // A stopping session still reports its last state changes; keep
        // taking them (and dropping them) so that none blocks on a full
        // event queue while we wait for it to end.
        for e in entries {
            let mut task = e.task;
            loop {
                tokio::select! {
                    _ = &mut task => break,
                    Some(_) = self.events.recv() => {}
                }
            }
        }
    }
}

/// Accept connections on a listener and hand them to the core.
pub(crate) async fn accept_loop(listener: Arc<TcpListener>, core: mpsc::UnboundedSender<Command>) {
    loop {
        // Ends with the core, so a stopped speaker releases its port at
        // once (a new one can bind it), not at the next connection.
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = core.closed() => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                if core.send(Command::Incoming(stream, remote)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
