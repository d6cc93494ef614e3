//! `manulctl node status`: the local agent's BGP peer table, routes and
//! datastore sync state, read from manul-node's `/status` endpoint
//! (loopback, port 9099 by default). manulctl only formats what the agent
//! says; it does not talk BGP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context as _;
use manul_status::{KernelRoutes, NetworkStatus, NodeStatus, State};

use crate::cli::Output;
use crate::context::Context;
use crate::error::{Failure, fail};

pub const LONG_ABOUT: &str = "\
The local manul-node agent: its BGP peers (address, type — mesh, global or
node-specific —, state, since, info), the prefixes it originates, the
kernel routes it programs and whether it is in sync with etcd. Read from
the agent's status endpoint (--status-addr, 127.0.0.1:9099 by default).";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl node status
  $ manulctl node status -o json
  $ manulctl node status --status-addr 127.0.0.1:9100";

/// `node` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// The local agent's BGP peers, routes and sync state.
    Status(StatusArgs),
}

/// `node` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// `node status` options.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The agent's status endpoint.
    #[arg(long, env = "MANUL_STATUS_LISTEN", default_value = "127.0.0.1:9099")]
    pub status_addr: SocketAddr,
}

/// GET `path` from the agent; the body.
pub fn fetch(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| {
        fail(
            Failure::Unavailable,
            format!("no manul-node answering at {addr}: {e} (is it running? see --status-addr)"),
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .with_context(|| format!("reading {path} from {addr}"))?;
    let (_, body) = out
        .split_once("\r\n\r\n")
        .with_context(|| format!("{addr} answered no HTTP"))?;
    Ok(body.to_string())
}

/// A duration in seconds, short: `42s`, `7m`, `3h`.
fn short(s: u64) -> String {
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// How long ago `t` (Unix seconds) was, from `now`.
fn ago(t: Option<u64>, now: u64) -> String {
    t.map_or_else(|| "-".into(), |t| short(now.saturating_sub(t)))
}

/// The kernel-routes line: what the kernel holds, what felix wants, and
/// whether it is holding its writes (and until when).
fn kernel_routes(r: &KernelRoutes, now: u64) -> String {
    let mut line = format!(
        "Kernel routes: {} in the kernel ({} IPv4, {} IPv6), {} desired, {} remote prefixes, {} failed, {} blocked\n",
        r.kernel.total(),
        r.kernel.ipv4,
        r.kernel.ipv6,
        r.desired
            .map_or_else(|| "none yet".to_string(), |d| d.to_string()),
        r.remote_prefixes,
        r.failed,
        r.blocked,
    );
    for p in &r.refused_pools {
        line += &format!("Pool {} not programmed: {}\n", p.pool, p.reason);
    }
    if let Some(h) = &r.holding {
        let until = match h.until {
            Some(t) if t > now => {
                format!("until BGP has converged, at most {} more", short(t - now))
            }
            Some(_) => "until BGP has converged (its time is up: any moment now)".to_string(),
            None => "until BGP has converged (the speaker starts after the first sync with etcd)"
                .to_string(),
        };
        line += &format!(
            "Holding writes for {} {until} ({})\n",
            short(now.saturating_sub(h.since)),
            h.reason.describe()
        );
    }
    line
}

/// The network line: the backend, this node's VXLAN tunnel ends, the MTUs.
fn network(n: &NetworkStatus) -> String {
    let mut line = format!("Network: backend {}", n.backend.as_str());
    let vteps: Vec<String> = [&n.vxlan_v4, &n.vxlan_v6]
        .into_iter()
        .flatten()
        .map(|v| format!("{} {} ({})", v.device, v.address, v.mac))
        .collect();
    if vteps.is_empty() {
        line += ", no VXLAN tunnel";
    } else {
        line += &format!(", {}", vteps.join(", "));
    }
    if let Some(e) = &n.tunnel_error {
        line += &format!(" (tunnel addresses: {e})");
    }
    match &n.mtu {
        Some(m) => {
            line += &format!(
                "; MTU: uplink {}{}, vxlan.calico {}, vxlan-v6.calico {}, pods {}",
                m.host,
                if m.host_detected {
                    ""
                } else {
                    " (not found: Calico's fallback)"
                },
                m.vxlan,
                m.vxlan_v6,
                m.pod
            );
        }
        None => line += "; MTU: not known yet",
    }
    line + "\n"
}

/// The human-readable status, as of `now` (Unix seconds).
pub fn render(status: &NodeStatus, now: u64) -> String {
    let routing = &status.routing;
    let rows: Vec<Vec<String>> = routing
        .peers
        .iter()
        .map(|p| {
            vec![
                p.address.to_string(),
                p.kind.as_str().to_string(),
                p.asn.map_or_else(|| "-".into(), |a| a.to_string()),
                p.state.to_string(),
                ago(p.since, now),
                p.prefixes_received.to_string(),
                peer_info(p),
            ]
        })
        .collect();
    let ds = &status.datastore;
    let mut out = format!(
        "manul-node {} ({}), {}, datastore {}\n\nBGP peers:\n",
        status.node,
        status
            .ipv4
            .map_or_else(|| "no IPv4".to_string(), |a| a.to_string()),
        status.routing.router_id.map_or_else(
            || "no BGP router ID".to_string(),
            |a| format!("router ID {a}")
        ),
        if ds.in_sync {
            "in sync".to_string()
        } else {
            format!(
                "NOT in sync: {}",
                ds.last_error.as_deref().unwrap_or("first list pending")
            )
        }
    );
    out += &crate::output::table::render(
        &[
            "PEER ADDRESS",
            "PEER TYPE",
            "AS",
            "STATE",
            "SINCE",
            "PREFIXES",
            "INFO",
        ],
        &rows,
    );
    for p in &routing.peers {
        for note in &p.notes {
            out += &format!("Peer {}: {note}\n", p.address);
        }
    }
    let originated: Vec<String> = routing.originated.iter().map(ToString::to_string).collect();
    out += &format!(
        "\nOriginated: {}\n",
        if originated.is_empty() {
            "-".to_string()
        } else {
            originated.join(", ")
        }
    );
    out += &kernel_routes(&routing.routes, now);
    out += &network(&status.network);
    out += &nat_line(&status.nat);
    out += &felix_config_lines(&status.felix_configuration);
    out
}

/// The FelixConfiguration fields set for the node, by what it does with
/// them (nothing when none is set).
fn felix_config_lines(f: &manul_status::FelixConfigurationStatus) -> String {
    [
        ("applied", &f.applied),
        ("overridden by the agent's environment", &f.overridden),
        ("NOT supported (ignored)", &f.not_supported),
        ("invalid (ignored)", &f.invalid),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(what, v)| format!("FelixConfiguration {what}: {}\n", v.join(", ")))
    .collect()
}

/// The NAT-outgoing line: which pools masquerade, and whether felix's
/// nftables table holds them.
fn nat_line(n: &manul_status::NatStatus) -> String {
    if !n.desired {
        return "NAT outgoing: not programmed yet\n".into();
    }
    let pools: Vec<String> = n.nat_pools.iter().map(ToString::to_string).collect();
    let state = match (&n.last_error, n.in_sync) {
        (Some(e), _) => format!("NOT in sync: {e}"),
        (None, true) => "in sync".to_string(),
        (None, false) => "not checked yet".to_string(),
    };
    format!(
        "NAT outgoing: {} ({} of {} pools), nftables table inet manul {state}, {} failures, {} repairs\n",
        if pools.is_empty() {
            "-".to_string()
        } else {
            pools.join(", ")
        },
        n.nat_pools.len(),
        n.pools.len(),
        n.failures,
        n.repairs,
    )
}

/// Runs `node ...`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    match &args.command {
        NodeCommand::Status(a) => {
            let body = fetch(a.status_addr, "/status")?;
            let status: NodeStatus = serde_json::from_str(&body).with_context(|| {
                format!(
                    "{} answered no status this manulctl reads (a different manul-node version?)",
                    a.status_addr
                )
            })?;
            let text = match ctx.output() {
                Output::Table | Output::Wide => render(&status, manul_status::unix_now()),
                format => crate::output::serialize(&status, format)?,
            };
            crate::output::emit(&text);
            Ok(())
        }
    }
}

/// The INFO column: the last error while the session is down (it matters
/// only then); while it is up, what it cannot be sent and the malformed
/// UPDATEs it sent, if any.
fn peer_info(p: &manul_status::PeerStatus) -> String {
    if p.state != State::Established {
        return p.info.clone().unwrap_or_default();
    }
    let mut parts = Vec::new();
    if p.prefixes_unsendable > 0 {
        let why = p
            .unsendable_reason
            .as_deref()
            .unwrap_or("cannot be encoded");
        parts.push(format!("{} not sendable ({why})", p.prefixes_unsendable));
    }
    let m = &p.malformed;
    if !m.is_zero() {
        parts.push(format!(
            "malformed UPDATEs: {} treat-as-withdraw, {} attribute-discard, {} session-reset",
            m.treat_as_withdraw, m.attribute_discard, m.session_reset
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_status::{FamilyCount, Hold, HoldReason, PeerStatus, PeerType};

    fn status() -> NodeStatus {
        let mut s = NodeStatus {
            node: "host1".into(),
            ipv4: Some("10.0.0.1/24".parse().unwrap()),
            ..Default::default()
        };
        s.datastore.in_sync = true;
        s.routing.router_id = Some("10.0.0.1".parse().unwrap());
        s.routing.peers = vec![PeerStatus {
            address: "10.0.0.2".parse().unwrap(),
            asn: Some(64512),
            kind: PeerType::Mesh,
            state: State::Established,
            since: Some(1_000),
            prefixes_received: 1,
            prefixes_advertised: 1,
            info: Some("an old error".into()),
            established_count: 1,
            notes: Vec::new(),
            prefixes_unsendable: 0,
            unsendable_reason: None,
            malformed: Default::default(),
        }];
        s.routing.originated = vec!["10.65.0.0/26".parse().unwrap()];
        s.routing.routes = KernelRoutes {
            kernel: FamilyCount { ipv4: 5, ipv6: 0 },
            desired: Some(5),
            remote_prefixes: 2,
            ..Default::default()
        };
        s
    }

    #[test]
    fn renders_the_peer_table_and_the_kernel_routes() {
        let t = render(&status(), 1_042);
        for want in [
            "manul-node host1 (10.0.0.1/24), router ID 10.0.0.1, datastore in sync",
            "10.0.0.2",
            "mesh",
            "Established",
            "42s",
            "Originated: 10.65.0.0/26",
            "Kernel routes: 5 in the kernel (5 IPv4, 0 IPv6), 5 desired, 2 remote prefixes, 0 failed, 0 blocked",
        ] {
            assert!(t.contains(want), "{want} in\n{t}");
        }
        assert!(!t.contains("an old error"), "{t}");
        assert!(!t.contains("Holding"), "{t}");
        assert!(!t.contains("not programmed:"), "{t}");
        assert!(t.contains("NAT outgoing: not programmed yet"), "{t}");
    }

    #[test]
    fn prints_each_peer_note() {
        let mut s = status();
        s.routing.peers[0].notes = vec!["BGPFilter f exportV4[0]: interface \"eth*\" matches routes of interfaces, and manul learns and exports none (only its blocks and what it reflects); the rule never matches".into()];
        let t = render(&s, 1_042);
        assert!(
            t.contains("Peer 10.0.0.2: BGPFilter f exportV4[0]: interface \"eth*\""),
            "{t}"
        );
    }

    #[test]
    fn names_each_refused_pool_and_why() {
        let mut s = status();
        s.routing.routes.refused_pools = vec![manul_status::RefusedPool {
            pool: "tunnelled".into(),
            reason: "ipipMode Always: manul-node does not build IPIP tunnels yet".into(),
        }];
        let t = render(&s, 1_042);
        assert!(
            t.contains(
                "Pool tunnelled not programmed: ipipMode Always: manul-node does not build IPIP tunnels yet"
            ),
            "{t}"
        );
    }

    #[test]
    fn shows_the_network_line() {
        let t = render(&status(), 1_042);
        assert!(
            t.contains("Network: backend bird, no VXLAN tunnel; MTU: not known yet"),
            "{t}"
        );
    }

    #[test]
    fn renders_the_vxlan_tunnel_and_the_mtus() {
        let mut s = status();
        s.network = NetworkStatus {
            backend: manul_status::Backend::Vxlan,
            vxlan_v4: Some(manul_status::Vtep {
                device: "vxlan.calico".into(),
                address: "10.65.0.1".parse().unwrap(),
                mac: "66:00:00:00:00:01".into(),
            }),
            mtu: Some(manul_status::network::Mtus {
                host: 1500,
                host_detected: true,
                vxlan: 1450,
                vxlan_v6: 1430,
                pod: 1450,
            }),
            ..Default::default()
        };
        let t = render(&s, 1_042);
        assert!(
            t.contains(
                "Network: backend vxlan, vxlan.calico 10.65.0.1 (66:00:00:00:00:01); \
                 MTU: uplink 1500, vxlan.calico 1450, vxlan-v6.calico 1430, pods 1450"
            ),
            "{t}"
        );
    }

    #[test]
    fn says_which_pools_masquerade_and_whether_the_table_holds_them() {
        let mut s = status();
        s.nat = manul_status::NatStatus {
            desired: true,
            nat_pools: vec!["10.65.0.0/16".parse().unwrap()],
            pools: vec![
                "10.65.0.0/16".parse().unwrap(),
                "10.70.0.0/16".parse().unwrap(),
            ],
            in_sync: true,
            repairs: 1,
            ..Default::default()
        };
        let t = render(&s, 1_042);
        assert!(
            t.contains("NAT outgoing: 10.65.0.0/16 (1 of 2 pools), nftables table inet manul in sync, 0 failures, 1 repairs"),
            "{t}"
        );
        s.nat.last_error = Some("the kernel refused NewTable".into());
        let t = render(&s, 1_042);
        assert!(
            t.contains("table inet manul NOT in sync: the kernel refused NewTable"),
            "{t}"
        );
    }

    #[test]
    fn lists_felix_configuration_fields_by_what_the_node_does_with_them() {
        let mut s = status();
        assert!(!render(&s, 1_042).contains("FelixConfiguration"));
        s.felix_configuration = manul_status::FelixConfigurationStatus {
            applied: vec!["logSeverityScreen".into(), "vxlanMTU".into()],
            not_supported: vec!["chainInsertMode".into()],
            ..Default::default()
        };
        let t = render(&s, 1_042);
        assert!(
            t.contains("FelixConfiguration applied: logSeverityScreen, vxlanMTU\n"),
            "{t}"
        );
        assert!(
            t.contains("FelixConfiguration NOT supported (ignored): chainInsertMode\n"),
            "{t}"
        );
        assert!(!t.contains("overridden"), "{t}");
    }

    #[test]
    fn says_while_felix_holds_and_until_when() {
        let mut s = status();
        s.routing.routes.desired = None;
        s.routing.routes.holding = Some(Hold {
            reason: HoldReason::Start,
            since: 1_000,
            until: Some(1_031),
        });
        let t = render(&s, 1_010);
        assert!(
            t.contains("5 in the kernel (5 IPv4, 0 IPv6), none yet desired"),
            "{t}"
        );
        assert!(
            t.contains(
                "Holding writes for 10s until BGP has converged, at most 21s more (agent start"
            ),
            "{t}"
        );
    }
}
