//! [`Speaker`]: the async handle the node agent and `manul-bgpd` use.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::rib::BestChange;
use crate::session::socket::{self, SocketOptions};
use crate::speaker::core::Input;
use crate::speaker::driver::{Command, Driver, accept_loop};
use crate::speaker::{PeerChange, PeerConfig, PeerError, PeerStatus, SpeakerConfig, SpeakerError};
use crate::wire::{Community, LargeCommunity};

/// One change to a speaker's peers ([`Speaker::edit_peers`]).
#[derive(Debug, Clone)]
pub enum PeerEdit {
    /// As [`Speaker::add_peer`].
    Add(PeerConfig),
    /// As [`Speaker::update_peer`].
    Update(PeerConfig),
    /// As [`Speaker::remove_peer`].
    Remove(IpAddr),
}

/// A running speaker. Cheap to clone; every clone drives the same speaker.
#[derive(Debug, Clone)]
pub struct Speaker {
    commands: mpsc::UnboundedSender<Command>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Speaker {
    /// Bind the listeners and start the speaker (inside a tokio runtime).
    pub fn start(cfg: SpeakerConfig) -> Result<Self, SpeakerError> {
        Self::start_with(cfg, Vec::new())
    }

    /// Bind a listener on `addr` as the speaker binds its own, for
    /// [`Speaker::start_with`].
    pub fn listen(addr: SocketAddr) -> Result<TcpListener, SpeakerError> {
        socket::listen(addr, &SocketOptions::default())
            .map_err(|source| SpeakerError::Listen { addr, source })
    }

    /// As [`Speaker::start`], taking over `bound`: listeners bound
    /// beforehand ([`Speaker::listen`]), so that peers connecting before
    /// the speaker starts wait in the accept queue (their connection is
    /// served once it runs) instead of being refused. Those of `bound`
    /// on an address `cfg` does not listen on are closed first.
    pub fn start_with(cfg: SpeakerConfig, bound: Vec<TcpListener>) -> Result<Self, SpeakerError> {
        let (mut bound, unwanted): (Vec<_>, Vec<_>) = bound
            .into_iter()
            .partition(|l| l.local_addr().is_ok_and(|a| cfg.listen.contains(&a)));
        drop(unwanted);
        let mut listeners = Vec::new();
        for addr in &cfg.listen {
            let l = match bound
                .iter()
                .position(|l| l.local_addr().is_ok_and(|a| a == *addr))
            {
                Some(i) => bound.swap_remove(i),
                None => Self::listen(*addr)?,
            };
            listeners.push(Arc::new(l));
        }
        // Listen ranges with a password: one key per range on each listener.
        for range in &cfg.listen_ranges {
            if let Some(pw) = &range.options.password {
                let addr = range.range.addr();
                for l in listeners.iter().filter(|l| socket::serves(l, addr)) {
                    socket::set_md5_key(
                        &**l,
                        range.range.addr(),
                        Some(range.range.prefix_len()),
                        pw.as_bytes(),
                    )
                    .map_err(|source| SpeakerError::Listen {
                        addr: l.local_addr().unwrap_or(cfg.listen[0]),
                        source,
                    })?;
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for l in &listeners {
            tokio::spawn(accept_loop(l.clone(), tx.clone()));
        }
        let sessions = tokio::runtime::Handle::current();
        let driver = Driver::new(cfg, listeners, tx.clone(), rx, sessions);
        let task = spawn_core(driver)?;
        Ok(Self {
            commands: tx,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }

    fn send(&self, cmd: Command) -> Result<(), SpeakerError> {
        self.commands.send(cmd).map_err(|_| SpeakerError::Stopped)
    }

    /// Send the core an input and wait for its answer.
    async fn change(&self, input: Input) -> Result<(), SpeakerError> {
        let reply: Result<(), PeerError> = self.ask(|tx| Command::Input(input, Some(tx))).await?;
        Ok(reply?)
    }

    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.send(cmd(tx))?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    /// Add a peer; its session starts at once.
    pub async fn add_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        self.change(Input::AddPeer(cfg)).await
    }

    /// Apply several peer edits in one go: every edit is sent to the core
    /// before the first answer is awaited, so N peers cost one wake-up of
    /// the caller instead of N round trips (an agent starting a mesh of
    /// 49 peers on a busy machine spent a second on them). The core
    /// applies them in order; one answer per edit, in the same order.
    pub async fn edit_peers(&self, edits: Vec<PeerEdit>) -> Vec<Result<(), SpeakerError>> {
        let pending: Vec<_> = edits
            .into_iter()
            .map(|edit| {
                let input = match edit {
                    PeerEdit::Add(cfg) => Input::AddPeer(cfg),
                    PeerEdit::Update(cfg) => Input::UpdatePeer(cfg),
                    PeerEdit::Remove(address) => Input::RemovePeer(address),
                };
                let (tx, rx) = oneshot::channel();
                self.send(Command::Input(input, Some(tx))).map(|()| rx)
            })
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(rx) => match rx.await {
                    Ok(reply) => reply.map_err(SpeakerError::from),
                    Err(_) => Err(SpeakerError::Stopped),
                },
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Change a peer. Only a change to what shapes its session (address,
    /// AS, password, timers, families...) restarts that one session.
    pub async fn update_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        self.change(Input::UpdatePeer(cfg)).await
    }

    /// Remove a peer (Cease / Administrative Shutdown) and its routes.
    pub async fn remove_peer(&self, address: IpAddr) -> Result<(), SpeakerError> {
        self.change(Input::RemovePeer(address)).await
    }

    /// Originate (or change the communities of) a prefix.
    pub fn originate(
        &self,
        prefix: IpNet,
        communities: Vec<Community>,
        large_communities: Vec<LargeCommunity>,
    ) -> Result<(), SpeakerError> {
        let input = Input::Originate {
            prefix,
            communities,
            large_communities,
        };
        self.send(Command::Input(input, None))
    }

    /// Stop originating a prefix.
    pub fn withdraw(&self, prefix: IpNet) -> Result<(), SpeakerError> {
        self.send(Command::Input(Input::Withdraw(prefix), None))
    }

    /// Best-path changes from now on, after a first batch with the whole
    /// current Loc-RIB.
    pub async fn subscribe(
        &self,
    ) -> Result<mpsc::UnboundedReceiver<Vec<BestChange>>, SpeakerError> {
        self.ask(Command::Subscribe).await
    }

    /// Peers' status changes: a first message with every current peer
    /// (`Changed`; empty when there are none), then, after each change
    /// the speaker makes, one message with a `Changed` for each peer whose
    /// status differs from the one last sent and a `Removed` for each peer
    /// removed (dynamic peers included). Changes are compared once per
    /// pass of the core, so a state a session passes through within one
    /// pass (OpenSent on the way to Established, say) may not be sent:
    /// each message is the peers' status as of that pass. Costs nothing
    /// while nobody is subscribed; dropping the receiver unsubscribes.
    pub async fn subscribe_peers(
        &self,
    ) -> Result<mpsc::UnboundedReceiver<Vec<PeerChange>>, SpeakerError> {
        self.ask(Command::SubscribePeers).await
    }

    /// Every peer's status, sorted by address.
    pub async fn status(&self) -> Result<Vec<PeerStatus>, SpeakerError> {
        self.ask(Command::Status).await
    }

    /// Number of prefixes in the Loc-RIB (cheap, unlike [`Speaker::routes`]).
    pub async fn route_count(&self) -> Result<usize, SpeakerError> {
        self.ask(Command::RouteCount).await
    }

    /// The Loc-RIB: every prefix with its best path and next hops.
    pub async fn routes(&self) -> Result<Vec<BestChange>, SpeakerError> {
        self.ask(Command::Routes).await
    }

    /// Stop every session and the speaker. `graceful`: close without a
    /// Cease so peers keep our routes while we restart (RFC 4724).
    pub async fn shutdown(&self, graceful: bool) -> Result<(), SpeakerError> {
        self.ask(|done| Command::Shutdown { graceful, done })
            .await?;
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }
}

/// Run the core on a thread of its own (a single-threaded runtime), so that
/// a full table's RIB work never competes with the sessions that decode it
/// on the caller's runtime. The returned task ends when the core does.
fn spawn_core(core: Driver) -> Result<JoinHandle<()>, SpeakerError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SpeakerError::Runtime)?;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    // Dropped with the caller's runtime (its tasks are dropped when it
    // shuts down): then the core stops too, releasing its listeners.
    let (alive_tx, alive_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _alive = alive_tx;
        std::future::pending::<()>().await;
    });
    std::thread::Builder::new()
        .name("bgp-core".into())
        .spawn(move || {
            runtime.block_on(core.run(alive_rx));
            let _ = done_tx.send(());
        })
        .map_err(SpeakerError::Runtime)?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}
