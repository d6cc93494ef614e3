//! The felix loop: confd's snapshot plus the remote prefixes BGP learned
//! become felix's desired state, each time either changes.
//!
//! Restart without loss: felix writes nothing before the first
//! [`Best::Replace`] — after BGP has converged when the kernel holds
//! routes a previous run left, so they are not withdrawn while the
//! sessions come back; at once on a cold start, which has nothing to
//! protect ([`crate::speaker::StartKind`]); after a speaker
//! restart ([`Best::Hold`]) felix keeps the remote routes it has until the
//! new speaker has converged. Every desired set, the first included, is
//! made from confd's latest state (the batches published while BGP
//! converged are taken first), so the routes of pods added meanwhile are
//! never deleted and re-added.
//!
//! Routes to BGP peers through their gateways (BGPPeer `reachableBy`)
//! come from confd's BGP view, which is derived in a task of its own: the
//! loop also wakes when the view changes.
//!
//! What the loop knows that felix does not — the remote prefixes and
//! whether it is holding — it publishes as a [`FelixFeed`], read by the
//! node's status.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use manul_confd::bgp::view::NodeBgpView;
use manul_confd::{Batch, Cause, Subscription};
use manul_felix::{Felix, calico};
use manul_status::Hold;
use tokio::sync::{mpsc, watch};

use super::remote::RemoteRoutes;
use crate::metrics::Metrics;
use crate::speaker::Best;

/// What the loop publishes about felix's inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FelixFeed {
    /// Remote prefixes felix routes to (from BGP, or from IPAM for
    /// VXLAN pools).
    pub remote_prefixes: usize,
    /// Set while felix's writes are held (after a start or a speaker
    /// restart, until BGP has converged).
    pub holding: Option<Hold>,
}

/// The loop's inputs and outputs.
#[derive(Debug)]
pub struct FelixLoop {
    pub felix: Arc<Felix>,
    /// confd's batches (its snapshot is felix's cluster state).
    pub sub: Subscription,
    /// This node's name.
    pub me: String,
    /// confd's BGP view (the prefixes this node originates).
    pub view: watch::Receiver<Arc<NodeBgpView>>,
    /// Remote prefixes and their next hops, as BGP's best paths change.
    pub remote: RemoteRoutes,
    /// From the speaker driver.
    pub best: mpsc::UnboundedReceiver<Best>,
    pub metrics: Arc<Metrics>,
    /// Where [`FelixFeed`] is published.
    pub feed: watch::Sender<FelixFeed>,
    /// A converged speaker's Loc-RIB was taken: the hold ends with the
    /// next update.
    pub converged: bool,
}

impl FelixLoop {
    /// Run until confd or the speaker driver stops.
    pub async fn run(mut self) {
        let ipip = calico::ipip_available();
        // Nothing is written before BGP has converged (the first Replace).
        loop {
            match self.best.recv().await {
                None => return,
                Some(b @ Best::Replace(_)) => {
                    self.take(b);
                    break;
                }
                Some(b) => self.take(b),
            }
        }
        loop {
            while let Ok(b) = self.best.try_recv() {
                self.take(b);
            }
            // confd's batches published since the last one taken (all of
            // them before the first update: that one is made after BGP
            // converged, seconds after subscribing, and a snapshot without
            // the pods added meanwhile would have felix delete their
            // routes, which the CNI plugin wrote, and re-add them).
            while let Some(b) = self.sub.try_recv() {
                self.observe(&b);
            }
            let snap = self.sub.snapshot();
            let peer_routes = peer_routes(&self.view.borrow_and_update());
            let u = self.felix.update(
                snap,
                &self.me,
                self.remote.routes().clone(),
                peer_routes,
                ipip,
            );
            tracing::debug!(
                generation = u.generation,
                routes = u.routes,
                workloads = snap.workloads().count(),
                remote = self.remote.len(),
                "felix update"
            );
            let (remote, release) = (u.remote, std::mem::take(&mut self.converged));
            self.feed.send_if_modified(|f| {
                let changed = f.remote_prefixes != remote || (release && f.holding.is_some());
                f.remote_prefixes = remote;
                if release {
                    f.holding = None;
                }
                changed
            });
            self.metrics.reconcile_started(&self.felix, u);
            tokio::select! {
                b = self.sub.recv() => match b {
                    None => return,
                    Some(b) => self.observe(&b),
                },
                // The driver stops only with confd; until then, follow confd.
                Some(b) = self.best.recv() => self.take(b),
                // The BGP view is derived from confd's batches in a task
                // of its own: a peer's gateway may change after the batch.
                Ok(()) = self.view.changed() => {}
            }
        }
    }

    /// Take one message from the speaker driver.
    fn take(&mut self, best: Best) {
        let local = self.view.borrow().prefixes.clone();
        match best {
            Best::Hold(h) => {
                self.feed.send_modify(|f| f.holding = Some(h));
            }
            Best::Replace(all) => {
                self.remote.clear();
                self.remote.apply(all, &local);
                self.converged = true;
            }
            Best::Changes(c) => self.remote.apply(c, &local),
        }
    }

    /// Count a confd batch's IPAM operations (not the initial list's).
    fn observe(&self, b: &Batch) {
        if b.cause != Cause::Initial {
            self.metrics.observe_ipam(&b.deltas);
        }
    }
}

/// The routes to BGP peers through their gateways (BGPPeer `reachableBy`,
/// resolved by confd): peer → gateway.
pub fn peer_routes(view: &NodeBgpView) -> BTreeMap<IpAddr, IpAddr> {
    view.peers
        .values()
        .filter_map(|p| Some((p.address, p.reachable_by?)))
        .collect()
}
