//! `manul-node`: the per-host agent. Wiring only, no protocol logic.
//!
//! How data flows through the agent, and where each arrow lives:
//!
//! ```text
//!  etcd ──list+watch──> confd (confd/src/sync.rs: one Snapshot, deltas in Batches)
//!   │                     │
//!   │                     ├──> BGP view (confd/src/bgp/task.rs, derived in bgp/deriver.rs)
//!   │                     │       └──> speaker driver (node/src/speaker/mod.rs: peers, prefixes,
//!   │                     │              │               restarts, passwords)
//!   │                     │              └──> BGP speaker (bgp/src/speaker: sessions, RIB)
//!   │                     │                     │ peer states ──> driver's peer table
//!   │                     │                     │                 (node/src/speaker/converge.rs)
//!   │                     │                     └ best paths ──> Hold / Replace / Changes
//!   │                     │                                      (node/src/speaker/converge.rs)
//!   │                     └──────────────┬──────────────────────────┘
//!   │                                    v
//!   │            felix loop (node/src/routing/felix_loop.rs: snapshot + remote prefixes)
//!   │                                    v
//!   │            felix (felix/src/run.rs) ──> kernel routes (felix/src/reconciler.rs, rtnetlink)
//!   │                                     ──> eBPF maps and programs (felix/src/ebpf/driver.rs)
//!   │                                     ──> VXLAN devices (felix/src/overlay.rs)
//!   │
//!   └<── CNI ADD/DEL (cni/src) ──> IPAM (ipam/src: blocks, handles, compare-and-swap) ──> etcd
//!
//!  every part's latest state ──> status (node/src/status.rs) ──> /status, /metrics,
//!                                /readiness (node/src/http.rs), manulctl node status
//! ```
//!
//! What `main` does:
//!
//! 1. settings from options / environment ([`config`]), this host's
//!    address ([`autodetect`]);
//! 2. register the Node and create the default pool if the cluster has
//!    none ([`register`]);
//! 3. start confd (the live view of etcd) and felix (which learns what
//!    the kernel holds, and writes nothing yet), and serve `/status`,
//!    `/metrics`, `/liveness`, `/readiness` ([`http`], [`status`]);
//! 4. once confd is in sync: felix settles the MTUs (the pod MTU file
//!    for the CNI plugin), the tunnel address task keeps this node's VXLAN
//!    tunnel addresses ([`tunnel`]), and the BGP speaker (backend `bird`)
//!    and the felix loop start ([`routing`], [`speaker`], [`peers`]);
//! 5. stop on SIGTERM/SIGINT leaving everything in place: kernel routes
//!    stay, BGP sessions close without a Cease so peers keep our routes
//!    (graceful restart). `--cleanup` instead removes every route felix owns
//!    (protocol 80), its NAT table (`inet manul`), its VXLAN devices and
//!    its eBPF programs, maps and attachments, and exits.

mod autodetect;
mod config;
mod felix_config;
mod filters;
mod health;
mod http;
mod metrics;
mod peers;
mod register;
mod router_id;
mod routing;
mod secrets;
mod speaker;
mod status;
mod tunnel;

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::Datastore;
use manul_status::{HoldReason, NodeStatus};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::Config;
use crate::register::{DefaultPool, Registration};
use crate::routing::felix_loop::FelixFeed;
use crate::status::{BgpSources, Sources};

fn main() -> Result<()> {
    let cfg = match Config::load_from(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(e) => return Err(e),
        },
    };
    use tracing_subscriber::prelude::*;
    // `RUST_LOG` wins over FelixConfiguration's `logSeverityScreen`, as
    // Calico's environment wins over its datastore ([`felix_config`]).
    // An empty `RUST_LOG` is unset.
    let rust_log = std::env::var("RUST_LOG").is_ok_and(|v| !v.is_empty());
    let (filter, reload) = tracing_subscriber::reload::Layer::new(if rust_log {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into())
    } else {
        DEFAULT_LOG_FILTER.into()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    let set_log: felix_config::SetLogFilter = Box::new(move |f: &str| {
        let filter = tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?;
        reload.reload(filter).map_err(|e| e.to_string())
    });
    let log = LogControl {
        overrides: felix_config::Overrides {
            log: rust_log,
            ..Default::default()
        },
        set: set_log,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(cfg, log))
}

