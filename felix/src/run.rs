//! [`Felix`]: felix as the node agent runs it — one desired state, from
//! confd's snapshot and BGP's remote prefixes, fed to the kernel route
//! [`Reconciler`], the VXLAN [`OverlayDriver`] (with the MTUs of the
//! [`MtuDriver`]), the NAT table ([`NatDriver`], from the pools'
//! `natOutgoing`) and, when enabled, the eBPF
//! [`EbpfDriver`] (maps written from the same desired routes, programs
//! attached to the workloads' interfaces). When the eBPF dataplane is
//! enabled but this host cannot run it, felix logs why once and runs
//! kernel routes only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use manul_confd::Snapshot;

use crate::calico;
use crate::desired::{Inputs, PoolError, desired_routes};
use crate::ebpf::{DriverConfig, EbpfDesired, EbpfDriver, EbpfObserver, Endpoint, Hosts};
use crate::mtu::{MtuConfig, MtuInputs, Mtus};
use crate::mtu_driver::MtuDriver;
use crate::nat::{NatConfig, NatDriver, NatProgress};
use crate::overlay::{OverlayDriver, Overlays};
use crate::reconciler::{Progress, Reconciler, ReconcilerConfig, StartError, Stats};

/// How felix runs.
#[derive(Debug, Clone, Default)]
pub struct FelixConfig {
    /// The kernel route reconciler.
    pub routes: ReconcilerConfig,
    /// The eBPF dataplane; `None`: kernel routes only (Calico's
    /// `BPFEnabled=false`, the default).
    pub ebpf: Option<DriverConfig>,
    /// Where the eBPF dataplane's state is reported (metrics, status);
    /// the caller keeps a clone.
    pub observer: EbpfObserver,
    /// The VXLAN MTU overrides and where the pod MTU is written.
    pub mtu: MtuConfig,
}

/// What one [`Felix::update`] handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The reconciler's generation of these routes.
    pub generation: u64,
    /// The eBPF driver's generation (0 without the eBPF dataplane).
    pub ebpf_generation: u64,
    /// The overlay driver's generation (0: overlays not set).
    pub overlay_generation: u64,
    /// The NAT task's generation.
    pub nat_generation: u64,
    /// How many routes are desired.
    pub routes: usize,
    /// How many of them lead to another node (remote blocks and
    /// addresses, from BGP or, for VXLAN pools, from IPAM).
    pub remote: usize,
}

/// The running felix. Dropping it stops its tasks; routes, maps and
/// attachments stay.
#[derive(Debug)]
pub struct Felix {
    routes: Reconciler,
    mtu: MtuDriver,
    overlay: OverlayDriver,
    nat: NatDriver,
    ebpf: Option<EbpfDriver>,
    observer: EbpfObserver,
    /// Pools whose routes are not programmed, and why.
    refused: tokio::sync::watch::Sender<Vec<PoolError>>,
}

impl Felix {
    /// Start the reconciler and, when configured, open the eBPF dataplane.
    /// Nothing is written before the first [`Felix::update`]; what the
    /// kernel holds is known (and in [`Felix::watch_progress`]) before it.
    pub async fn start(config: FelixConfig) -> Result<Felix, StartError> {
        let routes_config = config.routes;
        let ebpf = match config.ebpf {
            Some(mut c) => {
                // One namespace for both: the eBPF side follows the routes'.
                if c.dataplane.netns.is_none() {
                    c.dataplane.netns = routes_config.netns.clone();
                }
                EbpfDriver::start(c, config.observer.clone()).await
            }
            None => None,
        };
        let mtu = MtuDriver::start(
            routes_config.netns.clone(),
            config.mtu,
            routes_config.resync_interval,
        )
        .await?;
        let overlay = OverlayDriver::start(
            routes_config.netns.clone(),
            routes_config.resync_interval,
            mtu.watch(),
        )
        .await?;
        let nat = NatDriver::start(NatConfig {
            netns: routes_config.netns.clone(),
            resync_interval: routes_config.resync_interval,
            retry_interval: routes_config.retry_interval,
        });
        Ok(Felix {
            routes: Reconciler::start(routes_config).await?,
            mtu,
            overlay,
            nat,
            ebpf,
            observer: config.observer,
            refused: tokio::sync::watch::channel(Vec::new()).0,
        })
    }

