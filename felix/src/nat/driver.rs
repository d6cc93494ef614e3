//! [`NatDriver`]: the tokio task that keeps manul's NAT table
//! ([`super::table`]) equal to what the pools want ([`super::rules`]),
//! owned and reconciled as the route reconciler owns its routes:
//!
//! - **Start**: nothing is written before the first desired set (an empty
//!   pool list must not be taken for "no pools" before confd has synced).
//! - **Reconcile**: a dump of the table, the plan, one transaction. Over a
//!   table that is already right, nothing is written (a restart changes
//!   nothing in the kernel); a pool change adds or deletes set elements
//!   only; a table someone damaged (a rule, chain or set changed, or the
//!   table deleted) is made again in one transaction.
//! - **Follow**: nftables notifications (`NFNLGRP_NFTABLES`) that touch
//!   the table — manul's own writes included; the dump then finds nothing
//!   to do — start a reconcile at once; a full reconcile also runs every
//!   `resync_interval`, and every `retry_interval` while the last one
//!   failed.
//! - **Errors** are reported ([`NatProgress`]: the last error, a failure
//!   count) and retried; they never stop felix.
//!
//! A desired set equal to the one already in the kernel costs nothing
//! (felix hands the pools on with every update of its inputs).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::nfnl::{Nfnl, NfnlError, Notifications, Seen};
use super::rules::{NatDesired, Plan, plan};
use super::table;

/// How the NAT task runs.
#[derive(Debug, Clone)]
pub struct NatConfig {
    /// Work in this network namespace (`/run/netns/<name>`); `None`: here.
    pub netns: Option<PathBuf>,
    /// Dump and reconcile this often regardless of notifications.
    pub resync_interval: Duration,
    /// After a failure, try again this often.
    pub retry_interval: Duration,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            netns: None,
            resync_interval: Duration::from_secs(90),
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// Where the NAT task is; published after every reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatProgress {
    /// The last desired generation processed.
    pub generation: u64,
    /// What is wanted (`None`: nothing yet; nothing is written).
    pub desired: Option<Arc<NatDesired>>,
    /// Whether the kernel held the desired table after the last reconcile.
    pub in_sync: bool,
    /// The last failure, while it lasts (cleared by a reconcile that works).
    pub last_error: Option<String>,
    /// Reconciles that failed since start.
    pub failures: u64,
    /// Transactions written since start.
    pub writes: u64,
    /// Times the table was found damaged or changed by someone else and
    /// made right again.
    pub repairs: u64,
}

/// The running task. Dropping it stops the task; the table stays.
#[derive(Debug)]
pub struct NatDriver {
    desired: watch::Sender<(u64, Arc<NatDesired>)>,
    progress: watch::Receiver<Arc<NatProgress>>,
    task: JoinHandle<()>,
}

impl Drop for NatDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NatDriver {
    /// Start the task (needs a tokio runtime). Sockets that cannot be
    /// opened are reported in the progress and tried again.
    pub fn start(config: NatConfig) -> NatDriver {
        let (desired, desired_rx) = watch::channel((0, Arc::new(NatDesired::default())));
        let (progress_tx, progress) = watch::channel(Arc::new(NatProgress::default()));
        let state = State {
            config,
            nfnl: None,
            desired: None,
            generation: 0,
            verified: None,
            progress: NatProgress::default(),
            tx: progress_tx,
        };
        let task = tokio::spawn(state.run(desired_rx));
        NatDriver {
            desired,
            progress,
            task,
        }
    }

    /// Replace what is wanted; returns its generation.
    pub fn set_desired(&self, d: NatDesired) -> u64 {
        let mut generation = 0;
        self.desired.send_modify(|(g, cur)| {
            *g += 1;
            generation = *g;
            if **cur != d {
                *cur = Arc::new(d);
            }
        });
        generation
    }

    /// The current progress.
    pub fn progress(&self) -> Arc<NatProgress> {
        self.progress.borrow().clone()
    }

    /// The progress as it changes.
    pub fn watch_progress(&self) -> watch::Receiver<Arc<NatProgress>> {
        self.progress.clone()
    }

    /// Wait until `generation` has been processed; its progress.
    pub async fn wait_generation(&self, generation: u64) -> Arc<NatProgress> {
        let mut rx = self.progress.clone();
        match rx.wait_for(|p| p.generation >= generation).await {
            Ok(p) => p.clone(),
            Err(_) => self.progress(),
        }
    }
}

struct State {
    config: NatConfig,
    nfnl: Option<Nfnl>,
    desired: Option<Arc<NatDesired>>,
    generation: u64,
    /// The desired set the kernel was last found or made to hold.
    verified: Option<Arc<NatDesired>>,
    progress: NatProgress,
    tx: watch::Sender<Arc<NatProgress>>,
}

