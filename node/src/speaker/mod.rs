//! The BGP speaker's lifecycle, driven by confd's BGP view:
//!
//! - peers and prefixes follow the view's changes (prefixes first: a
//!   session that comes up is sent our prefixes before its End-of-RIB);
//! - a change of this node's AS, router ID, cluster ID, listen port or
//!   bind mode (its listeners) restarts the speaker in place: the old one closes its sessions
//!   without a Cease (peers keep our routes by graceful restart), the new
//!   one starts with the restarting bit set and is given the whole view
//!   again. felix keeps the kernel routes it has until the new speaker has
//!   converged ([`Best::Replace`]), so nothing is flushed;
//! - passwords come from the secrets directory ([`crate::secrets`]) and
//!   are read again every [`secrets::RECHECK`]: a changed one restarts that
//!   session; a peer whose secret cannot be read is held back (an existing
//!   session keeps the password it has) and reported with the reason.
//!
//! - a peer *node* whose AS changed (it restarts its own speaker for that)
//!   is given [`PEER_AS_GRACE`] before its session is reset here: its
//!   speaker closes the old session gracefully first, so our Cease cannot
//!   reach it on the old session and make it drop our routes.
//!
//! Best paths reach felix as [`Best`] messages ([`converge`]): at each
//! (re)start a `Hold`; once the speaker has converged (every peer
//! Established and a second for its UPDATEs, at most
//! [`converge::CONVERGE_MAX`]), one `Replace` with the whole Loc-RIB, then
//! `Changes`. On a cold start ([`StartKind::Cold`]: the kernel held no
//! route of felix's when the agent started) the first speaker sends its
//! `Replace` at once, without a `Hold`. The speaker's peer table reaches [`DriverState::peers`]
//! through its peer-state subscription, change by change.

mod converge;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use manul_bgp::speaker::{PeerConfig, PeerEdit, Speaker, SpeakerConfig};
use manul_confd::bgp::view::{NodeBgpView, PeerView};
use manul_confd::bgp::{BgpChanges, BgpViewTask};
use manul_status::HoldReason;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use converge::{Best, PeerTable, StartKind};

use crate::peers;
use crate::secrets::{self, Secrets};

/// How long a peer node's AS change waits before its session is reset.
pub const PEER_AS_GRACE: Duration = Duration::from_secs(1);

/// What the driver shows: the running speaker and its peer table, peers
/// held back and why, how often the speaker was restarted.
#[derive(Debug, Clone, Default)]
pub struct DriverState {
    /// The running speaker (`None`: no BGP on this node).
    pub speaker: Option<Speaker>,
    /// The running speaker's peers, as it reports them.
    pub peers: PeerTable,
    /// Peers not given to the speaker, with the reason.
    pub held: BTreeMap<IpAddr, String>,
    /// Speaker restarts since start (identity changes).
    pub restarts: u64,
    /// The running speaker's router ID.
    pub router_id: Option<std::net::Ipv4Addr>,
}

/// The identity of a speaker: what cannot change without a restart.
fn identity(c: &SpeakerConfig) -> SpeakerConfig {
    let mut c = c.clone();
    c.graceful_restart.restarting = false;
    c
}

/// The BGP port while no BGPConfiguration sets `listenPort` (Calico's
/// default, as confd's view has it).
const DEFAULT_PORT: u16 = 179;

/// The speaker's listeners as the agent's start binds them, before it
/// registers its Node: from the moment other nodes learn of this one they
/// connect to it, and until the speaker runs (after confd's first sync)
/// their connections wait in the accept queue instead of being refused
/// and retried later. Bound as [`peers::speaker_config`] will want them
/// without a BGPConfiguration (port 179, every address; IPv6 too when the
/// node has an IPv6 address); the speaker takes those it wants and closes
/// the others ([`Speaker::start_with`]). A port already taken is left
/// to the speaker's own start.
pub fn listen_early(ipv6: bool) -> Vec<TcpListener> {
    let mut addrs = vec![SocketAddr::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        DEFAULT_PORT,
    )];
    if ipv6 {
        addrs.push(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            DEFAULT_PORT,
        ));
    }
    addrs
        .into_iter()
        .filter_map(|a| match Speaker::listen(a) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::debug!(error = %e, "binding the BGP port early failed: the speaker binds it when it starts");
                None
            }
        })
        .collect()
}

