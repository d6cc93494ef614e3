//! The etcd side of confd: one tokio task that lists, then watches,
//! everything this node keeps, and publishes a [`Snapshot`] and its
//! [`Batch`]es of deltas.
//!
//! - **List then watch.** Every kept prefix is listed at one revision `R`
//!   (so the snapshot is consistent), then one watch on `/calico/` from
//!   `R + 1` delivers every later change in revision order; keys confd does
//!   not keep are dropped by name before decoding ([`crate::item`]). The
//!   events of one etcd transaction arrive together and are published as
//!   one batch, so subscribers never see half a transaction.
//! - **Resume by revision.** When the watch fails (connection lost, etcd
//!   restarting), the task backs off (doubling, from `backoff_min` to
//!   `backoff_max`) and watches again from the last revision it has fully
//!   applied plus one. The last state stays published meanwhile, with
//!   `in_sync = false`; it turns true again once the resumed watch has
//!   delivered everything up to the store's revision at the time of
//!   resuming (events, or an etcd progress notification).
//! - **Compaction.** If that revision has been compacted away, the task
//!   lists again and publishes only the true difference between what it had
//!   and what is there now ([`Snapshot::replace`]): an unchanged object is
//!   neither removed nor re-added.
//! - **Malformed values** are logged with their key and treated as absent
//!   ([`crate::item`]); the sync carries on.
//!
//! Subscribers get batches on a tokio broadcast channel and the current
//! [`Status`] on a watch channel. A subscriber that falls behind the
//! broadcast buffer is not lost: its [`Subscription`] diffs the last
//! snapshot it saw against the current one and hands that over as one
//! batch ([`Cause::Lagged`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use manul_datastore::ResourceKind;
use manul_datastore::etcd::{Datastore, Error as EtcdError, WatchEvent};
use manul_datastore::keys::prefix;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::item::{Decoded, decode, item_key};
use crate::snapshot::{Delta, Snapshot};

/// The prefix the one watch covers.
pub const WATCH_PREFIX: &str = "/calico/";

/// How the task runs.
#[derive(Debug, Clone)]
pub struct ConfdConfig {
    /// This node's name (as in its Node object and `host:<name>` affinities).
    pub node: String,
    /// First pause after a failure.
    pub backoff_min: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
    /// How often to ask etcd for a progress notification while a resumed
    /// watch is catching up.
    pub progress_interval: Duration,
    /// Batches buffered per subscriber before it is "lagged".
    pub channel_capacity: usize,
}

impl ConfdConfig {
    /// Defaults for `node`: back off 100 ms doubling to 5 s, progress asked
    /// every second while catching up, 256 batches buffered.
    pub fn new(node: impl Into<String>) -> Self {
        ConfdConfig {
            node: node.into(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            progress_interval: Duration::from_secs(1),
            channel_capacity: 256,
        }
    }
}

/// Why a batch was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The first list.
    Initial,
    /// Watch events.
    Watch,
    /// A re-list after compaction: the difference from the last state.
    Relist,
    /// This subscriber fell behind; the difference from what it last saw.
    Lagged,
}

/// Deltas applied together, and the snapshot they lead to.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Publication number, increasing by one per batch.
    pub seq: u64,
    /// The etcd revision the snapshot is at.
    pub revision: i64,
    /// Why.
    pub cause: Cause,
    /// The changes, in key order within one re-list, in etcd order otherwise.
    pub deltas: Vec<Delta>,
    /// The state after them.
    pub snapshot: Arc<Snapshot>,
}

/// What the task last published.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Whether the snapshot reflects etcd up to a recent revision: false
    /// before the first list, and from a watch failure until caught up.
    pub in_sync: bool,
    /// The revision the snapshot is at.
    pub revision: i64,
    /// The `seq` of the last batch published (0: none yet).
    pub seq: u64,
    /// The current snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Full lists done (the first one included).
    pub lists: u64,
    /// Watches resumed from a revision after a failure.
    pub resumes: u64,
    /// The last failure, while out of sync.
    pub last_error: Option<String>,
    /// etcd failures since start, by operation (`list`, `watch`).
    pub errors: BTreeMap<&'static str, u64>,
}

