//! The task that runs one peer's session: it owns the [`Fsm`], the TCP
//! connection(s) and the codec context, turns bytes into events and
//! actions into bytes, and talks to the speaker core through
//! [`ToPeerTask`] / [`PeerEvent`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::fsm::{Action, Event, Fsm, FsmConfig, State, Timers};
use crate::rib::PeerIndex;
use crate::rib::adj_out::OutUpdate;
use crate::rib::change::{RibChange, changes_from_update};
use crate::session::conn::Connection;
use crate::session::events::{PeerCommand, PeerEvent, ToPeerTask};
use crate::session::socket::{self, SocketOptions};
use crate::speaker::{MalformedCounts, PeerConfig, SpeakerConfig};
use crate::types::{Family, RouterId};
use crate::wire::negotiate::{Negotiated, negotiate};
use crate::wire::notification::{cease, code};
use crate::wire::pack::{NextHop, pack_announce, pack_withdraw};
use crate::wire::{
    AddPathMode, AttrError, Capability, Context, DecodeError, DecodedUpdate, GracefulRestart,
    Message, Nlri, Notification, Open, RouteRefresh, Update, UpdateOutcome,
};

/// The refusal in a row that is logged at info: the fast retries after a
/// refusal (100 ms doubling to the ConnectRetry time, [`crate::fsm`]) are
/// six; the seventh means the peer is not just starting.
const REFUSALS_WORTH_A_LINE: u32 = 7;

/// How long a connection held back during collision resolution may take
/// to send its OPEN.
const PENDING_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The speaker-wide facts a peer task needs.
#[derive(Debug, Clone)]
pub struct LocalIdentity {
    pub router_id: RouterId,
    pub asn: u32,
    pub graceful_restart: crate::speaker::GracefulRestartConfig,
}

impl LocalIdentity {
    pub fn of(cfg: &SpeakerConfig) -> Self {
        Self {
            router_id: cfg.router_id,
            asn: cfg.asn,
            graceful_restart: cfg.graceful_restart.clone(),
        }
    }
}

/// Capabilities of our OPEN towards `peer`.
pub fn our_capabilities(local: &LocalIdentity, peer: &PeerConfig) -> Vec<Capability> {
    let asn = peer.options.local_asn.unwrap_or(local.asn);
    let mut caps: Vec<Capability> = peer
        .options
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    let families = &peer.options.families;
    // RFC 8950 §3: IPv4 unicast NLRI may carry an IPv6 next hop.
    if peer.options.extended_next_hop && families.contains(&Family::Ipv4Unicast) {
        caps.push(Capability::ExtendedNextHop(vec![(
            Family::Ipv4Unicast,
            crate::types::afi::IPV6,
        )]));
    }
    // RFC 7911 §4: one tuple per family, the directions we do.
    let ap = peer.options.add_path;
    let mode = match (ap.receive, ap.send) {
        (true, true) => Some(AddPathMode::Both),
        (true, false) => Some(AddPathMode::Receive),
        (false, true) => Some(AddPathMode::Send),
        (false, false) => None,
    };
    if let Some(mode) = mode {
        caps.push(Capability::AddPath(
            families.iter().map(|f| (*f, mode)).collect(),
        ));
    }
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs(asn));
    caps.push(Capability::ExtendedMessage);
    let gr = &local.graceful_restart;
    if gr.enabled {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_state: gr.restarting,
            notification: false,
            restart_time: peer.options.restart_time.unwrap_or(gr.restart_time),
            // F bit (RFC 4724 §3): set when our forwarding state survived
            // the restart; a peer that sees it clear drops our stale routes
            // at once (§4.2).
            families: peer
                .options
                .families
                .iter()
                .map(|f| (*f, gr.restarting || gr.forwarding_preserved))
                .collect(),
        }));
    }
    caps
}

fn fsm_config(local: &LocalIdentity, peer: &PeerConfig) -> FsmConfig {
    let o = &peer.options;
    FsmConfig {
        local_asn: o.local_asn.unwrap_or(local.asn),
        // AS 0 marks a dynamic peer from a listen range without a fixed AS:
        // whatever its OPEN says is accepted.
        peer_asn: (peer.asn != 0).then_some(peer.asn),
        router_id: local.router_id,
        passive: o.passive,
        capabilities: our_capabilities(local, peer),
        timers: Timers {
            hold_time: o.hold_time,
            keepalive: o.keepalive,
            connect_retry: o.connect_retry,
            ..Timers::default()
        },
    }
}

