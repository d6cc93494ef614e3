//! The task that keeps this node's VXLAN tunnel addresses, as calico-node
//! runs `allocate-tunnel-addrs`: once confd is in sync, then whenever an
//! IP pool or this node's Node changes, and every [`RESYNC`] whatever
//! happens (a missed trigger must not leave the node without a tunnel).
//! The rules (which pools, keep or replace, release) are
//! [`manul_ipam::tunnel`]'s; this is wiring only. A failure is logged and
//! retried with a doubling back-off; the last outcome is published for
//! `/status`.
//!
//! Why the allocation lives in `manul-ipam` and is driven from here: it
//! is an IPAM allocation (a handle, attributes, pools allowing `Tunnel`,
//! release by handle) plus the Node fields that record it, all
//! compare-and-swap writes to etcd; felix programs the kernel and must
//! not write etcd, and the node agent holds wiring, not rules. felix
//! reads the result back from the Node, through confd, like every other
//! node's.

use std::time::Duration;

use manul_confd::{Batch, ItemKey, Subscription};
use manul_ipam::Ipam;
use manul_ipam::tunnel::{Tunnels, ensure_vxlan_tunnels};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Reconcile this often even when nothing changed (calico-node's 5 min).
pub const RESYNC: Duration = Duration::from_secs(300);
/// The first retry after a failure; doubling up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the last reconciliation gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelState {
    /// The tunnels recorded on the Node (both `None`: no VXLAN pool).
    pub tunnels: Tunnels,
    /// The last failure, until a reconciliation succeeds.
    pub error: Option<String>,
}

/// Whether `batch` touches what the tunnels depend on: a pool, or node
/// `me`'s Node (its labels, its fields edited by someone else).
fn relevant(batch: &Batch, me: &str) -> bool {
    batch.deltas.iter().any(|d| match &d.key {
        ItemKey::IpPool(_) => true,
        ItemKey::Node(n) => n == me,
        _ => false,
    })
}

/// Start the task for node `me`, following `sub` (confd in sync); it
/// publishes on `tx`.
pub fn spawn(
    ipam: Ipam,
    me: String,
    mut sub: Subscription,
    tx: watch::Sender<TunnelState>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut retry = RETRY_MIN;
        loop {
            let state = match ensure_vxlan_tunnels(&ipam, &me).await {
                Ok(tunnels) => {
                    retry = RETRY_MIN;
                    TunnelState {
                        tunnels,
                        error: None,
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %me, error = %e, retry_in = ?retry, "VXLAN tunnel addresses not reconciled");
                    let last = tx.borrow().tunnels;
                    TunnelState {
                        tunnels: last,
                        error: Some(e.to_string()),
                    }
                }
            };
            let failed = state.error.is_some();
            tx.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
            let wait = if failed { retry } else { RESYNC };
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    b = sub.recv() => match b {
                        None => return,
                        Some(b) if relevant(&b, &me) => break,
                        Some(_) => {}
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            if failed {
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    })
}