/// The running sync task. Dropping it stops the task.
#[derive(Debug)]
pub struct Confd {
    status: watch::Receiver<Arc<Status>>,
    batches: broadcast::Sender<Arc<Batch>>,
    task: JoinHandle<()>,
}

impl Drop for Confd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Confd {
    /// Start syncing from `datastore` (needs a tokio runtime).
    pub fn start(datastore: Datastore, config: ConfdConfig) -> Confd {
        let (status_tx, status) = watch::channel(Arc::new(Status::default()));
        let (batches, _) = broadcast::channel(config.channel_capacity.max(1));
        let publisher = Publisher {
            status: status_tx,
            batches: batches.clone(),
            current: Status::default(),
            snapshot: Snapshot::new(),
        };
        let task = tokio::spawn(run(datastore, config, publisher));
        Confd {
            status,
            batches,
            task,
        }
    }

    /// What was last published.
    pub fn status(&self) -> Arc<Status> {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn status_watch(&self) -> watch::Receiver<Arc<Status>> {
        self.status.clone()
    }

    /// Follow the batches from now on, starting from the current snapshot.
    pub fn subscribe(&self) -> Subscription {
        // Subscribe before reading the status: a batch published in between
        // is then both in the receiver and (maybe) in the status, and the
        // `seq` check drops the duplicate.
        let rx = self.batches.subscribe();
        let status = self.status.borrow().clone();
        Subscription {
            rx,
            status_rx: self.status.clone(),
            last: status.snapshot.clone(),
            last_seq: status.seq,
        }
    }

    /// Wait until the status is in sync at `revision` or later.
    pub async fn wait_in_sync(&self, revision: i64) {
        let mut rx = self.status.clone();
        // Err only if the task is gone, which Drop alone does.
        let _ = rx.wait_for(|s| s.in_sync && s.revision >= revision).await;
    }
}

/// One subscriber's view: the snapshot it has seen, and the batches after it.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Batch>>,
    status_rx: watch::Receiver<Arc<Status>>,
    last: Arc<Snapshot>,
    last_seq: u64,
}