fn socket_options(peer: &PeerConfig) -> SocketOptions {
    let o = &peer.options;
    SocketOptions {
        md5: o
            .password
            .iter()
            .map(|p| (peer.address, None, p.as_bytes().to_vec()))
            .collect(),
        gtsm_hops: o.ttl_security,
        ttl: o.multihop,
    }
}

/// A connection accepted while another one exists, waiting for its OPEN.
type Pending = JoinHandle<Option<(Connection, Open)>>;

/// One peer's session task.
pub struct PeerTask {
    index: PeerIndex,
    cfg: PeerConfig,
    local: Arc<LocalIdentity>,
    fsm: Fsm,
    conn: Option<Connection>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    pending: Option<Pending>,
    ctx: Context,
    negotiated: Option<Negotiated>,
    commands: mpsc::UnboundedReceiver<ToPeerTask>,
    events: mpsc::Sender<PeerEvent>,
    /// Routes decoded from the last read, sent to the core as one batch.
    batch: Vec<RibChange>,
    /// Malformed UPDATEs not yet reported to the core.
    malformed: MalformedCounts,
    last_state: State,
    /// Connections refused in a row (reset once a session reaches
    /// Established): the first few are logged at debug only.
    refused: u32,
}

impl std::fmt::Debug for PeerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTask")
            .field("peer", &self.cfg.address)
            .field("state", &self.fsm.state())
            .finish_non_exhaustive()
    }
}

/// Wait for an optional join handle; pending forever when there is none.
async fn join<T>(h: &mut Option<JoinHandle<T>>) -> Option<T> {
    match h {
        Some(handle) => {
            let r = handle.await.ok();
            *h = None;
            r
        }
        None => std::future::pending().await,
    }
}

