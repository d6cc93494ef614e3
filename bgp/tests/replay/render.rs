//! Outputs of the core as transcript lines (`< ...`). Within one output,
//! prefixes and groups are sorted: the order inside one UPDATE batch is
//! not the core's to keep; the order of outputs is.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use manul_bgp::rib::{BestChange, OutUpdate, PeerIndex};
use manul_bgp::session::events::PeerCommand;
use manul_bgp::speaker::core::{Output, Timer};
use manul_bgp::speaker::{PeerChange, PeerStatus};
use manul_bgp::wire::{Origin, PathAttributes};

use crate::words::show_duration;

/// What rendering needs to name things.
pub struct Names<'a> {
    pub peers: &'a HashMap<PeerIndex, IpAddr>,
    pub start: Instant,
    pub unix_start: u64,
}

impl Names<'_> {
    pub fn peer(&self, p: PeerIndex) -> String {
        if p.is_local() {
            return "local".into();
        }
        self.peers
            .get(&p)
            .map_or_else(|| format!("peer#{}", p.0), |a| a.to_string())
    }

    fn timer(&self, t: &Timer) -> String {
        match t {
            Timer::Stale { peer, generation } => {
                format!("stale {} gen={generation}", self.peer(*peer))
            }
            Timer::Deferral => "deferral".into(),
        }
    }

    pub fn fired(&self, t: &Timer) -> String {
        format!("fired {}", self.timer(t))
    }
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The attributes a test cares about, as `key=value` words.
pub fn attrs(a: &PathAttributes) -> String {
    let mut w = Vec::new();
    if let Some(o) = a.origin {
        w.push(format!(
            "origin={}",
            match o {
                Origin::Igp => "igp",
                Origin::Egp => "egp",
                Origin::Incomplete => "incomplete",
            }
        ));
    }
    if let Some(p) = &a.as_path {
        let segments = p.segments.iter().map(|s| join(&s.asns, ","));
        w.push(format!("as-path={}", join(segments, ";")));
    }
    if let Some(m) = a.med {
        w.push(format!("med={m}"));
    }
    if let Some(lp) = a.local_pref {
        w.push(format!("lp={lp}"));
    }
    if !a.communities.is_empty() {
        let c = a
            .communities
            .iter()
            .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff));
        w.push(format!("communities={}", join(c, ",")));
    }
    if !a.large_communities.is_empty() {
        let c = a
            .large_communities
            .iter()
            .map(|c| format!("{}:{}:{}", c.global, c.local1, c.local2));
        w.push(format!("large={}", join(c, ",")));
    }
    if let Some(o) = a.originator_id {
        w.push(format!("originator={o}"));
    }
    if !a.cluster_list.is_empty() {
        w.push(format!("cluster-list={}", join(&a.cluster_list, ",")));
    }
    w.join(" ")
}

fn send(peer: &str, out: &OutUpdate) -> Vec<String> {
    let mut lines = Vec::new();
    let mut w: Vec<String> = out.withdrawn.iter().map(|p| p.to_string()).collect();
    // ADD-PATH paths as PREFIX#ID.
    w.extend(
        out.withdrawn_paths
            .iter()
            .map(|n| format!("{}#{}", n.prefix, n.path_id.unwrap_or(0))),
    );
    if !w.is_empty() {
        w.sort();
        lines.push(format!("{peer} send withdraw {}", join(&w, " ")));
    }
    let mut groups: Vec<String> = out
        .announce
        .iter()
        .map(|g| {
            let mut p: Vec<String> = if g.path_ids.is_empty() {
                g.prefixes.iter().map(|p| p.to_string()).collect()
            } else {
                (g.prefixes.iter().zip(&g.path_ids))
                    .map(|(p, id)| format!("{p}#{id}"))
                    .collect()
            };
            p.sort();
            let ll = g.link_local.map(|l| format!(",{l}")).unwrap_or_default();
            format!(
                "{peer} send announce {} nh={}{ll} {}",
                join(&p, " "),
                g.next_hop,
                attrs(&g.attrs)
            )
        })
        .collect();
    groups.sort();
    lines.extend(groups);
    lines
}

