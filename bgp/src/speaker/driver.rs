//! The tokio shell around the [`Core`]: it owns the channels, the
//! listeners, the peers' session tasks and the timers, feeds the core its
//! inputs and carries out its outputs.
//!
//! Peer events are taken in batches (everything queued, up to [`BATCH`],
//! fewer once a pass holds
//! [`MAX_CHANGES_PER_PASS`](crate::speaker::core::MAX_CHANGES_PER_PASS)
//! changes), so that a
//! flood of UPDATEs costs one decision and one advertisement pass per
//! batch; API commands are served between batches, never starved.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::rib::{BestChange, PeerIndex};
use crate::session::events::{PeerEvent, ToPeerTask};
use crate::session::peer::{LocalIdentity, PeerTask};
use crate::session::socket;
use crate::speaker::core::{Core, Input, Now, Output, Timer};
use crate::speaker::{PeerChange, PeerConfig, PeerError, PeerStatus, SpeakerConfig};

/// Events handled per batch at most, so API calls are never starved.
const BATCH: usize = 256;
/// Queue between peer tasks and the core; full = peers stop reading their
/// sockets (TCP backpressure) until the core catches up.
const EVENT_QUEUE: usize = 4;

/// Commands from the [`crate::speaker::Speaker`] handle, the listeners and
/// the timers.
#[derive(Debug)]
pub(crate) enum Command {
    /// A change the core decides on; with a reply for peer changes.
    Input(Input, Option<oneshot::Sender<Result<(), PeerError>>>),
    Subscribe(oneshot::Sender<mpsc::UnboundedReceiver<Vec<BestChange>>>),
    SubscribePeers(oneshot::Sender<mpsc::UnboundedReceiver<Vec<PeerChange>>>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Routes(oneshot::Sender<Vec<BestChange>>),
    RouteCount(oneshot::Sender<usize>),
    Incoming(TcpStream, SocketAddr),
    Timer(Timer),
    /// Stop every session. `graceful`: close without Cease so peers keep
    /// our routes (RFC 4724); otherwise Cease / Administrative Shutdown.
    Shutdown {
        graceful: bool,
        done: oneshot::Sender<()>,
    },
}

/// A peer's session task.
#[derive(Debug)]
struct Session {
    tx: mpsc::UnboundedSender<ToPeerTask>,
    task: JoinHandle<()>,
}

pub(crate) struct Driver {
    core: Core,
    local: Arc<LocalIdentity>,
    events_tx: mpsc::Sender<PeerEvent>,
    events: mpsc::Receiver<PeerEvent>,
    commands_tx: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
    subscribers: Vec<mpsc::UnboundedSender<Vec<BestChange>>>,
    peer_subscribers: Vec<mpsc::UnboundedSender<Vec<PeerChange>>>,
    listeners: Vec<Arc<TcpListener>>,
    sessions: HashMap<PeerIndex, Session>,
    /// Tasks of sessions just stopped: a new session may wait for one
    /// ([`Output::StartSession`]`::after`); at shutdown, all are awaited.
    stopped: Vec<(PeerIndex, JoinHandle<()>)>,
    /// The connection of the [`Input::Incoming`] being handled.
    incoming: Option<TcpStream>,
    /// Outputs being carried out (kept to reuse its memory).
    outputs: Vec<Output>,
    /// The runtime the speaker was started on: peer sessions run there, so
    /// that decoding and the RIB work in parallel (the core has a thread
    /// of its own).
    runtime: tokio::runtime::Handle,
}

impl Driver {
    pub(crate) fn new(
        cfg: SpeakerConfig,
        listeners: Vec<Arc<TcpListener>>,
        commands_tx: mpsc::UnboundedSender<Command>,
        commands: mpsc::UnboundedReceiver<Command>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        Self {
            local: Arc::new(LocalIdentity::of(&cfg)),
            core: Core::new(cfg, Now::system()),
            events_tx,
            events,
            commands_tx,
            commands,
            subscribers: Vec::new(),
            peer_subscribers: Vec::new(),
            listeners,
            sessions: HashMap::new(),
            stopped: Vec::new(),
            incoming: None,
            outputs: Vec::new(),
            runtime,
        }
    }

