//! [`Reconciler`]: the tokio task that keeps the kernel's routes equal to
//! the desired ones, touching only its own (see [`crate::plan`]).
//!
//! - **Start**: nothing is written before the first desired set arrives
//!   (an empty table must not be taken for "delete everything"). Then a
//!   full dump of links and routes, and the minimal writes — no flush: over
//!   a table that is already right, a restart writes nothing.
//! - **Events**: a second netlink socket follows route and link
//!   notifications (`RTNLGRP_IPV4_ROUTE`, `RTNLGRP_IPV6_ROUTE`,
//!   `RTNLGRP_LINK`; [`crate::events`]). An owned route someone deletes or
//!   changes is rewritten at once; a route that appears with felix's
//!   protocol but is not wanted is deleted; a workload interface that
//!   appears gets its route. The notifications of felix's own bulk writes
//!   (at least [`BULK`] routes) are counted off undecoded.
//! - **Resync**: a full dump every `resync_interval` (Calico's felix: 90 s),
//!   in case a notification was lost; at once when the notification
//!   socket reports an overrun (`ENOBUFS`).
//! - **Pipelining**: writes go out in bulk, thousands of requests per
//!   `sendmsg`, without waiting for each acknowledgement ([`crate::batch`]).
//! - **Errors** are per route: logged with the route, retried every
//!   `retry_interval` (only those routes), never fatal.
//! - **Desired changes** plan only the destinations whose target changed
//!   ([`changed_destinations`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::batch::{BatchWriter, Write};
use crate::events::{Events, OwnWrites, group};
use crate::interface::configure_workload_interfaces;
use crate::kernel::KernelRoute;
use crate::netlink::{self, NetlinkError};
use crate::netns::in_netns;
use crate::plan::{Actual, Ownership, Plan, plan};
use crate::route::{DesiredRoutes, Target};
use manul_status::FamilyCount;

/// How the reconciler runs.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Protocol, table and metric of felix's routes.
    pub ownership: Ownership,
    /// Full dump and reconcile this often (Calico: 90 s).
    pub resync_interval: Duration,
    /// Retry failed routes this often.
    pub retry_interval: Duration,
    /// Work in this network namespace (`/run/netns/<name>`); `None`: here.
    pub netns: Option<PathBuf>,
    /// For this long after an interface appears, felix's routes through it
    /// that it does not want are kept (the CNI plugin's pod route arrives
    /// before the pod's endpoint; [`crate::plan`]).
    pub new_link_grace: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        ReconcilerConfig {
            ownership: Ownership::default(),
            resync_interval: Duration::from_secs(90),
            retry_interval: Duration::from_secs(1),
            netns: None,
            new_link_grace: Duration::from_secs(10),
        }
    }
}

/// Counters, for tests, benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Routes created or replaced.
    pub upserts: AtomicU64,
    /// Routes deleted.
    pub deletes: AtomicU64,
    /// Writes the kernel refused.
    pub failures: AtomicU64,
    /// Full resyncs (the first one included).
    pub resyncs: AtomicU64,
    /// Dumps retried because the kernel marked them interrupted.
    pub dump_retries: AtomicU64,
    /// Route and link notifications received.
    pub events: AtomicU64,
}

impl Stats {
    /// Route writes so far (upserts + deletes).
    pub fn writes(&self) -> u64 {
        self.upserts.load(Ordering::Relaxed) + self.deletes.load(Ordering::Relaxed)
    }
}

/// Where the reconciler is. Published after every change to what felix
/// knows of the kernel or wants of it (a dump, a notification, a write),
/// so a reader sees a route counted the moment it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last desired generation fully processed (every write answered).
    pub generation: u64,
    /// Routes felix owns that the kernel holds, by family (from the dump
    /// at start and the notifications since; known before the first
    /// desired set too).
    pub kernel: FamilyCount,
    /// Whether `kernel` is what the kernel holds: a dump has succeeded
    /// (false before the first, or while the first failed). With
    /// `kernel` empty it tells a cold start (no route of felix's to
    /// protect) from a restart, before the first desired set.
    pub kernel_known: bool,
    /// Routes in the desired set being reconciled (`None`: no desired set
    /// yet, nothing is written).
    pub desired: Option<usize>,
    /// Routes whose write failed, with the error; retried.
    pub failed: BTreeMap<IpNet, String>,
    /// Desired routes that cannot be written now, and why.
    pub blocked: Vec<(IpNet, String)>,
}