    /// Program what node `me` wants from `snap`, the remote prefixes
    /// learned over BGP (`remote`) and the routes to BGP peers through
    /// their gateways (`peer_routes`, peer → gateway: BGPPeer
    /// `reachableBy`): kernel routes and eBPF maps from the same desired
    /// state.
    pub fn update(
        &self,
        snap: &Snapshot,
        me: &str,
        remote: BTreeMap<IpNet, Vec<IpAddr>>,
        peer_routes: BTreeMap<IpAddr, IpAddr>,
        ipip_available: bool,
    ) -> Update {
        self.mtu.set_inputs(MtuInputs::from_snapshot(snap, me));
        let overlay_generation = self.overlay.set_desired(Overlays::from_snapshot(snap, me));
        let mut inputs = calico::inputs(snap, me, remote, ipip_available);
        inputs.peer_routes = peer_routes;
        Update {
            overlay_generation,
            ..self.set_inputs(&inputs, calico::endpoints(snap), calico::hosts(snap, me))
        }
    }

    /// [`Felix::update`] from inputs already made.
    pub fn set_inputs(&self, inputs: &Inputs, endpoints: Vec<Endpoint>, hosts: Hosts) -> Update {
        let desired = desired_routes(inputs);
        self.refuse(desired.errors);
        let routes = desired.routes;
        let count = routes.len();
        let remote = routes
            .values()
            .filter(|t| matches!(t, crate::route::Target::Via(_)))
            .count();
        let ebpf_generation = match &self.ebpf {
            Some(driver) => driver.set_desired(EbpfDesired {
                routes: Arc::new(routes.clone()),
                hosts,
                pools: inputs.pools.clone(),
                local_subnets: inputs.local_subnets.clone(),
                endpoints,
            }),
            None => 0,
        };
        Update {
            generation: self.routes.set_desired(routes),
            ebpf_generation,
            overlay_generation: 0,
            nat_generation: self.nat.set_desired(crate::nat::desired(&inputs.pools)),
            routes: count,
            remote,
        }
    }

    /// Record the pools refused now; log each newly refused pool once.
    fn refuse(&self, errors: Vec<PoolError>) {
        self.refused.send_if_modified(|old| {
            if *old == errors {
                return false;
            }
            for e in errors.iter().filter(|e| !old.contains(e)) {
                tracing::error!(pool = %e.pool, "felix: {e}");
            }
            *old = errors;
            true
        });
    }

    /// The pools whose routes felix does not program, and why, as they
    /// change.
    pub fn watch_refused(&self) -> tokio::sync::watch::Receiver<Vec<PoolError>> {
        self.refused.subscribe()
    }

    /// Wait until `update`'s routes are written and its eBPF, overlay and
    /// NAT syncs are done.
    pub async fn wait(&self, update: Update) -> Arc<Progress> {
        self.overlay
            .wait_generation(update.overlay_generation)
            .await;
        self.nat.wait_generation(update.nat_generation).await;
        if let Some(d) = &self.ebpf {
            d.wait_generation(update.ebpf_generation).await;
        }
        self.routes.wait_generation(update.generation).await
    }

    /// Settle the MTUs (uplink, VXLAN devices, the pod MTU file) for node
    /// `me` from `snap`, without writing anything else: for the time
    /// before the first [`Felix::update`], while routes are held, so pods
    /// added then get the right MTU.
    pub fn set_mtu_inputs(&self, snap: &Snapshot, me: &str) {
        self.mtu.set_inputs(MtuInputs::from_snapshot(snap, me));
    }