/// The log filter without `RUST_LOG` or `logSeverityScreen`.
const DEFAULT_LOG_FILTER: &str = "info";

/// What FelixConfiguration may do to the agent's logging, and which of
/// its fields the agent's own settings override.
struct LogControl {
    overrides: felix_config::Overrides,
    set: felix_config::SetLogFilter,
}

/// The HTTP endpoint's answers, from the node's status.
fn handler(sources: Sources, metrics: Arc<metrics::Metrics>) -> http::Handler {
    Arc::new(move |path: &str| match path {
        "/liveness" => (200, "text/plain", "ok\n".into()),
        "/metrics" => (
            200,
            "text/plain; version=0.0.4",
            metrics.render(&sources.collect()),
        ),
        "/readiness" => match health::readiness(&sources.collect()) {
            Ok(()) => (200, "text/plain", "ready\n".into()),
            Err(why) => (503, "text/plain", why + "\n"),
        },
        "/status" => (200, "application/json", status_json(&sources.collect())),
        _ => (404, "text/plain", "not found\n".into()),
    })
}

fn status_json(s: &NodeStatus) -> String {
    match serde_json::to_string(s) {
        Ok(mut body) => {
            body.push('\n');
            body
        }
        Err(e) => format!("{{\"error\":\"status: {e}\"}}\n"),
    }
}