/// Start a speaker (on `bound`, [`listen_early`], those it wants),
/// retrying while the previous one's port is released.
async fn start_speaker(cfg: SpeakerConfig, mut bound: Vec<TcpListener>) -> Option<Speaker> {
    let mut last = None;
    for _ in 0..50 {
        match Speaker::start_with(cfg.clone(), std::mem::take(&mut bound)) {
            Ok(sp) => return Some(sp),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::error!(error = ?last, "starting the BGP speaker failed: no BGP on this node");
    None
}

/// The driver task's state.
struct Driver {
    view: watch::Receiver<Arc<NodeBgpView>>,
    secrets: Secrets,
    best: mpsc::UnboundedSender<Best>,
    state: watch::Sender<DriverState>,
    running: Option<Running>,
    /// What the speaker was given, per peer.
    applied: BTreeMap<IpAddr, PeerConfig>,
    /// Peer nodes whose AS changed, and when their reset is due.
    deferred: BTreeMap<IpAddr, tokio::time::Instant>,
    /// The agent's start, until the first speaker has started.
    first_start: Option<StartKind>,
    /// The listeners bound at the agent's start ([`listen_early`]), until
    /// the first speaker takes them.
    early: Vec<TcpListener>,
    /// `CALICO_ROUTER_ID`, resolved.
    router_id: Option<std::net::Ipv4Addr>,
}

/// The running speaker and the tasks that follow it.
struct Running {
    /// Its identity ([`identity`]).
    identity: SpeakerConfig,
    speaker: Speaker,
    /// [`converge::forward`].
    forward: JoinHandle<()>,
    /// [`converge::follow_peers`].
    follow: JoinHandle<()>,
}

/// Whether the peering is with a node (which restarts itself on an AS change).
fn is_node(view: &PeerView) -> bool {
    use manul_confd::bgp::PeerSource;
    match &view.source {
        PeerSource::Mesh { .. } | PeerSource::Reverse { .. } => true,
        PeerSource::Global { node, .. }
        | PeerSource::NodeSelector { node, .. }
        | PeerSource::Node { node, .. } => node.is_some(),
    }
}

/// Spawn the driver: it takes confd's BGP view from `view` (whose first
/// change has been received: the view is whole) and sends best paths to
/// `best`. `start` is the agent's start ([`StartKind::of_agent_start`]):
/// on a cold one the first speaker's best paths go to felix at once.
/// `early`: the listeners of [`listen_early`], for the first speaker.
pub fn spawn(
    view: BgpViewTask,
    secrets: Secrets,
    best: mpsc::UnboundedSender<Best>,
    start: StartKind,
    early: Vec<TcpListener>,
    router_id: Option<std::net::Ipv4Addr>,
) -> (watch::Receiver<DriverState>, JoinHandle<()>) {
    let BgpViewTask { view, mut changes } = view;
    let (state, state_rx) = watch::channel(DriverState::default());
    let mut d = Driver {
        view,
        secrets,
        best,
        state,
        running: None,
        applied: BTreeMap::new(),
        deferred: BTreeMap::new(),
        first_start: Some(start),
        early,
        router_id,
    };
    let task = tokio::spawn(async move {
        d.reconfigure(false).await;
        let mut recheck = tokio::time::interval(secrets::RECHECK);
        loop {
            let due = d.deferred.values().min().copied();
            tokio::select! {
                ch = changes.recv() => match ch {
                    Some(ch) => d.on_changes(&ch).await,
                    None => return,
                },
                _ = recheck.tick() => d.recheck_passwords().await,
                () = async { tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)).await },
                    if due.is_some() => d.apply_deferred().await,
            }
        }
    });
    (state_rx, task)
}

impl Driver {
    fn wanted_config(&self) -> Option<SpeakerConfig> {
        peers::speaker_config(&self.view.borrow().globals, self.router_id)
    }

