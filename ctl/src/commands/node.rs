//! `manulctl node status`: the local agent's BGP peer table, routes and
//! datastore sync state, read from manul-node's `/status` endpoint
//! (loopback, port 9099 by default). manulctl only formats what the agent
//! says; it does not talk BGP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

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

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ago(since: &Value) -> String {
    let Some(t) = since.as_u64() else {
        return "-".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(t);
    let s = now.saturating_sub(t);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The human-readable status.
pub fn render(status: &Value) -> String {
    let routing = &status["routing"];
    let rows: Vec<Vec<String>> = routing["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                cell(&p["address"]),
                cell(&p["type"]),
                cell(&p["asn"]),
                cell(&p["state"]),
                ago(&p["since"]),
                cell(&p["prefixes_received"]),
                // The last error matters only while the session is down.
                if p["state"] == "Established" {
                    String::new()
                } else {
                    p["info"].as_str().unwrap_or("").to_string()
                },
            ]
        })
        .collect();
    let mut out = format!(
        "manul-node {} ({}), datastore {}\n\nBGP peers:\n",
        cell(&status["node"]),
        cell(&status["ipv4"]),
        if status["datastore"]["in_sync"] == true {
            "in sync".to_string()
        } else {
            format!("NOT in sync: {}", cell(&status["datastore"]["last_error"]))
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
    let originated: Vec<String> = routing["originated"]
        .as_array()
        .into_iter()
        .flatten()
        .map(cell)
        .collect();
    let r = &routing["routes"];
    out += &format!(
        "\nOriginated: {}\nKernel routes: {} desired, {} remote prefixes, {} failed, {} blocked\n",
        if originated.is_empty() {
            "-".to_string()
        } else {
            originated.join(", ")
        },
        cell(&r["desired"]),
        cell(&r["remote_prefixes"]),
        cell(&r["failed"]),
        cell(&r["blocked"]),
    );
    out
}

/// Runs `node ...`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    match &args.command {
        NodeCommand::Status(a) => {
            let body = fetch(a.status_addr, "/status")?;
            let status: Value = serde_json::from_str(&body)
                .with_context(|| format!("{} answered no JSON", a.status_addr))?;
            let text = match ctx.output() {
                Output::Table | Output::Wide => render(&status),
                format => crate::output::serialize(&status, format)?,
            };
            crate::output::emit(&text);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_peer_table() {
        let s = serde_json::json!({
            "node": "host1", "ipv4": "10.0.0.1/24",
            "datastore": {"in_sync": true},
            "routing": {
                "peers": [{"address": "10.0.0.2", "type": "mesh", "asn": 64512,
                           "state": "Established", "since": null, "prefixes_received": 1,
                           "info": null}],
                "originated": ["10.65.0.0/26"],
                "routes": {"desired": 3, "remote_prefixes": 1, "failed": 0, "blocked": 0}
            }
        });
        let t = render(&s);
        assert!(t.contains("10.0.0.2"), "{t}");
        assert!(t.contains("mesh"), "{t}");
        assert!(t.contains("Established"), "{t}");
        assert!(t.contains("in sync"), "{t}");
        assert!(t.contains("Originated: 10.65.0.0/26"), "{t}");
    }
}