async fn run(cfg: Config, mut log: LogControl) -> Result<()> {
    log.overrides.vxlan_mtu = cfg.vxlan_mtu != 0;
    log.overrides.vxlan_mtu_v6 = cfg.vxlan_mtu_v6 != 0;
    if cfg.cleanup {
        let done = manul_felix::cleanup(Default::default(), &cfg.bpf_pin_dir).await?;
        tracing::info!(
            failed = done.routes_failed,
            ebpf_removed = done.ebpf_removed,
            nat_removed = done.nat_removed,
            vxlan_removed = done.vxlan_removed,
            "removed every route, eBPF object, VXLAN device and the NAT table manul owns"
        );
        return Ok(());
    }
    let started = SystemTime::now();
    let name = cfg.node_name()?;
    let ipv4 = autodetect::resolve(&cfg.ip, &cfg.ip_autodetection_method, false)
        .context("IPv4 address (IP)")?;
    let ipv6 = autodetect::resolve(&cfg.ip6, &cfg.ip6_autodetection_method, true)
        .context("IPv6 address (IP6)")?;
    tracing::info!(node = %name, ?ipv4, ?ipv6, "starting");
    let ds = Datastore::connect(&cfg.etcd()?)
        .await
        .context("connecting to etcd")?;
    // Before other nodes can learn of this one (its Node), so that their
    // connections wait for the speaker instead of being refused.
    let early = if cfg.networking_backend.bgp() {
        speaker::listen_early(ipv6.is_some())
    } else {
        Vec::new()
    };
    let reg = Registration {
        name: name.clone(),
        ipv4,
        ipv6,
        as_number: cfg.as_number,
    };
    if register::register_node(&ds, &reg).await? {
        tracing::info!(node = %name, "Node registered");
    }
    if !cfg.no_default_pools {
        let pool = DefaultPool {
            cidr: cfg.ipv4pool_cidr,
            block_size: cfg.ipv4pool_block_size,
            vxlan_mode: cfg.ipv4pool_vxlan.clone(),
            nat_outgoing: cfg.ipv4pool_nat_outgoing,
        };
        if register::ensure_default_pool(&ds, &pool).await? {
            tracing::info!(cidr = %pool.cidr, "default pool created");
        }
    }
    let ipam = manul_ipam::Ipam::new(ds.clone());
    let confd = Confd::start(ds, ConfdConfig::new(name.clone()));

    // felix learns what the kernel holds now; it writes nothing before
    // the felix loop's first update, after BGP has converged.
    let ebpf = manul_felix::ebpf::EbpfObserver::default();
    let felix = manul_felix::FelixConfig {
        ebpf: cfg.bpf_enabled.then(|| manul_felix::ebpf::DriverConfig {
            dataplane: manul_felix::ebpf::DataplaneConfig {
                pin_dir: cfg.bpf_pin_dir.clone(),
                attach: cfg.bpf_attach_type,
                ..Default::default()
            },
            ..Default::default()
        }),
        observer: ebpf.clone(),
        mtu: manul_felix::mtu::MtuConfig {
            vxlan: Some(cfg.vxlan_mtu),
            vxlan_v6: Some(cfg.vxlan_mtu_v6),
            file: Some(cfg.mtu_file.clone()),
        },
        ..Default::default()
    };
    let felix = Arc::new(
        manul_felix::Felix::start(felix)
            .await
            .context("starting felix")?,
    );
    let (feed, feed_rx) = watch::channel(FelixFeed {
        remote_prefixes: 0,
        // Until the speaker starts (after confd's first sync), the hold
        // has no known end.
        holding: Some(manul_status::Hold {
            reason: HoldReason::Start,
            since: manul_status::unix_seconds(started),
            until: None,
        }),
    });

    let (tunnels_tx, tunnels_rx) = watch::channel(tunnel::TunnelState::default());
    let (felix_config_tx, felix_config_rx) = watch::channel(Default::default());
    let mut metrics = metrics::Metrics::default();
    metrics.register(Box::new(ebpf.clone()));
    let metrics = Arc::new(metrics);
    let sources = Sources {
        node: name.clone(),
        ipv4: reg.ipv4,
        ipv6: reg.ipv6,
        started,
        datastore: confd.status_watch(),
        felix: felix.watch_progress(),
        writes: Arc::clone(felix.stats()),
        refused: felix.watch_refused(),
        feed: feed_rx,
        ebpf,
        nat: felix.watch_nat(),
        bgp: Arc::new(OnceLock::new()),
        backend: match cfg.networking_backend {
            config::Backend::Bird => manul_status::Backend::Bird,
            config::Backend::Vxlan => manul_status::Backend::Vxlan,
            config::Backend::None => manul_status::Backend::None,
        },
        tunnels: tunnels_rx,
        mtu: felix.watch_mtu(),
        felix_config: felix_config_rx,
    };
    let bgp_sources = Arc::clone(&sources.bgp);
    let listener = tokio::net::TcpListener::bind(cfg.status_listen)
        .await
        .with_context(|| format!("listening on {}", cfg.status_listen))?;
    tracing::info!(listen = %cfg.status_listen, "status endpoint up");
    let server = tokio::spawn(http::serve(
        listener,
        handler(sources, Arc::clone(&metrics)),
    ));

    let mut in_sync = confd.status_watch();
    in_sync
        .wait_for(|s| s.in_sync)
        .await
        .context("confd stopped before its first sync")?;
    // The MTUs do not wait for BGP: a pod added while felix holds its
    // route writes must get the right one.
    felix.set_mtu_inputs(confd.subscribe().snapshot(), &name);
    let tunnels = tunnel::spawn(ipam, name.clone(), confd.subscribe(), tunnels_tx);
    let felix_config = felix_config::spawn(
        name.clone(),
        confd.subscribe(),
        log.overrides,
        DEFAULT_LOG_FILTER.to_owned(),
        log.set,
        Arc::clone(&felix),
        felix_config_tx,
    );
    let start = routing::start_kind(&felix).await;
    let routing = routing::start(
        &confd,
        &name,
        felix,
        secrets::Secrets::new(&cfg.secrets_dir),
        metrics,
        feed,
        routing::RoutingOptions {
            backend: cfg.networking_backend,
            router_id: cfg.router_id.map(|r| r.resolve(&name)),
        },
        start,
        early,
    )
    .await?;
    let _ = bgp_sources.set(BgpSources {
        driver: routing.bgp.clone(),
        view: routing.view.clone(),
    });
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping, leaving routes in place"),
        _ = int.recv() => tracing::info!("SIGINT: stopping, leaving routes in place"),
    }
    server.abort();
    tunnels.abort();
    felix_config.abort();
    if let Some(sp) = &routing.speaker() {
        let _ = sp.shutdown(true).await;
    }
    drop(routing);
    drop(confd);
    Ok(())
}