    /// (Re)start the speaker when its identity differs from the view's
    /// (or at first), and give it the whole view.
    async fn reconfigure(&mut self, restarting: bool) {
        let wanted = self.wanted_config();
        if let Some(old) = self.running.take() {
            let cfg = &old.identity;
            tracing::info!(
                old_as = cfg.asn, old_router_id = %cfg.router_id, old_cluster_id = ?cfg.cluster_id,
                new = ?wanted.as_ref().map(|c| (c.asn, c.router_id, c.cluster_id)),
                "this node's BGP identity changed: restarting the speaker (peers keep our routes by graceful restart)"
            );
            // The forwarder goes first: a stopping speaker withdraws its
            // sessions' routes from its Loc-RIB, and felix must not see that.
            old.forward.abort();
            let _ = old.forward.await;
            let _ = old.speaker.shutdown(true).await;
            old.follow.abort();
            let _ = old.follow.await;
            self.state.send_modify(|s| {
                s.restarts += 1;
                s.peers.clear();
            });
        }
        self.applied.clear();
        self.deferred.clear();
        let early = std::mem::take(&mut self.early);
        let Some(cfg) = wanted else {
            tracing::warn!(
                "this node has no IPv4 address in its Node and no CALICO_ROUTER_ID: no BGP"
            );
            self.state.send_modify(|s| {
                s.speaker = None;
                s.router_id = None;
            });
            let _ = self.best.send(Best::Replace(Vec::new()));
            return;
        };
        let mut start_cfg = cfg.clone();
        start_cfg.graceful_restart.restarting = restarting;
        let Some(sp) = start_speaker(start_cfg, early).await else {
            self.state.send_modify(|s| s.speaker = None);
            let _ = self.best.send(Best::Replace(Vec::new()));
            return;
        };
        let kind = match self.first_start.take() {
            Some(kind) if !restarting => kind,
            _ => StartKind::Warm(HoldReason::SpeakerRestart),
        };
        match kind {
            StartKind::Warm(reason) => {
                let _ = self.best.send(Best::Hold(converge::hold(reason)));
            }
            StartKind::Cold => tracing::info!(
                "cold start (the kernel holds no route of felix's): routes are written as BGP learns them, without waiting for convergence"
            ),
        }
        let follow = tokio::spawn(converge::follow_peers(sp.clone(), self.state.clone()));
        let forward = tokio::spawn(converge::forward(
            sp.clone(),
            self.view.clone(),
            self.state.subscribe(),
            self.best.clone(),
            kind,
        ));
        self.state.send_modify(|s| {
            s.speaker = Some(sp.clone());
            s.router_id = Some(cfg.router_id);
        });
        self.running = Some(Running {
            identity: identity(&cfg),
            speaker: sp.clone(),
            forward,
            follow,
        });
        let view = self.view.borrow().clone();
        let all = BgpChanges {
            globals: true,
            peers: view
                .peers
                .iter()
                .map(|(a, p)| (*a, Some(p.clone())))
                .collect(),
            prefixes: view
                .prefixes
                .iter()
                .map(|(p, v)| (*p, Some(v.clone())))
                .collect(),
        };
        self.apply(&all).await;
    }

    async fn on_changes(&mut self, ch: &BgpChanges) {
        if ch.globals {
            let wanted = self.wanted_config().map(|c| identity(&c));
            let running = self.running.as_ref().map(|r| r.identity.clone());
            if wanted != running {
                self.reconfigure(true).await;
                return;
            }
        }
        self.apply(ch).await;
    }

    /// Give the speaker `ch`'s prefixes, then its peers.
    async fn apply(&mut self, ch: &BgpChanges) {
        let Some(Running { speaker: sp, .. }) = &self.running else {
            return;
        };
        let sp = sp.clone();
        for (prefix, view) in &ch.prefixes {
            let res = match view {
                Some(v) => {
                    let (std, large) = peers::communities(&v.communities);
                    sp.originate(*prefix, std, large)
                }
                None => sp.withdraw(*prefix),
            };
            if let Err(e) = res {
                tracing::warn!(%prefix, error = %e, "originating / withdrawing failed");
            }
        }
        let peers: Vec<(IpAddr, Option<&PeerView>)> =
            ch.peers.iter().map(|(a, p)| (*a, p.as_ref())).collect();
        self.apply_peers(&sp, peers).await;
    }

    /// Bring `peers` of the speaker to their views, in one batch
    /// ([`Speaker::edit_peers`]): a mesh's peers all start at once.
    async fn apply_peers(&mut self, sp: &Speaker, peers: Vec<(IpAddr, Option<&PeerView>)>) {
        let planned: Vec<(IpAddr, PeerEdit)> = peers
            .into_iter()
            .filter_map(|(addr, view)| Some((addr, self.plan_peer(addr, view)?)))
            .collect();
        if planned.is_empty() {
            return;
        }
        let edits = planned.iter().map(|(_, e)| e.clone()).collect();
        let results = sp.edit_peers(edits).await;
        for ((addr, edit), res) in planned.into_iter().zip(results) {
            match (edit, res) {
                (PeerEdit::Add(cfg) | PeerEdit::Update(cfg), Ok(())) => {
                    self.applied.insert(addr, cfg);
                }
                (PeerEdit::Remove(_), Err(e)) => {
                    tracing::warn!(peer = %addr, error = %e, "removing a BGP peer failed");
                }
                (PeerEdit::Remove(_), Ok(())) => {}
                (_, Err(e)) => {
                    tracing::warn!(peer = %addr, error = %e, "applying a BGP peer failed");
                }
            }
        }
    }