    /// The MTUs in force as they change (`None` until the first inputs).
    pub fn watch_mtu(&self) -> tokio::sync::watch::Receiver<Option<Mtus>> {
        self.mtu.watch()
    }

    /// The route reconciler's progress.
    pub fn progress(&self) -> Arc<Progress> {
        self.routes.progress()
    }

    /// The route reconciler's progress as it changes: what the kernel
    /// holds, what felix wants, what failed.
    pub fn watch_progress(&self) -> tokio::sync::watch::Receiver<Arc<Progress>> {
        self.routes.watch_progress()
    }

    /// The route reconciler's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        self.routes.stats()
    }

    /// The route reconciler's full resync period from now on (Calico's
    /// `routeRefreshInterval`; zero: none). The other drivers keep theirs.
    pub fn set_route_refresh_interval(&self, every: std::time::Duration) {
        self.routes.set_resync_interval(every);
    }

    /// The NAT table's state as it changes.
    pub fn watch_nat(&self) -> tokio::sync::watch::Receiver<Arc<NatProgress>> {
        self.nat.watch_progress()
    }

    /// The eBPF dataplane's state.
    pub fn observer(&self) -> &EbpfObserver {
        &self.observer
    }

    /// Whether the eBPF dataplane runs.
    pub fn ebpf_running(&self) -> bool {
        self.ebpf.is_some()
    }
}

/// What [`cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Routes whose delete failed (all others with felix's protocol are gone).
    pub routes_failed: usize,
    /// Whether there was an eBPF pin directory (now removed, with every
    /// attachment, program and map in it).
    pub ebpf_removed: bool,
    /// Whether there was a NAT table (`inet manul`, now removed).
    pub nat_removed: bool,
    /// VXLAN devices removed (`vxlan.calico`, `vxlan-v6.calico`).
    pub vxlan_removed: u32,
}

/// Remove everything felix owns: every kernel route with its protocol
/// (in `routes.netns`), the NAT table (`inet manul`), the VXLAN devices
/// (`vxlan.calico`, `vxlan-v6.calico`) and the eBPF
/// dataplane pinned under `pin_dir` (links detached, programs and maps
/// unpinned).
pub async fn cleanup(routes: ReconcilerConfig, pin_dir: &Path) -> Result<Cleaned, CleanupError> {
    let netns = routes.netns.clone();
    let felix = Reconciler::start(routes).await?;
    let generation = felix.set_desired(Default::default());
    let progress = felix.wait_generation(generation).await;
    let nat_removed = crate::nat::cleanup(netns.as_deref())
        .await
        .map_err(CleanupError::Nat)?;
    let vxlan = crate::vxlan::VxlanManager::open(netns.clone())
        .await
        .map_err(StartError::from)?;
    let mut vxlan_removed = 0;
    for family in [crate::vxlan::Family::V4, crate::vxlan::Family::V6] {
        vxlan_removed += vxlan.apply(family, None, None).await?.device;
    }
    let ebpf_removed =
        crate::ebpf::cleanup(pin_dir, netns.as_deref()).map_err(|e| CleanupError::Ebpf {
            pin_dir: pin_dir.to_path_buf(),
            error: e,
        })?;
    Ok(Cleaned {
        routes_failed: progress.failed.len(),
        ebpf_removed,
        nat_removed,
        vxlan_removed,
    })
}

/// [`cleanup`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The route reconciler could not start.
    #[error(transparent)]
    Routes(#[from] StartError),
    /// The NAT table could not be removed.
    #[error("removing the NAT table: {0}")]
    Nat(crate::nat::nfnl::NfnlError),
    /// A VXLAN device could not be removed.
    #[error(transparent)]
    Vxlan(#[from] crate::vxlan::VxlanError),
    /// The pin directory could not be removed.
    #[error("removing {}: {error}", pin_dir.display())]
    Ebpf {
        pin_dir: std::path::PathBuf,
        error: std::io::Error,
    },
}
