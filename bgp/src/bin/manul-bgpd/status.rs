//! The status socket: a unix socket that answers one command per
//! connection with JSON, for scripts and tests.
//!
//! Send a line — `peers` (the default on an empty line), `routes` (the
//! Loc-RIB: prefix, next hops, AS path, communities) or `summary` (counts)
//! — and read the JSON reply until the socket closes:
//! `echo routes | socat - UNIX-CONNECT:/run/manul-bgpd.sock`.

use std::path::Path;

use anyhow::{Context, Result};
use manul_bgp::fsm::State;
use manul_bgp::rib::BestChange;
use manul_bgp::speaker::status::unix_now;
use manul_bgp::speaker::{PeerStatus, Speaker};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// Serve status on `path` until the process ends.
pub fn serve(path: &Path, speaker: Speaker) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("status socket {}", path.display()))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let speaker = speaker.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let _ = BufReader::new(read).read_line(&mut line).await;
                let reply = answer(line.trim(), &speaker).await;
                let _ = write.write_all(reply.to_string().as_bytes()).await;
                let _ = write.write_all(b"\n").await;
            });
        }
    });
    Ok(())
}

async fn answer(command: &str, speaker: &Speaker) -> Value {
    match command {
        "" | "peers" => match speaker.status().await {
            Ok(peers) => json!({ "peers": peers.iter().map(peer_json).collect::<Vec<_>>() }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "routes" => match speaker.routes().await {
            Ok(routes) => json!({ "routes": routes.iter().map(route_json).collect::<Vec<_>>() }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "summary" => match (speaker.status().await, speaker.route_count().await) {
            (Ok(peers), Ok(routes)) => json!({
                "routes": routes,
                "established": peers.iter().filter(|p| p.state == State::Established).count(),
                "peers": peers.len(),
            }),
            (Err(e), _) | (_, Err(e)) => json!({ "error": e.to_string() }),
        },
        other => {
            json!({ "error": format!("unknown command {other:?}; use peers, routes or summary") })
        }
    }
}

/// A peer's status as the speaker reports it, with its uptime in seconds
/// (`uptime_secs`, null when not Established) worked out from
/// `established_at`.
fn peer_json(p: &PeerStatus) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut v {
        fields.insert("uptime_secs".into(), json!(p.uptime_secs(unix_now())));
    }
    v
}

fn route_json(r: &BestChange) -> Value {
    let best = r.best.as_ref();
    let attrs = best.map(|p| &p.attrs);
    json!({
        "prefix": r.prefix.to_string(),
        "next_hops": r.next_hops.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "local": best.is_some_and(|p| p.peer.is_local()),
        "as_path": attrs.and_then(|a| a.as_path.as_ref()).map(|p| {
            p.segments.iter().flat_map(|s| s.asns.iter().copied()).collect::<Vec<u32>>()
        }),
        "communities": attrs.map(|a| a.communities.iter().map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff)).collect::<Vec<_>>()),
        "large_communities": attrs.map(|a| a.large_communities.iter().map(|c| format!("{}:{}:{}", c.global, c.local1, c.local2)).collect::<Vec<_>>()),
        "local_pref": attrs.and_then(|a| a.local_pref),
        "med": attrs.and_then(|a| a.med),
    })
}