    /// What brings one peer of the speaker to `view` (with its password
    /// read now), if anything; the peer's held and deferred state updated.
    fn plan_peer(&mut self, addr: IpAddr, view: Option<&PeerView>) -> Option<PeerEdit> {
        let Some(view) = view else {
            self.deferred.remove(&addr);
            self.state
                .send_if_modified(|s| s.held.remove(&addr).is_some());
            return self.applied.remove(&addr).map(|_| PeerEdit::Remove(addr));
        };
        let password = match &view.password {
            None => Ok(None),
            Some(r) => self.secrets.read(r).map(Some).map_err(|e| {
                let whose = match view.source.bgp_peer() {
                    Some(p) => format!("BGPPeer {p}"),
                    None => "nodeMeshPassword (BGPConfiguration default)".to_string(),
                };
                format!("password of {whose} for peer {addr}: {e}")
            }),
        };
        let cfg = match password {
            Ok(pw) => {
                let node_v6 = self.view.borrow().globals.ipv6.is_some();
                peers::with_families(peers::peer_config(view, pw), is_node(view), node_v6)
            }
            Err(why) => {
                let fresh = self.state.borrow().held.get(&addr) != Some(&why);
                if fresh {
                    tracing::error!(peer = %addr, "{why}; {}", if self.applied.contains_key(&addr) {
                        "the session keeps the password it has"
                    } else {
                        "the session is not started"
                    });
                }
                self.state.send_modify(|s| {
                    s.held.insert(addr, why);
                });
                self.deferred.remove(&addr); // nothing to apply until it can be read
                return None;
            }
        };
        self.state
            .send_if_modified(|s| s.held.remove(&addr).is_some());
        if self.wait_for_peer_restart(addr, view, &cfg) {
            return None;
        }
        if self.applied.get(&addr) != Some(&cfg) {
            for note in peers::notes(view) {
                tracing::warn!(peer = %addr, "{note}");
            }
        }
        match self.applied.get(&addr) {
            Some(old) if *old == cfg => None,
            Some(_) => Some(PeerEdit::Update(cfg)),
            None => Some(PeerEdit::Add(cfg)),
        }
    }

    /// Whether to hold back `cfg` for a peer node whose AS changed, until
    /// [`PEER_AS_GRACE`] has passed since the change was seen.
    fn wait_for_peer_restart(&mut self, addr: IpAddr, view: &PeerView, cfg: &PeerConfig) -> bool {
        let changed_as = self
            .applied
            .get(&addr)
            .is_some_and(|old| old.asn != cfg.asn);
        if !changed_as || !is_node(view) {
            self.deferred.remove(&addr);
            return false;
        }
        let now = tokio::time::Instant::now();
        match self.deferred.get(&addr) {
            Some(due) if now >= *due => {
                self.deferred.remove(&addr);
                false
            }
            Some(_) => true,
            None => {
                tracing::info!(peer = %addr, "the peer node's AS changed: resetting its session in {PEER_AS_GRACE:?}, after its own restart");
                self.deferred.insert(addr, now + PEER_AS_GRACE);
                true
            }
        }
    }

    /// Apply the peers whose grace is over, as the view has them now.
    async fn apply_deferred(&mut self) {
        let Some(Running { speaker: sp, .. }) = &self.running else {
            self.deferred.clear();
            return;
        };
        let sp = sp.clone();
        let now = tokio::time::Instant::now();
        let due: Vec<IpAddr> = self
            .deferred
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(a, _)| *a)
            .collect();
        let views: Vec<(IpAddr, Option<PeerView>)> = due
            .into_iter()
            .map(|a| (a, self.view.borrow().peers.get(&a).cloned()))
            .collect();
        let peers = views.iter().map(|(a, v)| (*a, v.as_ref())).collect();
        self.apply_peers(&sp, peers).await;
    }

    /// Read every peer's password again; apply those that changed.
    async fn recheck_passwords(&mut self) {
        let Some(Running { speaker: sp, .. }) = &self.running else {
            return;
        };
        let sp = sp.clone();
        let with_password: Vec<(IpAddr, PeerView)> = self
            .view
            .borrow()
            .peers
            .iter()
            .filter(|(_, p)| p.password.is_some())
            .map(|(a, p)| (*a, p.clone()))
            .collect();
        let peers = with_password.iter().map(|(a, v)| (*a, Some(v))).collect();
        self.apply_peers(&sp, peers).await;
    }
}
