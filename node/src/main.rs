//! `manul-node`: the per-host agent. Wiring only, no protocol logic:
//!
//! 1. settings from options / environment ([`config`]), this host's
//!    address ([`autodetect`]);
//! 2. register the Node and create the default pool if the cluster has
//!    none ([`register`]);
//! 3. run confd (the live view of etcd) and serve `/status`, `/liveness`,
//!    `/readiness` ([`http`]);
//! 4. once confd is in sync, the BGP speaker and felix ([`routing`],
//!    [`peers`]);
//! 5. stop on SIGTERM/SIGINT leaving everything in place: kernel routes
//!    stay, BGP sessions close without a Cease so peers keep our routes
//!    (graceful restart). `--cleanup` instead removes every route felix owns
//!    (protocol 80) and its eBPF programs, maps and attachments, and exits.

mod autodetect;
mod config;
mod health;
mod http;
mod metrics;
mod peers;
mod register;
mod routing;
mod secrets;
mod speaker;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::Datastore;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::register::{DefaultPool, Registration};

fn main() -> Result<()> {
    let cfg = match Config::load_from(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(e) => return Err(e),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(cfg))
}

async fn run(cfg: Config) -> Result<()> {
    if cfg.cleanup {
        let done = manul_felix::cleanup(Default::default(), &cfg.bpf_pin_dir).await?;
        tracing::info!(
            failed = done.routes_failed,
            ebpf_removed = done.ebpf_removed,
            "removed every route and eBPF object manul owns"
        );
        return Ok(());
    }
    let name = cfg.node_name()?;
    let ipv4 = autodetect::resolve(&cfg.ip, &cfg.ip_autodetection_method, false)
        .context("IPv4 address (IP)")?;
    let ipv6 = autodetect::resolve(&cfg.ip6, &cfg.ip6_autodetection_method, true)
        .context("IPv6 address (IP6)")?;
    tracing::info!(node = %name, ?ipv4, ?ipv6, "starting");
    let ds = Datastore::connect(&cfg.etcd()?)
        .await
        .context("connecting to etcd")?;
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
    let confd = Confd::start(ds, ConfdConfig::new(name.clone()));
    let status = confd.status_watch();
    let routing_status: routing::RoutingStatus = Arc::new(std::sync::Mutex::new(json!({})));
    let rs = Arc::clone(&routing_status);
    let ebpf = manul_felix::ebpf::EbpfObserver::default();
    let ebpf_http = ebpf.clone();
    let mut metrics = metrics::Metrics::default();
    metrics.register(Box::new(ebpf.clone()));
    let metrics = Arc::new(metrics);
    let metrics_http = Arc::clone(&metrics);
    let started = Instant::now();
    let handler: http::Handler = Arc::new(move |path: &str| {
        let s = status.borrow().clone();
        match path {
            "/liveness" => (200, "text/plain", "ok\n".into()),
            "/metrics" => {
                let routing = rs.lock().map(|v| v.clone()).unwrap_or_default();
                (
                    200,
                    "text/plain; version=0.0.4",
                    metrics_http.render(&routing, &s),
                )
            }
            "/readiness" => {
                let routing = rs.lock().map(|v| v.clone()).unwrap_or_default();
                match health::readiness(
                    s.in_sync,
                    s.last_error.as_deref(),
                    &routing["peers"],
                    started.elapsed(),
                ) {
                    Ok(()) => (200, "text/plain", "ready\n".into()),
                    Err(why) => (503, "text/plain", why + "\n"),
                }
            }
            "/status" => (
                200,
                "application/json",
                json!({
                    "node": name,
                    "ipv4": reg.ipv4.map(|n| n.to_string()),
                    "ipv6": reg.ipv6.map(|n| n.to_string()),
                    "uptime_seconds": started.elapsed().as_secs(),
                    "datastore": {
                        "in_sync": s.in_sync,
                        "revision": s.revision,
                        "lists": s.lists,
                        "resumes": s.resumes,
                        "last_error": s.last_error,
                    },
                    "routing": rs.lock().map(|v| v.clone()).unwrap_or_default(),
                    "ebpf": ebpf_http.summary(),
                })
                .to_string()
                    + "\n",
            ),
            _ => (404, "text/plain", "not found\n".into()),
        }
    });
    let listener = tokio::net::TcpListener::bind(cfg.status_listen)
        .await
        .with_context(|| format!("listening on {}", cfg.status_listen))?;
    tracing::info!(listen = %cfg.status_listen, "status endpoint up");
    let server = tokio::spawn(http::serve(listener, handler));
    let mut in_sync = confd.status_watch();
    in_sync
        .wait_for(|s| s.in_sync)
        .await
        .context("confd stopped before its first sync")?;
    let felix = manul_felix::FelixConfig {
        ebpf: cfg.bpf_enabled.then(|| manul_felix::ebpf::DriverConfig {
            dataplane: manul_felix::ebpf::DataplaneConfig {
                pin_dir: cfg.bpf_pin_dir.clone(),
                attach: cfg.bpf_attach_type,
                ..Default::default()
            },
            ..Default::default()
        }),
        observer: ebpf,
        ..Default::default()
    };
    let routing = routing::start(
        &confd,
        &cfg.node_name()?,
        felix,
        secrets::Secrets::new(&cfg.secrets_dir),
        Arc::clone(&metrics),
        routing_status,
    )
    .await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping, leaving routes in place"),
        _ = int.recv() => tracing::info!("SIGINT: stopping, leaving routes in place"),
    }
    server.abort();
    if let Some(sp) = &routing.speaker() {
        let _ = sp.shutdown(true).await;
    }
    drop(routing);
    drop(confd);
    Ok(())
}
