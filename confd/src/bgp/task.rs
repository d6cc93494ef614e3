//! [`BgpViewTask`]: a tokio task that keeps a node's BGP view current from
//! a confd [`Subscription`], for the node agent to hand to the speaker: the
//! whole view on a watch channel, and each batch's [`BgpChanges`] (only the
//! peers and prefixes that changed) on an unbounded channel.
//!
//! [`BgpViewTask::spawn`] hands both receivers to the caller. The task
//! needs no handle: it ends when the receiver of the changes is dropped,
//! or when confd stops.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::deriver::{BgpChanges, BgpDeriver};
use super::view::NodeBgpView;
use crate::sync::Subscription;

/// The two ends of a running [`BgpViewTask`].
#[derive(Debug)]
pub struct BgpViewTask {
    /// The current view.
    pub view: watch::Receiver<Arc<NodeBgpView>>,
    /// What each batch changed; the first message is the whole initial
    /// view. Dropping it stops the task.
    pub changes: mpsc::UnboundedReceiver<BgpChanges>,
}

impl BgpViewTask {
    /// Follow `sub` for node `me` (starts from the subscription's snapshot).
    pub fn spawn(mut sub: Subscription, me: &str) -> BgpViewTask {
        let mut deriver = BgpDeriver::new(me);
        let first = deriver.reset(sub.snapshot());
        let (view_tx, view) = watch::channel(Arc::new(deriver.view().clone()));
        let (tx, changes) = mpsc::unbounded_channel();
        let _ = tx.send(first);
        tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    b = sub.recv() => match b {
                        Some(b) => b,
                        None => return,
                    },
                    () = tx.closed() => return,
                };
                let ch = deriver.apply(&batch.snapshot, &batch.deltas);
                if ch.is_empty() {
                    continue;
                }
                view_tx.send_replace(Arc::new(deriver.view().clone()));
                for p in deriver.problems() {
                    tracing::warn!(problem = %p, "BGP configuration problem");
                }
                if tx.send(ch).is_err() {
                    return;
                }
            }
        });
        BgpViewTask { view, changes }
    }
}