/// Destinations whose target differs between `old` and `new` (a merge walk
/// over both sorted maps: a small change to a large table plans only what
/// changed).
pub fn changed_destinations(old: &DesiredRoutes, new: &DesiredRoutes) -> BTreeSet<IpNet> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut out = BTreeSet::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some((k, _)), None) => {
                out.insert(**k);
                a.next();
            }
            (None, Some((k, _))) => {
                out.insert(**k);
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                Less => {
                    out.insert(**ka);
                    a.next();
                }
                Greater => {
                    out.insert(**kb);
                    b.next();
                }
                Equal => {
                    if va != vb {
                        out.insert(**ka);
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
}

/// Setting up the reconciler failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Opening netlink sockets (in the namespace) failed.
    #[error("opening netlink sockets: {0}")]
    Socket(#[from] std::io::Error),
}

/// The running reconciler. Dropping it stops the task; routes stay.
#[derive(Debug)]
pub struct Reconciler {
    desired: watch::Sender<(u64, Arc<DesiredRoutes>)>,
    resync: watch::Sender<Duration>,
    progress: watch::Receiver<Arc<Progress>>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The periodic resync's timer, first due one period from now; `None`
/// for a zero period (no periodic resync).
fn resync_timer(every: Duration) -> Option<tokio::time::Interval> {
    if every.is_zero() {
        return None;
    }
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(t)
}

/// Writes at least this many routes at once announce their notifications
/// to the event reader, which then drops them undecoded.
pub const BULK: usize = 256;

impl Reconciler {
    /// Open the netlink sockets (in `config.netns`) and start the task.
    /// Nothing is written until [`Reconciler::set_desired`].
    pub async fn start(config: ReconcilerConfig) -> Result<Reconciler, StartError> {
        let handle = in_netns(config.netns.as_deref(), || {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok(handle)
        })?;
        let events = Events::open(
            config.netns.as_deref(),
            &[group::LINK, group::IPV4_ROUTE, group::IPV6_ROUTE],
            Some(config.ownership.protocol),
        )?;
        let writer = BatchWriter::open(config.netns.as_deref())?;
        let (desired, desired_rx) = watch::channel((0, Arc::new(DesiredRoutes::new())));
        let (progress_tx, progress) = watch::channel(Arc::new(Progress::default()));
        let (resync, resync_rx) = watch::channel(config.resync_interval);
        let stats = Arc::new(Stats::default());
        let state = State {
            own: config.ownership,
            config,
            handle,
            writer: Some(writer),
            own_writes: events.own_writes(),
            overrun: false,
            links: HashMap::new(),
            link_seen: HashMap::new(),
            dumped_links: false,
            held: Vec::new(),
            actual: Actual::default(),
            desired: Arc::new(DesiredRoutes::new()),
            generation: 0,
            failed: BTreeMap::new(),
            blocked: Vec::new(),
            configured: BTreeSet::new(),
            stats: stats.clone(),
            progress: progress_tx,
        };
        let task = tokio::spawn(state.run(desired_rx, resync_rx, events));
        Ok(Reconciler {
            desired,
            resync,
            progress,
            stats,
            task,
        })
    }

    /// Replace the desired routes; returns their generation.
    pub fn set_desired(&self, routes: DesiredRoutes) -> u64 {
        let mut generation = 0;
        self.desired.send_modify(|(g, r)| {
            *g += 1;
            generation = *g;
            *r = Arc::new(routes);
        });
        generation
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Change the full resync's period from now on (Calico's
    /// `routeRefreshInterval`); zero: no periodic resync (as Calico's 0).
    pub fn set_resync_interval(&self, every: Duration) {
        self.resync.send_if_modified(|d| {
            let changed = *d != every;
            *d = every;
            changed
        });
    }

    /// The current progress.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.borrow().clone()
    }

    /// The progress as it changes.
    pub fn watch_progress(&self) -> watch::Receiver<Arc<Progress>> {
        self.progress.clone()
    }

    /// Wait until `generation` has been processed; its progress.
    pub async fn wait_generation(&self, generation: u64) -> Arc<Progress> {
        let mut rx = self.progress.clone();
        match rx.wait_for(|p| p.generation >= generation).await {
            Ok(p) => p.clone(),
            Err(_) => self.progress(),
        }
    }
}

struct State {
    config: ReconcilerConfig,
    own: Ownership,
    handle: Handle,
    writer: Option<BatchWriter>,
    /// Announces bulk writes to the event reader.
    own_writes: OwnWrites,
    /// Notifications were lost: resync.
    overrun: bool,
    links: HashMap<String, u32>,
    /// When interfaces that appeared since the first dump did (by index).
    link_seen: HashMap<u32, Instant>,
    /// Whether links were dumped once (those present then are not new).
    dumped_links: bool,
    /// Owned routes kept on new interfaces ([`Plan::held`]).
    held: Vec<IpNet>,
    actual: Actual,
    desired: Arc<DesiredRoutes>,
    generation: u64,
    failed: BTreeMap<IpNet, String>,
    blocked: Vec<(IpNet, String)>,
    /// Workload interfaces configured, by name and index.
    configured: BTreeSet<(String, u32)>,
    stats: Arc<Stats>,
    progress: watch::Sender<Arc<Progress>>,
}

impl State {
    async fn run(
        mut self,
        mut desired_rx: watch::Receiver<(u64, Arc<DesiredRoutes>)>,
        mut resync_rx: watch::Receiver<Duration>,
        mut events: Events,
    ) {
        // Until the first desired set: learn what the kernel holds (a
        // dump, then notifications) and write nothing.
        if !self
            .observe_until_desired(&mut desired_rx, &mut events)
            .await
        {
            return;
        }
        self.take_desired(&desired_rx);
        self.resync().await;
        let mut resync = resync_timer(*resync_rx.borrow_and_update());
        let mut resync_open = true;
        let mut events_open = true;
        let mut retry = tokio::time::interval(self.config.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = desired_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let changed = self.take_desired(&desired_rx);
                    self.configure_interfaces();
                    self.reconcile(Some(&changed)).await;
                }
                event = events.next(), if events_open => {
                    let Some(first) = event else {
                        tracing::error!("felix: netlink notification socket closed; relying on the resync timer");
                        events_open = false;
                        continue;
                    };
                    let mut dirty = BTreeSet::new();
                    let mut links_changed = self.absorb(first, &mut dirty);
                    while let Some(msg) = events.try_next() {
                        links_changed |= self.absorb(msg, &mut dirty);
                    }
                    if std::mem::take(&mut self.overrun) {
                        tracing::warn!("felix: netlink notifications lost (socket overrun); full resync");
                        self.resync().await;
                    } else if links_changed {
                        self.reconcile(None).await;
                    } else if !dirty.is_empty() {
                        self.reconcile(Some(&dirty)).await;
                    }
                }
                changed = resync_rx.changed(), if resync_open => match changed {
                    Ok(()) => resync = resync_timer(*resync_rx.borrow_and_update()),
                    Err(_) => resync_open = false,
                },
                _ = async { resync.as_mut().expect("guarded").tick().await }, if resync.is_some() => {
                    self.resync().await
                }
                _ = retry.tick(), if !self.failed.is_empty() || !self.blocked.is_empty() || !self.held.is_empty() => {
                    // Only what failed or was blocked: a route another owner
                    // holds must not cost a full plan every second.
                    let again: BTreeSet<IpNet> = self
                        .failed
                        .keys()
                        .copied()
                        .chain(self.blocked.iter().map(|(d, _)| *d))
                        .chain(self.held.iter().copied())
                        .collect();
                    self.reconcile(Some(&again)).await;
                }
            }
        }
    }

    /// Before the first desired set: dump the kernel's links and routes
    /// into the model and follow notifications, publishing what the
    /// kernel holds; write nothing. False when the reconciler is dropped.
    async fn observe_until_desired(
        &mut self,
        desired_rx: &mut watch::Receiver<(u64, Arc<DesiredRoutes>)>,
        events: &mut Events,
    ) -> bool {
        if desired_rx.borrow_and_update().0 > 0 {
            return true;
        }
        if let Err(e) = self.dump().await {
            tracing::warn!(error = %e, "felix: dumping the kernel's routes failed; retrying when the first routes are set");
        }
        self.send_progress();
        let mut events_open = true;
        loop {
            tokio::select! {
                changed = desired_rx.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                    if desired_rx.borrow_and_update().0 > 0 {
                        return true;
                    }
                }
                event = events.next(), if events_open => {
                    let Some(first) = event else {
                        events_open = false;
                        continue;
                    };
                    let mut dirty = BTreeSet::new();
                    self.absorb(first, &mut dirty);
                    while let Some(msg) = events.try_next() {
                        self.absorb(msg, &mut dirty);
                    }
                    // Lost notifications: the first resync dumps again.
                    self.overrun = false;
                    self.send_progress();
                }
            }
        }
    }

    /// Take the latest desired routes; the destinations whose target changed.
    fn take_desired(&mut self, rx: &watch::Receiver<(u64, Arc<DesiredRoutes>)>) -> BTreeSet<IpNet> {
        let (generation, routes) = rx.borrow().clone();
        self.generation = generation;
        let changed = changed_destinations(&self.desired, &routes);
        self.desired = routes;
        changed
    }

    /// Apply one notification to the model; true when links changed.
    fn absorb(
        &mut self,
        msg: NetlinkMessage<RouteNetlinkMessage>,
        dirty: &mut BTreeSet<IpNet>,
    ) -> bool {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        let inner = match msg.payload {
            NetlinkPayload::InnerMessage(inner) => inner,
            NetlinkPayload::Overrun(_) => {
                self.overrun = true;
                return false;
            }
            _ => return false,
        };
        let is_new = matches!(inner, RouteNetlinkMessage::NewRoute(_));
        match inner {
            RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
                let present = is_new;
                if let Some(route) = KernelRoute::from_message(&r) {
                    if route.table == self.own.table {
                        self.actual.observe(&self.own, &route, present);
                        dirty.insert(route.dst);
                    }
                }
                false
            }
            RouteNetlinkMessage::NewLink(l) => {
                if let Some(name) = netlink::link_name(&l) {
                    let index = l.header.index;
                    let new = self.links.insert(name.to_owned(), index) != Some(index);
                    if new {
                        self.link_seen.insert(index, Instant::now());
                    }
                    return new;
                }
                false
            }
            RouteNetlinkMessage::DelLink(l) => {
                if let Some(name) = netlink::link_name(&l) {
                    self.link_seen.remove(&l.header.index);
                    return self.links.remove(name).is_some();
                }
                false
            }
            _ => false,
        }
    }

    /// Dump links and routes, rebuild the model, reconcile everything.
    async fn resync(&mut self) {
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        match self.dump().await {
            Ok(()) => self.reconcile(None).await,
            Err(e) => {
                tracing::warn!(error = %e, "felix: dumping the kernel's routes failed; retrying at the next resync")
            }
        }
    }

    /// Dump links and routes and rebuild the model from them.
    async fn dump(&mut self) -> Result<(), NetlinkError> {
        let (links, r1) = netlink::dump_links(&mut self.handle).await?;
        let (routes, r2) = netlink::dump_routes(&mut self.handle).await?;
        self.stats
            .dump_retries
            .fetch_add((r1 + r2) as u64, Ordering::Relaxed);
        if self.dumped_links {
            let now = Instant::now();
            for (name, index) in &links {
                if self.links.get(name) != Some(index) {
                    self.link_seen.entry(*index).or_insert(now);
                }
            }
        }
        self.dumped_links = true;
        self.links = links;
        let mut actual = Actual::default();
        for r in &routes {
            actual.observe(&self.own, r, true);
        }
        self.actual = actual;
        tracing::debug!(
            routes = routes.len(),
            owned = self.actual.owned().len(),
            "felix dump"
        );
        Ok(())
    }

    /// Give workload interfaces (targets of device routes) that exist and
    /// are not configured yet Calico's sysctls ([`crate::interface`]).
    fn configure_interfaces(&mut self) {
        let wanted: BTreeSet<(String, u32)> = self
            .desired
            .values()
            .filter_map(|t| match t {
                Target::Device(d) => self.links.get(d).map(|i| (d.clone(), *i)),
                _ => None,
            })
            .collect();
        self.configured.retain(|c| wanted.contains(c));
        let new: Vec<String> = wanted
            .difference(&self.configured)
            .map(|(n, _)| n.clone())
            .collect();
        if new.is_empty() {
            return;
        }
        match configure_workload_interfaces(self.config.netns.as_deref(), &new) {
            Ok(failures) => {
                for (what, e) in &failures {
                    tracing::warn!(what, error = %e, "felix: workload interface sysctl failed");
                }
                if failures.is_empty() {
                    self.configured.extend(wanted);
                }
            }
            Err(e) => tracing::warn!(error = %e, "felix: configuring workload interfaces failed"),
        }
    }

    /// Plan and apply writes for everything or for `only`.
    async fn reconcile(&mut self, only: Option<&BTreeSet<IpNet>>) {
        if only.is_none() {
            self.configure_interfaces();
        }
        if only.is_some_and(BTreeSet::is_empty) {
            self.send_progress();
            return;
        }
        let grace = self.config.new_link_grace;
        self.link_seen.retain(|_, seen| seen.elapsed() < grace);
        let new_links: HashSet<u32> = self.link_seen.keys().copied().collect();
        let p: Plan = plan(
            &self.own,
            &self.desired,
            &self.links,
            &new_links,
            &self.actual,
            only,
        );
        match only {
            None => {
                self.failed.clear();
                self.blocked = p.blocked.clone();
                self.held = p.held.clone();
            }
            Some(set) => {
                self.failed.retain(|d, _| !set.contains(d));
                self.blocked.retain(|(d, _)| !set.contains(d));
                self.blocked.extend(p.blocked.iter().cloned());
                self.held.retain(|d| !set.contains(d));
                self.held.extend(p.held.iter().copied());
            }
        }
        for dst in &p.held {
            tracing::debug!(%dst, "felix: keeping an unwanted route on a new interface for now");
        }
        for (dst, why) in &p.blocked {
            tracing::debug!(%dst, why, "felix: route not written");
        }
        let ops: Vec<Write> = p
            .deletes
            .into_iter()
            .map(Write::Delete)
            .chain(p.upserts.into_iter().map(Write::Upsert))
            .collect();
        if !ops.is_empty() {
            self.apply(ops).await;
        }
        self.send_progress();
    }

    fn send_progress(&self) {
        self.progress.send_replace(Arc::new(Progress {
            generation: self.generation,
            kernel: self.actual.owned_count(),
            kernel_known: self.dumped_links,
            desired: (self.generation > 0).then_some(self.desired.len()),
            failed: self.failed.clone(),
            blocked: self.blocked.clone(),
        }));
    }

    /// Send `ops` in bulk ([`crate::batch`]); record results in the model.
    async fn apply(&mut self, ops: Vec<Write>) {
        let Some(mut writer) = self.writer.take() else {
            tracing::error!("felix: route writer lost; writes wait for a restart");
            return;
        };
        let n = ops.len() as u64;
        let bulk = ops.len() >= BULK;
        if bulk {
            self.own_writes.expect_own(n);
        }
        let (writer, ops, results) = match tokio::task::spawn_blocking(move || {
            let results = writer.write(&ops);
            (writer, ops, results)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "felix: route writer task failed");
                if bulk {
                    self.own_writes.settle(n);
                }
                return;
            }
        };
        if bulk {
            // Writes that made no notification: refused, or deletes of
            // routes already gone.
            let silent = results.iter().filter(|r| r.is_err()).count() + writer.silent();
            self.own_writes.settle(silent as u64);
        }
        self.writer = Some(writer);
        for (op, result) in ops.iter().zip(results) {
            let present = matches!(op, Write::Upsert(_));
            let route = op.route();
            match result {
                Ok(()) => {
                    let counter = if present {
                        &self.stats.upserts
                    } else {
                        &self.stats.deletes
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.actual.observe(&self.own, route, present);
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(dst = %route.dst, ?route.kind, op = if present { "replace" } else { "delete" }, error = %e, "felix: route write failed; will retry");
                    self.failed.insert(route.dst, e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_destinations_are_the_symmetric_difference_and_changed_targets() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let old: DesiredRoutes = [
            (net("10.0.0.0/26"), Target::Blackhole),
            (net("10.0.1.0/26"), Target::Blackhole),
            (net("10.0.2.0/26"), Target::Device("a".into())),
        ]
        .into();
        let new: DesiredRoutes = [
            (net("10.0.1.0/26"), Target::Blackhole),
            (net("10.0.2.0/26"), Target::Device("b".into())),
            (net("10.0.3.0/26"), Target::Blackhole),
        ]
        .into();
        let got: Vec<String> = changed_destinations(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.0.0.0/26", "10.0.2.0/26", "10.0.3.0/26"]);
        assert!(changed_destinations(&new, &new).is_empty());
    }
}