impl Subscription {
    /// The state as of the last batch handed out (at first: at subscribing).
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.last
    }

    /// The next batch; `None` once the task has stopped. After falling
    /// behind, one [`Cause::Lagged`] batch carries the whole difference.
    pub async fn recv(&mut self) -> Option<Arc<Batch>> {
        loop {
            match self.rx.recv().await {
                Ok(batch) if batch.seq <= self.last_seq => continue,
                Ok(batch) => return Some(self.take(batch)),
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(self.catch_up(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next batch if one is published already, without waiting: a
    /// subscriber about to act on [`Subscription::snapshot`] drains these
    /// first, or it acts on the state as of its last `recv`, however old
    /// (a snapshot read at subscribing lacks everything published since).
    pub fn try_recv(&mut self) -> Option<Arc<Batch>> {
        loop {
            match self.rx.try_recv() {
                Ok(batch) if batch.seq <= self.last_seq => continue,
                Ok(batch) => return Some(self.take(batch)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => return Some(self.catch_up(n)),
                Err(
                    broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed,
                ) => return None,
            }
        }
    }

    fn take(&mut self, batch: Arc<Batch>) -> Arc<Batch> {
        self.last = batch.snapshot.clone();
        self.last_seq = batch.seq;
        batch
    }

    /// After missing `n` batches: one batch from the last snapshot seen to
    /// the current one.
    fn catch_up(&mut self, n: u64) -> Arc<Batch> {
        let status = self.status_rx.borrow().clone();
        tracing::debug!(missed = n, "confd subscriber lagged; diffing snapshots");
        let batch = Arc::new(Batch {
            seq: status.seq,
            revision: status.revision,
            cause: Cause::Lagged,
            deltas: self.last.diff(&status.snapshot),
            snapshot: status.snapshot.clone(),
        });
        self.last = status.snapshot.clone();
        self.last_seq = status.seq;
        batch
    }
}

/// Publishes batches and status; owns the working snapshot.
struct Publisher {
    status: watch::Sender<Arc<Status>>,
    batches: broadcast::Sender<Arc<Batch>>,
    current: Status,
    snapshot: Snapshot,
}

impl Publisher {
    fn publish(&mut self, cause: Cause, revision: i64, deltas: Vec<Delta>) {
        self.current.revision = self.current.revision.max(revision);
        if deltas.is_empty() {
            self.send_status();
            return;
        }
        let snapshot = Arc::new(self.snapshot.clone());
        self.current.seq += 1;
        self.current.snapshot = snapshot.clone();
        // Status first: a subscriber that lags reads it to catch up.
        self.send_status();
        let batch = Arc::new(Batch {
            seq: self.current.seq,
            revision: self.current.revision,
            cause,
            deltas,
            snapshot,
        });
        tracing::debug!(
            seq = batch.seq,
            revision = batch.revision,
            ?cause,
            deltas = batch.deltas.len(),
            "confd batch"
        );
        // No receivers is fine.
        let _ = self.batches.send(batch);
    }

    fn set_in_sync(&mut self, in_sync: bool, error: Option<String>) {
        // A failure always publishes: its count in `errors` moved.
        if error.is_some() || self.current.in_sync != in_sync || self.current.last_error != error {
            if in_sync {
                tracing::info!(revision = self.current.revision, "confd in sync");
            }
            self.current.in_sync = in_sync;
            self.current.last_error = error;
            self.send_status();
        }
    }

    fn send_status(&self) {
        self.status.send_replace(Arc::new(self.current.clone()));
    }
}

/// The prefixes listed for node `me`; together with [`item_key`] they cover
/// exactly what the watch on [`WATCH_PREFIX`] keeps.
pub fn list_prefixes(me: &str) -> Vec<String> {
    let mut out: Vec<String> = [
        ResourceKind::IpPool,
        ResourceKind::BgpConfiguration,
        ResourceKind::BgpPeer,
        ResourceKind::BgpFilter,
        ResourceKind::Node,
        ResourceKind::WorkloadEndpoint,
        ResourceKind::FelixConfiguration,
    ]
    .into_iter()
    .map(prefix::kind)
    .collect();
    out.push(prefix::host_affinities(me));
    out.push(prefix::all_blocks());
    out
}

/// Doubling pause between attempts.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}

/// How a watch ended.
enum WatchEnd {
    /// The revision to resume from is gone: list again.
    Compacted,
    /// Failed; everything up to the revision has been applied.
    Failed(EtcdError, i64),
}

async fn run(ds: Datastore, cfg: ConfdConfig, mut publisher: Publisher) {
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    // The last revision fully applied, when a watch may resume after it.
    let mut resume_after: Option<i64> = None;
    loop {
        let (after, resumed) = match resume_after.take() {
            Some(r) => (r, true),
            None => match list(&ds, &cfg, &mut publisher).await {
                Ok(r) => (r, false),
                Err(e) => {
                    tracing::warn!(error = %e, "confd: listing failed; retrying");
                    *publisher.current.errors.entry("list").or_default() += 1;
                    publisher.set_in_sync(false, Some(e.to_string()));
                    backoff.wait().await;
                    continue;
                }
            },
        };
        match follow(&ds, &cfg, &mut publisher, after, resumed, &mut backoff).await {
            WatchEnd::Compacted => {
                tracing::info!(after, "confd: watch revision compacted; listing again");
            }
            WatchEnd::Failed(e, applied) => {
                tracing::warn!(error = %e, applied, "confd: watch failed; resuming after backoff");
                *publisher.current.errors.entry("watch").or_default() += 1;
                publisher.set_in_sync(false, Some(e.to_string()));
                resume_after = Some(applied);
                backoff.wait().await;
            }
        }
    }
}

/// List every kept prefix at one revision and publish the difference.
async fn list(
    ds: &Datastore,
    cfg: &ConfdConfig,
    publisher: &mut Publisher,
) -> Result<i64, EtcdError> {
    let me = cfg.node.as_str();
    let mut items = BTreeMap::new();
    let mut revision = None;
    for p in list_prefixes(me) {
        let (kvs, rev) = ds.list(&p, revision).await?;
        revision = Some(rev);
        for kv in kvs {
            if let Decoded::Item(key, Some(item)) = decode(me, &kv.key, &kv.value) {
                items.insert(key, item);
            }
        }
    }
    let revision = revision.unwrap_or_default();
    let first = publisher.current.lists == 0;
    publisher.current.lists += 1;
    let deltas = publisher.snapshot.replace(items);
    tracing::info!(
        revision,
        items = publisher.snapshot.len(),
        deltas = deltas.len(),
        "confd listed"
    );
    let cause = if first { Cause::Initial } else { Cause::Relist };
    // A re-list may go back to an older revision only if etcd was restored
    // from a backup; the snapshot is what etcd holds now either way.
    publisher.current.revision = revision;
    publisher.publish(cause, revision, deltas);
    publisher.set_in_sync(true, None);
    Ok(revision)
}

/// Watch from `after + 1` and apply events until the watch ends.
async fn follow(
    ds: &Datastore,
    cfg: &ConfdConfig,
    publisher: &mut Publisher,
    after: i64,
    resumed: bool,
    backoff: &mut Backoff,
) -> WatchEnd {
    let mut watch = match ds.watch(WATCH_PREFIX, after + 1).await {
        Ok(w) => w,
        Err(e) => return WatchEnd::Failed(e, after),
    };
    // Resumed: in sync again once everything up to `target` has arrived.
    let mut target = None;
    if resumed {
        publisher.current.resumes += 1;
        match ds.current_revision().await {
            Ok(t) if t > after => target = Some(t),
            Ok(_) => publisher.set_in_sync(true, None),
            Err(e) => return WatchEnd::Failed(e, after),
        }
        if target.is_some() {
            let _ = watch.request_progress().await;
        }
    }
    backoff.reset();
    let me = cfg.node.as_str();
    let mut ticker = tokio::time::interval(cfg.progress_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            item = watch.recv() => item,
            _ = ticker.tick(), if target.is_some() => {
                let _ = watch.request_progress().await;
                continue;
            }
        };
        let mut deltas = Vec::new();
        let mut next = first;
        let end = loop {
            match next {
                Some(Ok(WatchEvent::Put(kv))) => {
                    if let Decoded::Item(key, item) = decode(me, &kv.key, &kv.value) {
                        deltas.extend(publisher.snapshot.set(key, item));
                    }
                }
                Some(Ok(WatchEvent::Delete { key, .. })) => {
                    if let Some(key) = item_key(me, &key) {
                        deltas.extend(publisher.snapshot.set(key, None));
                    }
                }
                Some(Ok(WatchEvent::Progress { .. })) => {}
                Some(Ok(WatchEvent::Compacted { .. })) => break Some(WatchEnd::Compacted),
                Some(Err(e)) => break Some(WatchEnd::Failed(e, watch.revision())),
                None => {
                    break Some(WatchEnd::Failed(
                        EtcdError::Etcd {
                            source: "watch ended".into(),
                        },
                        watch.revision(),
                    ));
                }
            }
            // Drain what is already received (one transaction's events
            // arrive in one response) into the same batch.
            match watch.recv().now_or_never() {
                Some(item) => next = item,
                None => break None,
            }
        };
        publisher.publish(Cause::Watch, watch.revision(), deltas);
        if target.is_some_and(|t| watch.revision() >= t) {
            target = None;
            publisher.set_in_sync(true, None);
        }
        if let Some(end) = end {
            return end;
        }
    }
}