fn best(names: &Names<'_>, c: &BestChange) -> String {
    match &c.best {
        None => format!("best {} unreachable", c.prefix),
        Some(p) => {
            let mut nh = c.next_hops.to_vec();
            nh.sort();
            let mut line = format!(
                "best {} via {} nh={}",
                c.prefix,
                names.peer(p.peer),
                join(&nh, ",")
            );
            let a = attrs(&p.attrs);
            if !a.is_empty() {
                line.push(' ');
                line.push_str(&a);
            }
            if p.stale {
                line.push_str(" stale");
            }
            line
        }
    }
}

pub fn peer_status(names: &Names<'_>, s: &PeerStatus) -> String {
    let mut line = format!("peer {} {} asn={}", s.address, s.state, s.asn);
    if let Some(at) = s.established_at {
        line.push_str(&format!(" up-at={}s", at.saturating_sub(names.unix_start)));
    }
    line.push_str(&format!(
        " ups={} accepted={} advertised={}",
        s.established_count, s.accepted, s.advertised
    ));
    if let Some(c) = &s.capabilities {
        line.push_str(&format!(" families={}", join(&c.families, ",")));
        if c.graceful_restart {
            line.push_str(" gr");
        }
    }
    if !s.end_of_rib.is_empty() {
        line.push_str(&format!(" eor={}", join(&s.end_of_rib, ",")));
    }
    if s.stale {
        line.push_str(" stale");
    }
    if s.dynamic {
        line.push_str(" dynamic");
    }
    if s.unsendable > 0 {
        line.push_str(&format!(" unsendable={}", s.unsendable));
    }
    if let Some(why) = &s.last_unsendable {
        line.push_str(&format!(" last-unsendable={why:?}"));
    }
    let m = &s.malformed;
    if !m.is_zero() {
        line.push_str(&format!(
            " malformed={}/{}/{}",
            m.treat_as_withdraw, m.attribute_discard, m.session_reset
        ));
    }
    if let Some(e) = &s.last_error {
        line.push_str(&format!(" error={e:?}"));
    }
    line
}

/// One output as transcript lines (without the `< `).
pub fn output(names: &Names<'_>, o: &Output) -> Vec<String> {
    match o {
        Output::StartSession { cfg, after, .. } => {
            let mut line = format!("{} start asn={}", cfg.address, cfg.asn);
            if after.is_some() {
                // Once the stopped session it replaces has ended.
                line.push_str(" after-stop");
            }
            vec![line]
        }
        Output::StopSession { peer, notify } => vec![match notify {
            Some(text) => format!("{} stop cease {text:?}", names.peer(*peer)),
            None => format!("{} stop silently", names.peer(*peer)),
        }],
        Output::Accept { peer } => vec![format!("{} accept", names.peer(*peer))],
        Output::ToPeer { peer, command } => {
            let p = names.peer(*peer);
            match command {
                PeerCommand::Send(out) => send(&p, out),
                PeerCommand::EndOfRib(f) => vec![format!("{p} end-of-rib {f}")],
                PeerCommand::RefreshBorder { family, subtype } => vec![format!(
                    "{p} refresh-{} {family}",
                    match subtype {
                        1 => "begin".to_string(),
                        2 => "end".to_string(),
                        n => format!("subtype-{n}"),
                    }
                )],
                PeerCommand::RequestRefresh(f) => vec![format!("{p} request-refresh {f}")],
                PeerCommand::Reset(n) => vec![format!(
                    "{p} reset notification={}/{} data={}",
                    n.code,
                    n.subcode,
                    n.data
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                )],
                PeerCommand::Reconfigure(_) => vec![format!("{p} reconfigure")],
            }
        }
        Output::SetTimer { timer, at } => vec![format!(
            "timer {} at={}",
            names.timer(timer),
            show_duration(at.saturating_duration_since(names.start))
        )],
        // Never the key itself: no secrets in transcripts.
        Output::ListenerKey { address, key } => vec![format!(
            "listener-key {address} {}",
            if key.is_some() { "set" } else { "clear" }
        )],
        Output::BestChanges(changes) => {
            let mut v: Vec<&BestChange> = changes.iter().collect();
            v.sort_by_key(|c| c.prefix);
            v.into_iter().map(|c| best(names, c)).collect()
        }
        Output::PeerChanges(changes) => changes
            .iter()
            .map(|c| match c {
                PeerChange::Changed(s) => peer_status(names, s),
                PeerChange::Removed(a) => format!("peer {a} removed"),
            })
            .collect(),
    }
}
