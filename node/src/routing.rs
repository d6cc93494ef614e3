//! The routing wiring: confd's BGP view drives the speaker (peers added,
//! changed and removed, prefixes originated and withdrawn, live), and
//! confd's snapshot plus the speaker's best paths drive felix's desired
//! kernel routes. No decisions here: confd decides peers and prefixes,
//! the speaker decides best paths, felix decides routes.
//!
//! The speaker's lifecycle (identity changes, passwords) is
//! [`crate::speaker`]'s.
//!
//! Restart without loss: felix writes nothing before BGP has converged
//! (the first [`Best::Replace`]), so the routes a previous run left in the
//! kernel are not withdrawn while the sessions come back (felix's own
//! start never writes before its first desired set); after a speaker
//! restart felix keeps what it has until the new speaker has converged.
//! Every desired set, the first included, is made from confd's latest
//! state (the batches published while BGP converged are taken first), so
//! the routes of pods added meanwhile are never deleted and re-added.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ipnet::IpNet;
use manul_bgp::speaker::Speaker;
use manul_confd::bgp::BgpViewTask;
use manul_confd::bgp::view::{NodeBgpView, PeerSource};
use manul_confd::{Batch, Cause, Confd};
use manul_felix::{Felix, FelixConfig, calico};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::secrets::Secrets;
use crate::speaker::{self, Best, DriverState};

/// What the routing part shows on `/status`.
pub type RoutingStatus = Arc<Mutex<Value>>;

/// The running wiring; dropping it stops its tasks (routes stay).
#[derive(Debug)]
pub struct Routing {
    /// The BGP driver's state (the running speaker).
    pub bgp: watch::Receiver<DriverState>,
    tasks: Vec<JoinHandle<()>>,
    _view: Arc<BgpViewTaskHolder>,
}

#[derive(Debug)]
struct BgpViewTaskHolder(#[allow(dead_code)] watch::Receiver<Arc<NodeBgpView>>);

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

/// Start the speaker and felix from `confd` (which must be in sync) for node `me`.
pub async fn start(
    confd: &Confd,
    me: &str,
    felix_config: FelixConfig,
    secrets: Secrets,
    metrics: Arc<Metrics>,
    status: RoutingStatus,
) -> Result<Routing> {
    let mut view_task = BgpViewTask::spawn(confd.subscribe(), me);
    view_task
        .changes
        .recv()
        .await
        .context("confd's BGP view ended")?;
    let view_rx = view_task.view.clone();
    let globals = view_rx.borrow().globals.clone();
    let mut tasks = Vec::new();
    let (best_tx, mut best_rx) = tokio::sync::mpsc::unbounded_channel();
    let (bgp, driver) = speaker::spawn(view_task, secrets, best_tx);
    tasks.push(driver);

    // felix: confd's snapshot plus remote prefixes from BGP.
    let felix = Arc::new(Felix::start(felix_config).await.context("starting felix")?);
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
        let metrics = Arc::clone(&metrics);
        tasks.push(tokio::spawn(async move {
            let mut remote: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
            let ipip = calico::ipip_available();
            let absorb = |remote: &mut BTreeMap<IpNet, Vec<IpAddr>>, best: Best| {
                let local = view.borrow().prefixes.clone();
                let changes = match best {
                    Best::Replace(all) => {
                        remote.clear();
                        all
                    }
                    Best::Changes(c) => c,
                };
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
            let observe = |b: &Batch| {
                if b.cause != Cause::Initial {
                    metrics.observe_ipam(&b.deltas);
                }
            };
            // Nothing is written before BGP has converged (the first Replace).
            match best_rx.recv().await {
                Some(b) => absorb(&mut remote, b),
                None => return,
            }
            loop {
                while let Ok(b) = best_rx.try_recv() {
                    absorb(&mut remote, b);
                }
                // confd's batches published since the last one taken (all
                // of them before the first update: that one is made after
                // BGP converged, seconds after subscribing, and a snapshot
                // without the pods added meanwhile would have felix delete
                // their routes, which the CNI plugin wrote, and re-add them).
                while let Some(b) = sub.try_recv() {
                    observe(&b);
                }
                let snap = sub.snapshot();
                let u = felix.update(snap, &me_owned, remote.clone(), ipip);
                tracing::debug!(
                    generation = u.generation,
                    routes = u.routes,
                    workloads = snap.workloads().count(),
                    remote = remote.len(),
                    "felix update"
                );
                dc.store(u.routes, std::sync::atomic::Ordering::Relaxed);
                rc.store(remote.len(), std::sync::atomic::Ordering::Relaxed);
                metrics.reconcile_started(&felix, u);
                tokio::select! {
                    b = sub.recv() => match b {
                        None => return,
                        Some(b) => observe(&b),
                    },
                    Some(b) = best_rx.recv() => absorb(&mut remote, b),
                }
            }
        }));
    }

    // Status, written into the caller's every second.
    if let Ok(mut s) = status.lock() {
        *s = json!({"peers": []});
    }
    {
        let status = Arc::clone(&status);
        let bgp = bgp.clone();
        let felix = Arc::clone(&felix);
        let view = view_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let mut peers_json = Vec::new();
                let state = bgp.borrow().clone();
                if let Some(sp) = &state.speaker
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
                // Peers held back (their password cannot be read): the reason.
                for (addr, why) in &state.held {
                    if peers_json.iter().any(|p| p["address"] == addr.to_string()) {
                        continue;
                    }
                    let v = view.borrow();
                    let src = v.peers.get(addr).map(|pv| source_kind(&pv.source));
                    peers_json.push(json!({
                        "address": addr.to_string(),
                        "asn": v.peers.get(addr).map(|p| p.asn),
                        "type": src.unwrap_or("dynamic"),
                        "state": "Idle",
                        "since": null,
                        "uptime_seconds": null,
                        "prefixes_received": 0,
                        "prefixes_advertised": 0,
                        "info": why,
                    }));
                }
                let held: BTreeMap<String, String> = state
                    .held
                    .iter()
                    .map(|(a, w)| (a.to_string(), w.clone()))
                    .collect();
                let progress = felix.progress();
                let originated: Vec<String> = view
                    .borrow()
                    .prefixes
                    .keys()
                    .map(ToString::to_string)
                    .collect();
                *status.lock().expect("status lock") = json!({
                    "bgp": state.speaker.is_some(),
                    "bgp_restarts": state.restarts,
                    "peers": peers_json,
                    "peers_held": held,
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
        bgp,
        tasks,
        _view: Arc::new(BgpViewTaskHolder(view_rx)),
    })
}