async fn read_more(conn: &mut Option<Connection>) -> io::Result<usize> {
    match conn {
        Some(c) => c.read_more().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Read the OPEN of a connection held back during collision resolution.
async fn read_open(stream: TcpStream) -> Option<(Connection, Open)> {
    let mut conn = Connection::new(stream).ok()?;
    let ctx = Context::default();
    let read = async {
        loop {
            if let Some(msg) = conn.next_message(&ctx).ok()? {
                return match Message::decode(msg, &ctx).ok()? {
                    Message::Open(open) => Some(open),
                    _ => None,
                };
            }
            if conn.read_more().await.ok()? == 0 {
                return None;
            }
        }
    };
    let open = tokio::time::timeout(PENDING_OPEN_TIMEOUT, read)
        .await
        .ok()??;
    Some((conn, open))
}

impl PeerTask {
    pub fn new(
        index: PeerIndex,
        cfg: PeerConfig,
        local: Arc<LocalIdentity>,
        commands: mpsc::UnboundedReceiver<ToPeerTask>,
        events: mpsc::Sender<PeerEvent>,
    ) -> Self {
        let fsm = Fsm::new(fsm_config(&local, &cfg));
        Self {
            index,
            cfg,
            local,
            fsm,
            conn: None,
            connecting: None,
            pending: None,
            ctx: Context::default(),
            negotiated: None,
            commands,
            events,
            batch: Vec::new(),
            malformed: MalformedCounts::default(),
            last_state: State::Idle,
            refused: 0,
        }
    }

    /// Run until told to stop (or the core goes away); the last event
    /// reported is [`PeerEvent::Ended`].
    pub async fn run(mut self) {
        self.step(Event::ManualStart).await;
        loop {
            let deadline = self.fsm.next_deadline();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(ToPeerTask::Stop { notify }) => {
                        self.step(Event::ManualStop { notify }).await;
                        self.close();
                        break;
                    }
                    Some(ToPeerTask::Incoming(stream)) => self.incoming(stream).await,
                    Some(ToPeerTask::Command(cmd)) => self.command(cmd).await,
                    None => {
                        self.step(Event::ManualStop { notify: None }).await;
                        self.close();
                        break;
                    }
                },
                read = read_more(&mut self.conn) => match read {
                    Ok(0) | Err(_) => {
                        // The connection is gone: forget it before telling
                        // the machine, so a new one can take its place.
                        self.conn = None;
                        // Closed before the peer sent anything (OpenSent):
                        // its speaker is up but does not take us yet.
                        let event = if self.fsm.state() == State::OpenSent {
                            Event::TcpConnectionRefused
                        } else {
                            Event::TcpConnectionFails
                        };
                        self.step(event).await;
                    }
                    Ok(_) => self.drain_messages().await,
                },
                connected = join(&mut self.connecting) => match connected {
                    Some(Ok(stream)) if self.conn.is_none() => match Connection::new(stream) {
                        Ok(c) => {
                            self.conn = Some(c);
                            self.step(Event::TcpCrAcked).await;
                        }
                        Err(_) => self.step(Event::TcpConnectionFails).await,
                    },
                    // An incoming connection won the race: drop ours.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let message = format!("connect to {}: {e}", self.cfg.address);
                        if e.kind() == io::ErrorKind::ConnectionRefused {
                            // The normal case while a cluster starts
                            // together (retried within 100 ms): a line at
                            // info only once the refusals outlast the fast
                            // retries; the status shows each.
                            self.refused += 1;
                            if self.refused == REFUSALS_WORTH_A_LINE {
                                tracing::info!(peer = %self.cfg.address, "{message} ({} times in a row)", self.refused);
                            } else {
                                tracing::debug!(peer = %self.cfg.address, "{message}");
                            }
                            self.emit(PeerEvent::Problem { peer: self.index, message }).await;
                            self.step(Event::TcpConnectionRefused).await;
                        } else {
                            self.problem(message).await;
                            self.step(Event::TcpConnectionFails).await;
                        }
                    }
                    None => self.step(Event::TcpConnectionFails).await,
                },
                held = join(&mut self.pending) => {
                    if let Some(Some((conn, open))) = held {
                        self.resolve_collision(conn, open).await;
                    }
                },
                () = sleep_until(deadline) => {
                    let actions = self.fsm.tick(Instant::now());
                    self.perform(actions).await;
                }
            }
        }
        self.emit(PeerEvent::Ended { peer: self.index }).await;
    }

    async fn command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Send(out) => self.send_routes(&out),
            PeerCommand::EndOfRib(family) => {
                if self.can_send(family) {
                    self.send_message(&Message::Update(Update::end_of_rib_marker(family)));
                }
            }
            PeerCommand::RefreshBorder { family, subtype } => {
                let enhanced = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.enhanced_route_refresh);
                if enhanced && self.can_send(family) {
                    self.send_message(&Message::RouteRefresh(RouteRefresh { family, subtype }));
                }
            }
            PeerCommand::RequestRefresh(family) => {
                let rr = self.negotiated.as_ref().is_some_and(|n| n.route_refresh);
                if rr && self.can_send(family) {
                    self.send_message(&Message::RouteRefresh(RouteRefresh::request(family)));
                }
            }
            PeerCommand::Reset(n) => self.step(Event::LocalReset(n)).await,
            PeerCommand::Reconfigure(cfg) => self.cfg = *cfg,
        }
    }

    /// A connection from the peer's address.
    async fn incoming(&mut self, stream: TcpStream) {
        match self.fsm.state() {
            State::Idle => {} // refused (dropped)
            State::Connect | State::Active if self.conn.is_none() => {
                if let Some(h) = self.connecting.take() {
                    h.abort();
                }
                if let Ok(c) = Connection::new(stream) {
                    self.conn = Some(c);
                    self.step(Event::TcpConnectionConfirmed).await;
                }
            }
            // A second connection: hold it until its OPEN shows who it is.
            _ => {
                if let Some(old) = self.pending.take() {
                    old.abort();
                }
                self.pending = Some(tokio::spawn(read_open(stream)));
            }
        }
    }

    /// RFC 4271 §6.8, and RFC 4724 §4.2 for a restarted peer.
    async fn resolve_collision(&mut self, conn: Connection, open: Open) {
        let state = self.fsm.state();
        let peer_restarted = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(_)));
        let keep_new = match state {
            // A peer that restarted with graceful restart reconnects before
            // we noticed the old session die: the new one replaces it.
            State::Established => peer_restarted,
            State::OpenSent | State::OpenConfirm => {
                // Our existing connection: outgoing if we initiated it. The
                // FSM does not record it; an incoming connection would have
                // been adopted directly, so the existing one is ours.
                crate::fsm::collision::resolve(
                    self.local.router_id,
                    open.router_id,
                    state,
                    crate::fsm::collision::Initiator::Local,
                ) == Some(crate::fsm::collision::Keep::New)
            }
            _ => self.conn.is_none(),
        };
        let cease = Notification::new(
            code::CEASE,
            cease::CONNECTION_COLLISION_RESOLUTION,
            Vec::new(),
        );
        if !keep_new {
            conn.send(
                Message::Notification(cease)
                    .to_bytes(&Context::default())
                    .unwrap_or_default(),
            );
            return;
        }
        if let Some(old) = self.conn.take() {
            old.send(
                Message::Notification(cease)
                    .to_bytes(&self.ctx)
                    .unwrap_or_default(),
            );
        }
        self.conn = Some(conn);
        self.ctx = Context::default();
        self.negotiated = None;
        let actions = self.fsm.adopt_connection(Instant::now());
        self.perform(actions).await;
        self.step(Event::BgpOpen(open)).await;
    }

    /// Decode every whole message buffered and feed the machine.
    async fn drain_messages(&mut self) {
        while let Some(conn) = self.conn.as_mut() {
            let decoded = match conn.next_message(&self.ctx) {
                Ok(Some(bytes)) => Message::decode_detailed(bytes, &self.ctx),
                Ok(None) => break,
                Err(e) => {
                    self.flush_batch().await;
                    self.step(Event::BgpHeaderErr(e.notification())).await;
                    break;
                }
            };
            match decoded {
                Ok((Message::Update(update), outcome)) if outcome != UpdateOutcome::Ok => {
                    let update = self.malformed_update(update, outcome);
                    self.on_message(Message::Update(update)).await;
                }
                Ok((msg, _)) => self.on_message(msg).await,
                Err(e) => {
                    self.flush_batch().await;
                    self.on_decode_error(e).await;
                    break;
                }
            }
        }
        self.flush_batch().await;
    }

    /// An UPDATE RFC 7606 lets the session survive: logged (debug, with
    /// the peer and each attribute), counted, and turned into what to act
    /// on (prefixes withdrawn, or attributes dropped).
    fn malformed_update(&mut self, update: Update, outcome: UpdateOutcome) -> Update {
        let (action, errors): (&str, Vec<&AttrError>) = match &outcome {
            UpdateOutcome::Ok => ("none", Vec::new()),
            UpdateOutcome::AttributeDiscard(d) => {
                self.malformed.attribute_discard += 1;
                ("attribute-discard", d.iter().collect())
            }
            UpdateOutcome::TreatAsWithdraw { reasons, discarded } => {
                self.malformed.treat_as_withdraw += 1;
                (
                    "treat-as-withdraw",
                    reasons.iter().chain(discarded).collect(),
                )
            }
        };
        for e in errors {
            tracing::debug!(
                peer = %self.cfg.address,
                action,
                attribute = e.type_code,
                reason = e.reason,
                "malformed UPDATE (RFC 7606)"
            );
        }
        DecodedUpdate { update, outcome }.into_effective()
    }

    async fn on_decode_error(&mut self, e: DecodeError) {
        if e.code == code::UPDATE_MESSAGE {
            // RFC 7606 §2 "session reset": counted with the other actions.
            tracing::debug!(
                peer = %self.cfg.address,
                action = "session-reset",
                subcode = e.subcode,
                reason = %e,
                "malformed UPDATE (RFC 7606)"
            );
            self.malformed.session_reset += 1;
            self.report_malformed().await;
        }
        self.problem(format!("from {}: {e}", self.cfg.address))
            .await;
        let n = e.notification();
        let event = match e.code {
            code::MESSAGE_HEADER => Event::BgpHeaderErr(n),
            code::OPEN_MESSAGE => Event::BgpOpenMsgErr(n),
            code::UPDATE_MESSAGE => Event::UpdateMsgErr(n),
            _ => Event::LocalReset(n),
        };
        self.step(event).await;
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Open(open) => self.step(Event::BgpOpen(open)).await,
            Message::Keepalive => self.step(Event::KeepAliveMsg).await,
            Message::Notification(n) => {
                self.problem(format!(
                    "{} sent NOTIFICATION {}",
                    self.cfg.address,
                    n.describe()
                ))
                .await;
                self.step(Event::NotifMsg(n)).await;
            }
            Message::Update(update) => {
                self.step(Event::UpdateMsg).await;
                if self.fsm.state() != State::Established {
                    return;
                }
                if let Some(family) = update.end_of_rib() {
                    self.flush_batch().await;
                    self.emit(PeerEvent::EndOfRib {
                        peer: self.index,
                        family,
                    })
                    .await;
                } else {
                    self.batch.extend(changes_from_update(self.index, update));
                }
            }
            // RFC 2918 §4: a ROUTE-REFRESH for a family not negotiated is ignored.
            Message::UnknownRouteRefresh { .. } => self.step(Event::UpdateMsg).await,
            Message::RouteRefresh(rr) => {
                self.step(Event::UpdateMsg).await;
                if self.fsm.state() == State::Established && self.can_send(rr.family) {
                    self.flush_batch().await;
                    self.emit(PeerEvent::RouteRefresh {
                        peer: self.index,
                        family: rr.family,
                        subtype: rr.subtype,
                    })
                    .await;
                }
            }
        }
    }

    /// Tell the core the malformed UPDATEs counted since the last report.
    async fn report_malformed(&mut self) {
        if !self.malformed.is_zero() {
            let counts = std::mem::take(&mut self.malformed);
            self.emit(PeerEvent::Malformed {
                peer: self.index,
                counts,
            })
            .await;
        }
    }

    async fn flush_batch(&mut self) {
        self.report_malformed().await;
        if !self.batch.is_empty() {
            let changes = std::mem::take(&mut self.batch);
            self.emit(PeerEvent::Routes {
                peer: self.index,
                changes,
            })
            .await;
        }
    }

    /// Feed one event to the machine and carry out what it says.
    async fn step(&mut self, event: Event) {
        let actions = self.fsm.handle(event, Instant::now());
        self.perform(actions).await;
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect => {
                    if let Some(h) = self.connecting.take() {
                        h.abort();
                    }
                    let addr = SocketAddr::new(self.cfg.address, self.cfg.port);
                    let source = self.cfg.options.source_address;
                    let opts = socket_options(&self.cfg);
                    self.connecting = Some(tokio::spawn(async move {
                        socket::connect(addr, source, &opts).await
                    }));
                }
                Action::DropConnection => self.close(),
                Action::SendOpen(open) => self.send_message(&Message::Open(open)),
                Action::SendKeepalive => self.send_message(&Message::Keepalive),
                Action::SendNotification(n) => {
                    self.problem(format!("sent NOTIFICATION {}", n.describe()))
                        .await;
                    self.send_message(&Message::Notification(n));
                }
                Action::Established { peer_open, .. } => {
                    let negotiated = negotiate(&self.fsm.our_open(), &peer_open);
                    self.ctx = negotiated.context.clone();
                    self.negotiated = Some(negotiated.clone());
                    let (local, remote) = match &self.conn {
                        Some(c) => (c.local, c.remote),
                        None => continue,
                    };
                    // For next hops of the other family (RFC 2545 §3).
                    let interface = crate::session::ifaddrs::interface_addresses(local.ip());
                    self.emit(PeerEvent::Up {
                        peer: self.index,
                        negotiated: Box::new(negotiated),
                        peer_router_id: peer_open.router_id,
                        peer_asn: peer_open.asn,
                        local,
                        remote,
                        interface,
                    })
                    .await;
                }
                Action::Down(reason) => {
                    self.ctx = Context::default();
                    self.negotiated = None;
                    self.batch.clear();
                    self.emit(PeerEvent::Down {
                        peer: self.index,
                        reason,
                    })
                    .await;
                }
            }
        }
        let state = self.fsm.state();
        if state != self.last_state {
            tracing::debug!(peer = %self.cfg.address, from = %self.last_state, to = %state, "session state");
            self.last_state = state;
            if state == State::Established {
                self.refused = 0;
            }
            if state != State::Established {
                // Leaving Established resets the codec context for the next session.
                self.ctx = Context::default();
            }
            self.emit(PeerEvent::State {
                peer: self.index,
                state,
            })
            .await;
        }
    }

    fn close(&mut self) {
        // Dropping the connection drops its writer queue: queued bytes (a
        // NOTIFICATION) are written, then the socket is shut down.
        self.conn = None;
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
    }

    fn can_send(&self, family: Family) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.families.contains(&family))
    }

    fn send_message(&mut self, msg: &Message) {
        let Some(conn) = &self.conn else { return };
        match msg.to_bytes(&self.ctx) {
            Ok(bytes) => conn.send(bytes),
            Err(e) => tracing::warn!(peer = %self.cfg.address, "cannot encode message: {e}"),
        }
    }

    /// Encode an Adj-RIB-Out diff as packed UPDATEs.
    fn send_routes(&mut self, out: &OutUpdate) {
        let Some(conn) = &self.conn else { return };
        if self.fsm.state() != State::Established {
            return;
        }
        let mut buf = Vec::new();
        for family in Family::ALL {
            if !self.can_send(family) {
                continue;
            }
            let withdrawn: Vec<Nlri> = out
                .withdrawn
                .iter()
                .filter(|p| Family::of(p) == family)
                .map(|p| Nlri::new(*p))
                .chain(
                    out.withdrawn_paths
                        .iter()
                        .filter(|n| Family::of(&n.prefix) == family)
                        .copied(),
                )
                .collect();
            if !withdrawn.is_empty() {
                if let Err(e) = pack_withdraw(&self.ctx, family, &withdrawn, &mut buf) {
                    tracing::warn!(peer = %self.cfg.address, "cannot encode withdrawals: {e}");
                }
            }
        }
        for group in &out.announce {
            if !self.can_send(group.family) {
                continue;
            }
            let nlri: Vec<Nlri> = if group.path_ids.is_empty() {
                group.prefixes.iter().map(|p| Nlri::new(*p)).collect()
            } else {
                (group.prefixes.iter().zip(&group.path_ids))
                    .map(|(p, id)| Nlri::with_path_id(*p, *id))
                    .collect()
            };
            let nh = NextHop {
                addr: group.next_hop,
                link_local: group.link_local,
            };
            if let Err(e) =
                pack_announce(&self.ctx, group.family, &group.attrs, nh, &nlri, &mut buf)
            {
                tracing::warn!(peer = %self.cfg.address, "cannot encode announcement: {e}");
            }
        }
        if !buf.is_empty() {
            conn.send(buf);
        }
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event).await;
    }

    async fn problem(&self, message: String) {
        tracing::info!(peer = %self.cfg.address, "{message}");
        self.emit(PeerEvent::Problem {
            peer: self.index,
            message,
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speaker::{GracefulRestartConfig, PeerOptions};

    fn restart_time(caps: &[Capability]) -> Option<u16> {
        caps.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr.restart_time),
            _ => None,
        })
    }

    /// RFC 4724 §3: the Restart Time of our capability is the peer's own
    /// when it has one (BIRD's per-protocol `graceful restart time`),
    /// else the speaker's.
    #[test]
    fn a_peer_restart_time_overrides_the_speakers() {
        let local = LocalIdentity {
            router_id: "10.0.0.1".parse().unwrap(),
            asn: 64512,
            graceful_restart: GracefulRestartConfig::default(),
        };
        let mut peer = PeerConfig {
            address: "10.0.0.2".parse().unwrap(),
            port: 179,
            asn: 64512,
            options: PeerOptions::default(),
        };
        assert_eq!(restart_time(&our_capabilities(&local, &peer)), Some(120));
        peer.options.restart_time = Some(45);
        assert_eq!(restart_time(&our_capabilities(&local, &peer)), Some(45));
    }
}
