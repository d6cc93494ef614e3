//! The routing wiring: confd's BGP view drives the speaker (peers added,
//! changed and removed, prefixes originated and withdrawn, live), and
//! confd's snapshot plus the speaker's best paths drive felix's desired
//! kernel routes. No decisions here: confd decides peers and prefixes,
//! the speaker decides best paths, felix decides routes.
//!
//! Not applied live: a change of this node's AS, router ID or reflector
//! cluster ID (the speaker would have to restart); it is logged.
//!
//! Restart without loss: felix writes nothing before BGP has converged —
//! every configured peer Established and a second for its UPDATEs, at most
//! [`CONVERGE_MAX`] — so the routes a previous run left in the kernel are
//! not withdrawn while the sessions come back (felix's own start never
//! writes before its first desired set).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ipnet::IpNet;
use manul_bgp::speaker::{Speaker, SpeakerConfig};
use manul_confd::Confd;
use manul_confd::bgp::view::{NodeBgpView, PeerSource};
use manul_confd::bgp::{BgpChanges, BgpViewTask};
use manul_felix::{Reconciler, ReconcilerConfig, calico, desired_routes};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::peers;

/// The longest felix waits for BGP before programming the kernel.
pub const CONVERGE_MAX: Duration = Duration::from_secs(30);