impl State {
    async fn run(mut self, mut desired_rx: watch::Receiver<(u64, Arc<NatDesired>)>) {
        let mut events = self.open_notifications();
        // Nothing before the first desired set.
        while desired_rx.borrow_and_update().0 == 0 {
            if desired_rx.changed().await.is_err() {
                return;
            }
        }
        self.take(&desired_rx);
        self.reconcile(false).await;
        let mut resync = tokio::time::interval(self.config.resync_interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        let mut retry = tokio::time::interval(self.config.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = desired_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.take(&desired_rx);
                    let same = match (&self.desired, &self.verified) {
                        (Some(d), Some(v)) => Arc::ptr_eq(d, v) || d == v,
                        _ => false,
                    };
                    if same && self.progress.in_sync {
                        self.publish();
                    } else {
                        self.reconcile(false).await;
                    }
                }
                seen = next_event(&mut events) => match seen {
                    Ok(Seen { ours, overrun }) => {
                        if overrun {
                            tracing::warn!("felix: nftables notifications lost (socket overrun); checking the NAT table");
                        }
                        if ours || overrun {
                            self.reconcile(true).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "felix: nftables notifications failed; relying on the resync timer");
                        events = None;
                    }
                },
                _ = resync.tick() => {
                    if events.is_none() {
                        events = self.open_notifications();
                    }
                    self.reconcile(true).await;
                }
                _ = retry.tick(), if !self.progress.in_sync => self.reconcile(true).await,
            }
        }
    }

    fn open_notifications(&self) -> Option<Notifications> {
        match Notifications::open(self.config.netns.as_deref()) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "felix: cannot follow nftables notifications; the NAT table is checked on a timer");
                None
            }
        }
    }

    fn take(&mut self, rx: &watch::Receiver<(u64, Arc<NatDesired>)>) {
        let (generation, d) = rx.borrow().clone();
        self.generation = generation;
        self.desired = Some(d);
    }

    fn publish(&mut self) {
        self.progress.generation = self.generation;
        self.progress.desired = self.desired.clone();
        self.tx.send_replace(Arc::new(self.progress.clone()));
    }

    /// Dump, plan, write. `unprompted`: not after a change of the desired
    /// set, so a difference found is someone else's doing.
    async fn reconcile(&mut self, unprompted: bool) {
        let Some(desired) = self.desired.clone() else {
            return;
        };
        match self.try_reconcile(&desired, unprompted).await {
            Ok(()) => {
                self.progress.in_sync = true;
                self.progress.last_error = None;
                self.verified = Some(desired);
            }
            Err(e) => {
                // A socket that failed is opened again next time.
                if !matches!(e, NfnlError::Refused { .. }) {
                    self.nfnl = None;
                }
                self.progress.in_sync = false;
                self.progress.failures += 1;
                tracing::warn!(error = %e, "felix: programming the NAT table failed; will retry");
                self.progress.last_error = Some(e.to_string());
            }
        }
        self.publish();
    }

    async fn try_reconcile(
        &mut self,
        desired: &NatDesired,
        unprompted: bool,
    ) -> Result<(), NfnlError> {
        if self.nfnl.is_none() {
            self.nfnl = Some(Nfnl::open(self.config.netns.as_deref())?);
        }
        let Some(nfnl) = self.nfnl.as_mut() else {
            return Ok(());
        };
        let dump = nfnl.dump_table().await?;
        let actual = table::actual(&dump);
        let reqs = match plan(desired, &actual) {
            Plan::Nothing => return Ok(()),
            Plan::Create => {
                if self.verified.is_some() {
                    self.progress.repairs += 1;
                    tracing::warn!(
                        table = table::TABLE,
                        "felix: the NAT table was deleted; making it again"
                    );
                } else {
                    tracing::info!(table = table::TABLE, nat_pools = ?desired.nat_pools, "felix: making the NAT table");
                }
                table::create(desired)
            }
            Plan::Rebuild(why) => {
                self.progress.repairs += 1;
                tracing::warn!(
                    table = table::TABLE,
                    why,
                    "felix: the NAT table is not as manul made it; making it again"
                );
                table::rebuild(desired)
            }
            Plan::Elements(changes) => {
                if unprompted && self.verified.as_deref() == Some(desired) {
                    self.progress.repairs += 1;
                    tracing::warn!(
                        ?changes,
                        "felix: the NAT table's pool sets were changed by someone else; putting them back"
                    );
                } else {
                    tracing::info!(nat_pools = ?desired.nat_pools, pools = ?desired.pools, "felix: NAT pool sets updated");
                }
                table::element_changes(&changes)
            }
        };
        nfnl.write(&reqs).await?;
        self.progress.writes += 1;
        Ok(())
    }
}

async fn next_event(events: &mut Option<Notifications>) -> std::io::Result<Seen> {
    match events {
        Some(n) => n.next().await,
        None => std::future::pending().await,
    }
}

/// Remove manul's NAT table (in `netns`); whether there was one. A kernel
/// without nf_tables has none.
pub async fn cleanup(netns: Option<&std::path::Path>) -> Result<bool, NfnlError> {
    let mut nfnl = match Nfnl::open(netns) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let no_nftables = |e: &NfnlError| {
        matches!(
            e.errno(),
            Some(libc::EPROTONOSUPPORT) | Some(libc::EOPNOTSUPP)
        )
    };
    match nfnl.dump_table().await {
        Ok(d) if d.table.is_none() => return Ok(false),
        Ok(_) => {}
        Err(e) if no_nftables(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    match nfnl
        .write(&[table::Request {
            msg: table::delete_table(),
            flags: 0,
        }])
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
