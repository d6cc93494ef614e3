//! [`EbpfDriver`]: the task that keeps the eBPF dataplane equal to felix's
//! desired state, as the kernel route reconciler keeps the routes.
//!
//! - **Start**: the dataplane is opened (pinned programs and maps reused
//!   after a restart, else loaded) before anything else; a host that cannot
//!   run it gets one error log and felix goes on with kernel routes only
//!   ([`EbpfDriver::start`] returns `None`, the observer says why).
//! - Nothing is written or attached before the first desired state, so a
//!   restarted felix detaches nothing while it waits for its inputs.
//! - **Each sync** writes the maps by difference
//!   ([`Dataplane::sync_desired`]) and then makes the attachments follow
//!   the endpoints ([`Dataplane::sync_attachments`]): the workload program
//!   on each endpoint's host-side interface that exists, the uplink program
//!   on the uplinks (configured, or every interface with an address in one
//!   of this node's subnets); every other pinned link is detached.
//! - **Syncs happen** on a new desired state, on link notifications
//!   (`RTNLGRP_LINK`: a workload interface appearing gets its endpoint
//!   entry and its program at once, one going loses both), and on a timer.
//!
//! The bpf(2) calls are blocking; they run on tokio's blocking pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::desired::Pool;
use crate::ebpf::dataplane::{Dataplane, DataplaneConfig};
use crate::ebpf::entries::{Endpoint, Hosts};
use crate::ebpf::link::uplinks_in;
use crate::ebpf::observe::EbpfObserver;
use crate::events::{Events, group};
use crate::route::DesiredRoutes;

/// After a sync with failures, the next one comes this soon.
const RETRY: Duration = Duration::from_secs(1);

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Where things are pinned, map sizes, the namespace.
    pub dataplane: DataplaneConfig,
    /// The uplinks to attach the uplink program to; `None`: every interface
    /// with an address in one of this node's subnets.
    pub uplinks: Option<Vec<String>>,
    /// Sync everything this often, whatever happened (a lost notification).
    pub resync_interval: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            dataplane: DataplaneConfig::default(),
            uplinks: None,
            resync_interval: Duration::from_secs(90),
        }
    }
}

/// What the maps and attachments should follow.
#[derive(Debug, Clone, Default)]
pub struct EbpfDesired {
    /// The desired kernel routes (the same set the reconciler gets).
    pub routes: Arc<DesiredRoutes>,
    /// This node's and the other nodes' addresses.
    pub hosts: Hosts,
    /// The pools (flags of route entries).
    pub pools: Vec<Pool>,
    /// This node's subnets (`SAME_SUBNET`, and the default uplinks).
    pub local_subnets: Vec<IpNet>,
    /// The local workload endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// The running driver; dropping it stops the task (maps and attachments stay).
#[derive(Debug)]
pub struct EbpfDriver {
    desired: watch::Sender<(u64, Arc<EbpfDesired>)>,
    synced: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for EbpfDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EbpfDriver {
    /// Open the dataplane and start the task; `None` (after one error log,
    /// with the reason given to `observer`) when this host cannot run it.
    pub async fn start(config: DriverConfig, observer: EbpfObserver) -> Option<EbpfDriver> {
        let dp_config = config.dataplane.clone();
        let opened = tokio::task::spawn_blocking(move || Dataplane::open(dp_config))
            .await
            .map_err(|e| crate::ebpf::EbpfError::Load(e.to_string()))
            .and_then(|r| r);
        let dp = match opened {
            Ok(dp) => dp,
            Err(e) => {
                tracing::error!(error = %e, "eBPF dataplane off; kernel routes only");
                observer.routes_only(e.to_string());
                return None;
            }
        };
        let links = match Events::open(config.dataplane.netns.as_deref(), &[group::LINK], None) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "felix eBPF: no link notifications; attaching on desired changes and the resync timer only");
                None
            }
        };
        tracing::info!(
            pin_dir = %dp.config().pin_dir.display(),
            reused = dp.reused(),
            attach = dp.attach_mode(),
            "eBPF dataplane open"
        );
        let attach_mode = dp.attach_mode();
        let dp = Arc::new(Mutex::new(dp));
        observer.running(Arc::clone(&dp), attach_mode);
        let (desired, desired_rx) = watch::channel((0, Arc::new(EbpfDesired::default())));
        let (synced_tx, synced) = watch::channel(0);
        let task = tokio::spawn(run(config, dp, observer, desired_rx, links, synced_tx));
        Some(EbpfDriver {
            desired,
            synced,
            task,
        })
    }

    /// Replace the desired state; returns its generation.
    pub fn set_desired(&self, desired: EbpfDesired) -> u64 {
        let mut generation = 0;
        self.desired.send_modify(|(g, d)| {
            *g += 1;
            generation = *g;
            *d = Arc::new(desired);
        });
        generation
    }

    /// Wait until a sync that started at or after `generation` is done.
    pub async fn wait_generation(&self, generation: u64) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|g| *g >= generation).await;
    }
}