/// Wait until every peer in the view is Established (then one more second
/// for their UPDATEs), or [`CONVERGE_MAX`].
async fn converged(speaker: Option<Speaker>, view: watch::Receiver<Arc<NodeBgpView>>) {
    let Some(sp) = speaker else { return };
    let start = tokio::time::Instant::now();
    while start.elapsed() < CONVERGE_MAX {
        let wanted: Vec<IpAddr> = view.borrow().peers.keys().copied().collect();
        if let Ok(status) = sp.status().await {
            let up = |a: &IpAddr| {
                status
                    .iter()
                    .any(|p| p.address == *a && p.state == "Established")
            };
            if wanted.iter().all(up) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!("BGP not converged after {CONVERGE_MAX:?}: programming routes anyway");
}

/// What the routing part shows on `/status`.
pub type RoutingStatus = Arc<Mutex<Value>>;

/// The running wiring; dropping it stops its tasks (routes stay).
#[derive(Debug)]
pub struct Routing {
    /// The speaker, when this node runs BGP.
    pub speaker: Option<Speaker>,
    /// The status shown on `/status` (peers, routes).
    pub status: RoutingStatus,
    tasks: Vec<JoinHandle<()>>,
    _view: Arc<BgpViewTaskHolder>,
}

#[derive(Debug)]
struct BgpViewTaskHolder(#[allow(dead_code)] watch::Receiver<Arc<NodeBgpView>>);

impl Drop for Routing {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn source_kind(s: &PeerSource) -> &'static str {
    match s {
        PeerSource::Mesh { .. } => "mesh",
        PeerSource::Global { .. } => "global",
        // Calico emits reverse peerings as node-specific ones.
        PeerSource::Reverse { .. } | PeerSource::NodeSelector { .. } | PeerSource::Node { .. } => {
            "node-specific"
        }
    }
}

/// Apply a change of the BGP view. Prefixes go first: the speaker handles
/// commands in order, so a session that comes up (at start, or after a
/// restart whose peers hold our routes by graceful restart) is sent our
/// prefixes before its End-of-RIB; peers first left a few milliseconds in
/// which a restarted node's End-of-RIB made its peers drop its blocks.
async fn apply(speaker: &Speaker, ch: &BgpChanges, known: &mut BTreeMap<IpAddr, ()>) {
    for (prefix, view) in &ch.prefixes {
        let res = match view {
            Some(v) => {
                let (std, large) = peers::communities(&v.communities);
                speaker.originate(*prefix, std, large)
            }
            None => speaker.withdraw(*prefix),
        };
        if let Err(e) = res {
            tracing::warn!(%prefix, error = %e, "originating / withdrawing failed");
        }
    }
    for (addr, peer) in &ch.peers {
        let res = match peer {
            Some(p) => {
                if p.password.is_some() {
                    tracing::warn!(peer = %addr, "BGP password from a secret is not supported in etcd mode; session without it");
                }
                let cfg = peers::peer_config(p);
                if known.insert(*addr, ()).is_some() {
                    speaker.update_peer(cfg).await
                } else {
                    speaker.add_peer(cfg).await
                }
            }
            None => {
                known.remove(addr);
                speaker.remove_peer(*addr).await
            }
        };
        if let Err(e) = res {
            tracing::warn!(peer = %addr, error = %e, "applying a BGP peer failed");
        }
    }
}

/// Start the speaker and felix from `confd` (which must be in sync) for node `me`.
pub async fn start(confd: &Confd, me: &str, felix_config: ReconcilerConfig) -> Result<Routing> {
    let mut view_task = BgpViewTask::spawn(confd.subscribe(), me);
    let first = view_task
        .changes
        .recv()
        .await
        .context("confd's BGP view ended")?;
    let view_rx = view_task.view.clone();
    let globals = view_rx.borrow().globals.clone();
    let speaker_cfg: Option<SpeakerConfig> = peers::speaker_config(&globals);
    let speaker = match &speaker_cfg {
        Some(c) => Some(Speaker::start(c.clone()).context("starting the BGP speaker")?),
        None => {
            tracing::warn!("this node has no IPv4 address in its Node: no BGP");
            None
        }
    };
    let mut tasks = Vec::new();
    let (best_tx, mut best_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(sp) = &speaker {
        let sp = sp.clone();
        let mut known = BTreeMap::new();
        apply(&sp, &first, &mut known).await;
        let mut changes = std::mem::replace(
            &mut view_task.changes,
            tokio::sync::mpsc::unbounded_channel().1,
        );
        let view = view_rx.clone();
        let started_with = speaker_cfg.clone();
        tasks.push(tokio::spawn(async move {
            let _keep = view_task;
            while let Some(ch) = changes.recv().await {
                if ch.globals {
                    let now = peers::speaker_config(&view.borrow().globals);
                    if now.as_ref().map(|c| (c.asn, c.router_id, c.cluster_id))
                        != started_with.as_ref().map(|c| (c.asn, c.router_id, c.cluster_id))
                    {
                        tracing::warn!("this node's AS, router ID or cluster ID changed: restart manul-node to apply");
                    }
                }
                apply(&sp, &ch, &mut known).await;
            }
        }));
        let mut best = speaker
            .as_ref()
            .expect("speaker")
            .subscribe()
            .await
            .context("subscribing to best paths")?;
        tasks.push(tokio::spawn(async move {
            while let Some(batch) = best.recv().await {
                if best_tx.send(batch).is_err() {
                    return;
                }
            }
        }));
    }

    // felix: confd's snapshot plus remote prefixes from BGP.
    let felix = Arc::new(
        Reconciler::start(felix_config)
            .await
            .context("starting felix's route reconciler")?,
    );
    let mut sub = confd.subscribe();
    let me_owned = me.to_string();
    let own: Vec<IpAddr> = [
        globals.ipv4.map(|n| IpAddr::V4(n.addr())),
        globals.ipv6.map(|n| IpAddr::V6(n.addr())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let desired_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let remote_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let felix = Arc::clone(&felix);
        let (dc, rc) = (Arc::clone(&desired_count), Arc::clone(&remote_count));
        let view = view_rx.clone();
        let sp = speaker.clone();
        tasks.push(tokio::spawn(async move {
            let mut remote: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
            let ipip = calico::ipip_available();
            converged(sp, view.clone()).await;
            let absorb = |remote: &mut BTreeMap<IpNet, Vec<IpAddr>>,
                          changes: Vec<manul_bgp::rib::path::BestChange>| {
                let local = view.borrow().prefixes.clone();
                for c in changes {
                    let hops: Vec<IpAddr> = c
                        .next_hops
                        .iter()
                        .copied()
                        .filter(|h| !own.contains(h))
                        .collect();
                    if c.best.is_some() && !hops.is_empty() && !local.contains_key(&c.prefix) {
                        remote.insert(c.prefix, hops);
                    } else {
                        remote.remove(&c.prefix);
                    }
                }
            };
            loop {
                while let Ok(changes) = best_rx.try_recv() {
                    absorb(&mut remote, changes);
                }
                let inputs = calico::inputs(sub.snapshot(), &me_owned, remote.clone(), ipip);
                let d = desired_routes(&inputs);
                dc.store(d.routes.len(), std::sync::atomic::Ordering::Relaxed);
                rc.store(remote.len(), std::sync::atomic::Ordering::Relaxed);
                felix.set_desired(d.routes);
                tokio::select! {
                    b = sub.recv() => if b.is_none() { return },
                    Some(changes) = best_rx.recv() => absorb(&mut remote, changes),
                }
            }
        }));
    }

    // Status, refreshed every second.
    let status: RoutingStatus = Arc::new(Mutex::new(json!({"peers": []})));
    {
        let status = Arc::clone(&status);
        let speaker = speaker.clone();
        let felix = Arc::clone(&felix);
        let view = view_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let mut peers_json = Vec::new();
                if let Some(sp) = &speaker
                    && let Ok(peers) = sp.status().await
                {
                    let v = view.borrow().clone();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    for p in peers {
                        let src = v.peers.get(&p.address).map(|pv| source_kind(&pv.source));
                        peers_json.push(json!({
                            "address": p.address.to_string(),
                            "asn": p.asn,
                            "type": src.unwrap_or("dynamic"),
                            "state": p.state,
                            "since": p.uptime_secs.map(|u| now.saturating_sub(u)),
                            "uptime_seconds": p.uptime_secs,
                            "prefixes_received": p.accepted,
                            "prefixes_advertised": p.advertised,
                            "info": p.last_error,
                        }));
                    }
                }
                let progress = felix.progress();
                let originated: Vec<String> = view
                    .borrow()
                    .prefixes
                    .keys()
                    .map(ToString::to_string)
                    .collect();
                *status.lock().expect("status lock") = json!({
                    "bgp": speaker.is_some(),
                    "peers": peers_json,
                    "originated": originated,
                    "routes": {
                        "desired": desired_count.load(std::sync::atomic::Ordering::Relaxed),
                        "remote_prefixes": remote_count.load(std::sync::atomic::Ordering::Relaxed),
                        "failed": progress.failed.len(),
                        "blocked": progress.blocked.len(),
                        "writes": felix.stats().writes(),
                    },
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    Ok(Routing {
        speaker,
        status,
        tasks,
        _view: Arc::new(BgpViewTaskHolder(view_rx)),
    })
}