    /// Run until shut down, or until `alive` is dropped (the sessions'
    /// runtime went away).
    pub(crate) async fn run(mut self, mut alive: oneshot::Receiver<()>) {
        // The deferral timer of a restart, if any.
        self.carry_out();
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
                    let now = Now::system();
                    self.event(ev, now);
                    for _ in 1..BATCH {
                        // Bound what one pass holds: a full table arriving
                        // at once is advertised in slices, not kept whole.
                        if self.core.pass_full() {
                            break;
                        }
                        match self.events.try_recv() {
                            Ok(ev) => self.event(ev, now),
                            Err(_) => break,
                        }
                    }
                    // Retired paths go while routes keep arriving too.
                    self.core.drain_some();
                }
                () = std::future::ready(()), if self.core.draining() => {
                    self.core.drain_some();
                }
            }
            self.update_watchers();
            let advertised = self.core.end_pass(Now::system());
            self.carry_out();
            if advertised {
                // A pass is CPU work with no await in it; let the tasks it
                // woke (status replies, peers' writers) run before the next,
                // or a busy core would starve whatever shares its thread.
                tokio::task::yield_now().await;
            }
        }
    }

    fn event(&mut self, ev: PeerEvent, now: Now) {
        let _ = self.core.handle(Input::Peer(ev), now);
        // What the event asked of sessions goes at once: they work in
        // parallel with the rest of the batch.
        if self.core.has_outputs() {
            self.carry_out();
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Input(input, reply) => {
                let result = self.core.handle(input, Now::system());
                self.carry_out();
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::Subscribe(reply) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let snapshot = self.core.loc_rib();
                if !snapshot.is_empty() {
                    let _ = tx.send(snapshot);
                }
                self.subscribers.push(tx);
                self.core.set_watch_best(true);
                let _ = reply.send(rx);
            }
            Command::SubscribePeers(reply) => {
                self.update_watchers();
                // Those already subscribed are told what changed so far
                // first, so that all agree from here on.
                let snapshot = self.core.watch_peers();
                self.carry_out();
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(snapshot.into_iter().map(PeerChange::Changed).collect());
                self.peer_subscribers.push(tx);
                let _ = reply.send(rx);
            }
            Command::Status(reply) => {
                let _ = reply.send(self.core.status());
            }
            Command::Routes(reply) => {
                let _ = reply.send(self.core.loc_rib());
            }
            Command::RouteCount(reply) => {
                let _ = reply.send(self.core.route_count());
            }
            Command::Incoming(stream, remote) => {
                self.incoming = Some(stream);
                let _ = self.core.handle(Input::Incoming(remote), Now::system());
                self.carry_out();
                // Not accepted: refused (closed).
                self.incoming = None;
            }
            Command::Timer(timer) => {
                let _ = self.core.handle(Input::Timer(timer), Now::system());
                self.carry_out();
            }
            // Handled by `run` before it gets here.
            Command::Shutdown { .. } => {}
        }
    }

    /// Forget closed subscribers; the core works for subscribers only
    /// while there are some.
    fn update_watchers(&mut self) {
        self.subscribers.retain(|s| !s.is_closed());
        self.core.set_watch_best(!self.subscribers.is_empty());
        if !self.peer_subscribers.is_empty() {
            self.peer_subscribers.retain(|s| !s.is_closed());
            if self.peer_subscribers.is_empty() {
                self.core.unwatch_peers();
            }
        }
    }

    /// Carry out what the core asked for, in order.
    fn carry_out(&mut self) {
        let mut outputs = std::mem::take(&mut self.outputs);
        self.core.take_outputs(&mut outputs);
        for output in outputs.drain(..) {
            self.output(output);
        }
        self.outputs = outputs;
        // Stopped sessions end on their own.
        self.stopped.clear();
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::StartSession { peer, cfg, after } => {
                let previous = after.and_then(|p| {
                    let i = self.stopped.iter().position(|(q, _)| *q == p)?;
                    Some(self.stopped.swap_remove(i).1)
                });
                self.start_session(peer, *cfg, previous);
            }
            Output::StopSession { peer, notify } => {
                if let Some(s) = self.sessions.remove(&peer) {
                    let _ = s.tx.send(ToPeerTask::Stop { notify });
                    self.stopped.push((peer, s.task));
                }
            }
            Output::Accept { peer } => {
                if let (Some(stream), Some(s)) = (self.incoming.take(), self.sessions.get(&peer)) {
                    let _ = s.tx.send(ToPeerTask::Incoming(stream));
                }
            }
            Output::ToPeer { peer, command } => {
                if let Some(s) = self.sessions.get(&peer) {
                    let _ = s.tx.send(ToPeerTask::Command(command));
                }
            }
            Output::SetTimer { timer, at } => {
                let tx = self.commands_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let _ = tx.send(Command::Timer(timer));
                });
            }
            Output::ListenerKey { address, key } => {
                let key = key.as_deref().unwrap_or_default().as_bytes();
                // Only listeners of the peer's family: IPv6 listeners are
                // IPv6-only, and Linux refuses an IPv4 key on them (EINVAL).
                for l in self.listeners.iter().filter(|l| socket::serves(l, address)) {
                    if let Err(e) = socket::set_md5_key(&**l, address, None, key) {
                        if !key.is_empty() {
                            tracing::warn!(peer = %address, "TCP-MD5 key on listener: {e}");
                        }
                    }
                }
            }
            Output::BestChanges(changes) => {
                if let Some((last, rest)) = self.subscribers.split_last() {
                    for s in rest {
                        let _ = s.send(changes.clone());
                    }
                    let _ = last.send(changes);
                }
            }
            Output::PeerChanges(changes) => {
                if let Some((last, rest)) = self.peer_subscribers.split_last() {
                    for s in rest {
                        let _ = s.send(changes.clone());
                    }
                    let _ = last.send(changes);
                }
            }
        }
    }

    /// Spawn a peer's session task on the sessions' runtime; it starts
    /// once `previous` (the task of the session it replaces) has ended.
    fn start_session(
        &mut self,
        peer: PeerIndex,
        cfg: PeerConfig,
        previous: Option<JoinHandle<()>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = PeerTask::new(peer, cfg, self.local.clone(), rx, self.events_tx.clone());
        let task = self.runtime.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            task.run().await;
        });
        self.sessions.insert(peer, Session { tx, task });
    }

    async fn shutdown(&mut self, graceful: bool) {
        self.core.stop_all(graceful);
        let mut outputs = Vec::new();
        self.core.take_outputs(&mut outputs);
        for output in outputs {
            self.output(output);
        }
        // A stopping session still reports its last state changes; keep
        // taking them (and dropping them) so that none blocks on a full
        // event queue while we wait for it to end.
        for (_, mut task) in std::mem::take(&mut self.stopped) {
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
