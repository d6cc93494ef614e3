//! The routing wiring: confd's BGP view drives the speaker (peers added,
//! changed and removed, prefixes originated and withdrawn, live), and
//! confd's snapshot plus the speaker's best paths drive felix's desired
//! kernel routes. No decisions here: confd decides peers and prefixes,
//! the speaker decides best paths, felix decides routes.
//!
//! - the speaker's lifecycle (identity changes, passwords, its peer
//!   table, when it has converged) is [`crate::speaker`]'s;
//! - [`felix_loop`]: confd's snapshot and the remote prefixes to felix,
//!   and the hold after a start or a speaker restart;
//! - [`remote`]: the remote prefixes kept from the best paths (pure).
//!
//! With a backend without BGP (`CALICO_NETWORKING_BACKEND` `vxlan` or
//! `none`) no BGP view is derived and no speaker runs: felix is told at
//! once that there is nothing to wait for (an empty [`Best::Replace`]),
//! so it writes as soon as confd is in sync, and the remote routes of
//! VXLAN pools come from the IPAM blocks (felix computes them).
//!
//! What the node reports of all this is read from [`Routing`]'s watches by
//! [`crate::status`], when asked.

pub mod felix_loop;
pub mod remote;

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use manul_bgp::speaker::Speaker;
use manul_confd::Confd;
use manul_confd::bgp::BgpViewTask;
use manul_confd::bgp::view::NodeBgpView;
use manul_felix::Felix;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::felix_loop::{FelixFeed, FelixLoop};
use self::remote::RemoteRoutes;
use crate::config::Backend;
use crate::metrics::Metrics;
use crate::secrets::Secrets;
use crate::speaker::{self, Best, DriverState, StartKind};

/// The running wiring; dropping it stops its tasks (routes stay).
#[derive(Debug)]
pub struct Routing {
    /// The BGP driver's state (the running speaker, its peers).
    pub bgp: watch::Receiver<DriverState>,
    /// confd's BGP view of this node.
    pub view: watch::Receiver<Arc<NodeBgpView>>,
    tasks: Vec<JoinHandle<()>>,
    /// Without BGP: the felix loop's channel, kept open (nothing comes).
    _no_bgp: Option<tokio::sync::mpsc::UnboundedSender<Best>>,
}

impl Routing {
    /// The running speaker, when this node runs BGP.
    pub fn speaker(&self) -> Option<Speaker> {
        self.bgp.borrow().speaker.clone()
    }
}

impl Drop for Routing {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How long the agent waits for felix's first look at the kernel
/// before it takes its start as warm (holding, as before it knew).
const KERNEL_LOOK: std::time::Duration = std::time::Duration::from_secs(5);

/// The agent's start as felix sees the kernel ([`StartKind::of_agent_start`]):
/// waits for felix's first dump (it runs while confd syncs, so it is
/// normally done), at most [`KERNEL_LOOK`]; a start whose kernel could not
/// be read is warm.
pub async fn start_kind(felix: &Felix) -> StartKind {
    let mut progress = felix.watch_progress();
    let known = tokio::time::timeout(KERNEL_LOOK, progress.wait_for(|p| p.kernel_known)).await;
    if !matches!(known, Ok(Ok(_))) {
        tracing::warn!(
            "felix has not read the kernel's routes yet: holding writes until BGP has converged, as after a restart"
        );
    }
    let p = felix.progress();
    StartKind::of_agent_start(&p)
}

/// How this node routes: its backend and router ID.
#[derive(Debug, Clone, Copy)]
pub struct RoutingOptions {
    /// `CALICO_NETWORKING_BACKEND`.
    pub backend: Backend,
    /// `CALICO_ROUTER_ID`, resolved; `None`: the node's IPv4 address.
    pub router_id: Option<std::net::Ipv4Addr>,
}

/// Start the speaker (with `backend` `bird`) and the felix loop from
/// `confd` (which must be in sync) for node `me`; the loop publishes on
/// `feed`. `start` is the agent's start ([`start_kind`]); `early` the
/// BGP listeners bound at the start ([`speaker::listen_early`]).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    confd: &Confd,
    me: &str,
    felix: Arc<Felix>,
    secrets: Secrets,
    metrics: Arc<Metrics>,
    feed: watch::Sender<FelixFeed>,
    RoutingOptions { backend, router_id }: RoutingOptions,
    start: StartKind,
    early: Vec<tokio::net::TcpListener>,
) -> Result<Routing> {
    if !backend.bgp() {
        tracing::info!(
            backend = backend.as_str(),
            "no BGP on this node (CALICO_NETWORKING_BACKEND)"
        );
        let (best_tx, best) = tokio::sync::mpsc::unbounded_channel();
        // Nothing to converge: felix writes from confd's state at once.
        let _ = best_tx.send(Best::Replace(Vec::new()));
        let view = watch::channel(Arc::new(NodeBgpView::default())).1;
        let felix_loop = FelixLoop {
            felix,
            sub: confd.subscribe(),
            me: me.to_string(),
            view: view.clone(),
            remote: RemoteRoutes::new(Vec::new()),
            best,
            metrics,
            feed,
            converged: false,
        };
        return Ok(Routing {
            bgp: watch::channel(DriverState::default()).1,
            view,
            tasks: vec![tokio::spawn(felix_loop.run())],
            _no_bgp: Some(best_tx),
        });
    }
    let mut bgp_view = BgpViewTask::spawn(confd.subscribe(), me);
    // The first change is the whole view; the driver gives the speaker
    // the whole view at its start anyway.
    bgp_view
        .changes
        .recv()
        .await
        .context("confd's BGP view ended")?;
    let view = bgp_view.view.clone();
    let globals = view.borrow().globals.clone();
    let (best_tx, best) = tokio::sync::mpsc::unbounded_channel();
    let (bgp, driver) = speaker::spawn(bgp_view, secrets, best_tx, start, early, router_id);
    let own: Vec<IpAddr> = [
        globals.ipv4.map(|n| IpAddr::V4(n.addr())),
        globals.ipv6.map(|n| IpAddr::V6(n.addr())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let felix_loop = FelixLoop {
        felix,
        sub: confd.subscribe(),
        me: me.to_string(),
        view: view.clone(),
        remote: RemoteRoutes::new(own),
        best,
        metrics,
        feed,
        converged: false,
    };
    Ok(Routing {
        bgp,
        view,
        tasks: vec![driver, tokio::spawn(felix_loop.run())],
        _no_bgp: None,
    })
}
