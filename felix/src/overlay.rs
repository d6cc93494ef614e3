//! [`OverlayDriver`]: the task that keeps the VXLAN devices
//! (`vxlan.calico`, `vxlan-v6.calico`), their addresses and their ARP/NDP
//! and FDB entries as wanted ([`crate::vxlan`]), reconciled like routes:
//!
//! - nothing is touched before the first desired overlay (an agent
//!   starting must not take "no overlay yet" for "delete the device");
//! - a new desired overlay is applied at once;
//! - link, address and neighbour notifications about the devices (one
//!   deleted, an address removed, an ARP or FDB entry deleted or changed
//!   by hand) trigger a repair at once;
//! - a change of the MTUs ([`crate::mtu_driver`]) sets the devices' MTU;
//! - everything is applied again on a timer, and a second after a failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use manul_confd::Snapshot;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::{Event, Events, group};
use crate::mtu::Mtus;
use crate::vxlan::{Family, Overlay, VxlanManager, overlay_from_snapshot};

/// After a failed apply, the next one comes this soon.
const RETRY: Duration = Duration::from_secs(1);

/// Both families' overlays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlays {
    /// `vxlan.calico`'s.
    pub v4: Option<Overlay>,
    /// `vxlan-v6.calico`'s.
    pub v6: Option<Overlay>,
}

impl Overlays {
    /// Node `me`'s overlays from confd's snapshot.
    pub fn from_snapshot(snap: &Snapshot, me: &str) -> Overlays {
        Overlays {
            v4: overlay_from_snapshot(snap, me, Family::V4),
            v6: overlay_from_snapshot(snap, me, Family::V6),
        }
    }

    fn get(&self, family: Family) -> Option<&Overlay> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }
}

/// The running driver; dropping it stops the task (devices stay).
#[derive(Debug)]
pub struct OverlayDriver {
    desired: watch::Sender<(u64, Arc<Overlays>)>,
    applied: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for OverlayDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OverlayDriver {
    /// Open the netlink sockets in `netns` and start the task; the
    /// devices' MTUs follow `mtus` (`None`: left as the kernel makes them).
    pub async fn start(
        netns: Option<PathBuf>,
        resync_interval: Duration,
        mtus: watch::Receiver<Option<Mtus>>,
    ) -> std::io::Result<OverlayDriver> {
        let manager = VxlanManager::open(netns.clone()).await?;
        let events = Events::open(
            netns.as_deref(),
            &[
                group::LINK,
                group::NEIGH,
                group::IPV4_IFADDR,
                group::IPV6_IFADDR,
            ],
            None,
        )?;
        let (desired, desired_rx) = watch::channel((0, Arc::new(Overlays::default())));
        let (applied_tx, applied) = watch::channel(0);
        let task = tokio::spawn(run(
            manager,
            events,
            desired_rx,
            applied_tx,
            resync_interval,
            mtus,
        ));
        Ok(OverlayDriver {
            desired,
            applied,
            task,
        })
    }

    /// Replace the desired overlays (a no-op when they are unchanged);
    /// returns the generation.
    pub fn set_desired(&self, overlays: Overlays) -> u64 {
        let mut generation = 0;
        self.desired.send_if_modified(|(g, o)| {
            if *g > 0 && **o == overlays {
                generation = *g;
                return false;
            }
            *g += 1;
            generation = *g;
            *o = Arc::new(overlays);
            true
        });
        generation
    }

    /// Wait until an apply that started at or after `generation` is done.
    pub async fn wait_generation(&self, generation: u64) {
        let mut rx = self.applied.clone();
        let _ = rx.wait_for(|g| *g >= generation).await;
    }
}

/// Whether `msg` concerns the devices (by name, or by index in `indexes`).
fn concerns(msg: &Event, indexes: &[u32]) -> bool {
    let NetlinkPayload::InnerMessage(inner) = &msg.payload else {
        // An overrun: something may have been missed.
        return matches!(msg.payload, NetlinkPayload::Overrun(_));
    };
    match inner {
        RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
            indexes.contains(&l.header.index)
                || crate::netlink::link_name(l)
                    .is_some_and(|n| Family::ALL.iter().any(|f| f.device() == n))
        }
        RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n) => {
            indexes.contains(&n.header.ifindex)
        }
        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
            indexes.contains(&a.header.index)
        }
        _ => false,
    }
}

async fn run(
    manager: VxlanManager,
    mut events: Events,
    mut desired_rx: watch::Receiver<(u64, Arc<Overlays>)>,
    applied: watch::Sender<u64>,
    resync_interval: Duration,
    mut mtus: watch::Receiver<Option<Mtus>>,
) {
    while desired_rx.borrow_and_update().0 == 0 {
        if desired_rx.changed().await.is_err() {
            return;
        }
    }
    let mut timer = tokio::time::interval(resync_interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await; // the first tick is immediate
    let mut events_open = true;
    let mut mtus_open = true;
    loop {
        let (generation, overlays) = desired_rx.borrow_and_update().clone();
        let mtu = *mtus.borrow_and_update();
        let mut clean = true;
        let mut indexes = Vec::new();
        for family in Family::ALL {
            let device_mtu = mtu.map(|m| match family {
                Family::V4 => m.vxlan,
                Family::V6 => m.vxlan_v6,
            });
            match manager
                .apply(family, overlays.get(family), device_mtu)
                .await
            {
                Ok(w) if w != Default::default() => {
                    tracing::info!(device = family.device(), writes = ?w, "felix: VXLAN overlay written")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "felix: VXLAN overlay not applied; retrying");
                    clean = false;
                }
            }
            if let Ok(Some(i)) = manager.device_index(family).await {
                indexes.push(i);
            }
        }
        applied.send_replace(generation);
        // Wait for a reason to apply again.
        loop {
            tokio::select! {
                changed = desired_rx.changed() => {
                    if changed.is_err() { return }
                    break;
                }
                changed = mtus.changed(), if mtus_open => {
                    if changed.is_err() {
                        mtus_open = false;
                        continue;
                    }
                    break;
                }
                event = events.next(), if events_open => {
                    let Some(first) = event else {
                        tracing::warn!("felix: VXLAN notifications ended; relying on the resync timer");
                        events_open = false;
                        continue;
                    };
                    let mut relevant = concerns(&first, &indexes);
                    while let Some(msg) = events.try_next() {
                        relevant |= concerns(&msg, &indexes);
                    }
                    if relevant {
                        break;
                    }
                }
                _ = timer.tick() => break,
                _ = tokio::time::sleep(RETRY), if !clean => break,
            }
        }
    }
}