async fn run(
    config: DriverConfig,
    dp: Arc<Mutex<Dataplane>>,
    observer: EbpfObserver,
    mut desired_rx: watch::Receiver<(u64, Arc<EbpfDesired>)>,
    mut links: Option<Events>,
    synced: watch::Sender<u64>,
) {
    while desired_rx.borrow_and_update().0 == 0 {
        if desired_rx.changed().await.is_err() {
            return;
        }
    }
    let mut timer = tokio::time::interval(config.resync_interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (generation, desired) = desired_rx.borrow_and_update().clone();
        let (dp2, cfg, obs) = (Arc::clone(&dp), config.clone(), observer.clone());
        let clean = tokio::task::spawn_blocking(move || sync(&dp2, &cfg, &desired, &obs))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "felix eBPF: sync task failed");
                false
            });
        synced.send_replace(generation);
        tokio::select! {
            changed = desired_rx.changed() => if changed.is_err() { return },
            event = next_link_event(&mut links) => {
                if event.is_none() {
                    tracing::warn!("felix eBPF: link notifications ended; relying on the resync timer");
                    links = None;
                }
                // A burst (a pod's veth pair) is one sync.
                if let Some(l) = links.as_mut() {
                    while l.try_next().is_some() {}
                }
            }
            _ = timer.tick() => {}
            _ = tokio::time::sleep(RETRY), if !clean => {}
        }
    }
}

async fn next_link_event(links: &mut Option<Events>) -> Option<()> {
    match links {
        Some(l) => l.next().await.map(drop),
        None => std::future::pending().await,
    }
}

/// One sync: maps, then attachments; logs what changed and what failed.
/// `true` when everything went through.
fn sync(
    dp: &Mutex<Dataplane>,
    config: &DriverConfig,
    d: &EbpfDesired,
    observer: &EbpfObserver,
) -> bool {
    let mut clean = true;
    let mut dp = dp.lock().unwrap_or_else(|p| p.into_inner());
    let netns = config.dataplane.netns.as_deref();
    let uplinks = match &config.uplinks {
        Some(u) => u.clone(),
        None => uplinks_in(netns, &d.local_subnets).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "felix eBPF: listing addresses for the uplinks failed");
            Vec::new()
        }),
    };
    match dp.sync_desired(
        &d.routes,
        &d.hosts,
        &d.pools,
        &d.local_subnets,
        &d.endpoints,
    ) {
        Ok(s) if s != Default::default() => tracing::debug!(?s, "felix eBPF: maps written"),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "felix eBPF: writing the maps failed; retrying");
            clean = false;
        }
    }
    let workloads: Vec<String> = d.endpoints.iter().map(|e| e.interface.clone()).collect();
    let mut failures = Vec::new();
    match dp.sync_attachments(&workloads, &uplinks) {
        Ok(report) => {
            for i in &report.attached {
                tracing::info!(interface = %i, "felix eBPF: attached");
            }
            for i in &report.detached {
                tracing::info!(interface = %i, "felix eBPF: detached");
            }
            for (i, e) in &report.failed {
                tracing::warn!(interface = %i, error = %e, "felix eBPF: attachment failed; retrying");
                failures.push(i.clone());
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "felix eBPF: syncing attachments failed; retrying");
            clean = false;
        }
    }
    let attached = dp.attached().map(|a| a.len()).unwrap_or(0);
    clean &= failures.is_empty();
    observer.synced(attached, dp.entries(), failures);
    clean
}
