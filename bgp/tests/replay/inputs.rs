//! Inputs built from a line's words: configurations, UPDATEs, states,
//! reasons.

use ipnet::IpNet;
use manul_bgp::fsm::{DownReason, State};
use manul_bgp::policy::{Condition, PrefixMatch, Rule};
use manul_bgp::rib::{PeerIndex, RibChange};
use manul_bgp::speaker::{
    AddPathConfig, AddPathSend, ExportMode, GracefulRestartConfig, ImportMode, ListenRange,
    PeerConfig, PeerOptions, SpeakerConfig,
};
use manul_bgp::wire::{AsPath, Nlri, Notification, Origin, PathAttributes};

use crate::words::{self, Result, Words, addr, community, duration, family, ipv4, large_community};

pub fn speaker(w: &Words) -> Result<SpeakerConfig> {
    let mut gr = GracefulRestartConfig {
        enabled: w.opt::<String>("graceful-restart")?.as_deref() != Some("off"),
        restarting: w.flag("restarting"),
        forwarding_preserved: w.flag("forwarding-preserved"),
        ..GracefulRestartConfig::default()
    };
    if let Some(d) = w.opt::<String>("deferral")? {
        gr.deferral = duration(&d)?;
    }
    if let Some(d) = w.opt::<String>("max-stale")? {
        gr.max_stale_time = duration(&d)?;
    }
    if let Some(t) = w.opt("restart-time")? {
        gr.restart_time = t;
    }
    let listen_ranges = w
        .list("listen-range", words::parsed::<IpNet>)?
        .into_iter()
        .map(|range| {
            Ok(ListenRange {
                range,
                asn: w.opt("listen-range-asn")?,
                options: PeerOptions::default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SpeakerConfig {
        router_id: w.opt("router-id")?.ok_or("router-id= needed")?,
        asn: w.opt("asn")?.ok_or("asn= needed")?,
        listen: Vec::new(),
        cluster_id: w.opt("cluster-id")?,
        graceful_restart: gr,
        multipath: w.flag("multipath"),
        listen_ranges,
    })
}

pub fn peer_config(w: &Words) -> Result<PeerConfig> {
    let mut o = PeerOptions {
        local_asn: w.opt("local-asn")?,
        passive: w.flag("passive"),
        password: w.opt("password")?,
        max_prefixes: w.opt("max-prefixes")?,
        route_reflector_client: w.flag("rr-client"),
        next_hop_self: w.flag("next-hop-self"),
        next_hop_keep: w.flag("next-hop-keep"),
        allow_own_as: w.opt("allow-own-as")?.unwrap_or(0),
        ..PeerOptions::default()
    };
    if let Some(h) = w.opt("hold-time")? {
        o.hold_time = h;
    }
    o.next_hop_v6 = w.opt("next-hop-v6")?;
    o.extended_next_hop = w.flag("extended-next-hop");
    if let Some(a) = w.opt::<String>("add-path")? {
        let (receive, send) = match a.as_str() {
            "receive" => (true, false),
            "send" => (false, true),
            "both" => (true, true),
            _ => return Err(format!("bad add-path={a} (receive, send, both)")),
        };
        o.add_path = AddPathConfig {
            receive,
            send,
            send_paths: if w.flag("add-path-all") {
                AddPathSend::All
            } else {
                AddPathSend::Ecmp
            },
        };
    }
    let families = w.list("families", family)?;
    if !families.is_empty() {
        o.families = families;
    }
    if let Some(e) = w.opt::<String>("export")? {
        o.export = match e.as_str() {
            "originated" => ExportMode::Originated,
            "all" => ExportMode::All,
            "none" => ExportMode::None,
            _ => return Err(format!("bad export={e} (originated, all, none)")),
        };
    }
    if let Some(i) = w.opt::<String>("import")? {
        o.import = match i.as_str() {
            "all" => ImportMode::All,
            "none" => ImportMode::None,
            _ => return Err(format!("bad import={i} (all, none)")),
        };
    }
    o.import_rules = w.list("import-rules", rule)?;
    o.export_rules = w.list("export-rules", rule)?;
    Ok(PeerConfig {
        address: w.arg(0, "peer address")?,
        port: w.opt("port")?.unwrap_or(179),
        asn: w.opt("asn")?.ok_or("asn= needed")?,
        options: o,
    })
}

/// A rule: `accept` or `reject`, then its conditions, `+`-separated:
/// `net=P` (exactly P), `net~P` (P or inside it), `net~P[a-b]` (inside
/// P, lengths a to b), `net!=P`, `net!~P...` (negated), `learned`,
/// `ibgp`, `ebgp`, `ipv4`, `ipv6`, `never`.
fn rule(s: &str) -> Result<Rule> {
    let mut parts = s.split('+');
    let action = parts.next().unwrap_or_default();
    let mut conditions = Vec::new();
    for c in parts {
        conditions.push(match c {
            "learned" => Condition::Learned,
            "never" => Condition::Never,
            "ibgp" => Condition::PeerKind(manul_bgp::rib::PeerKind::Ibgp),
            "ebgp" => Condition::PeerKind(manul_bgp::rib::PeerKind::Ebgp),
            "ipv4" | "ipv6" => Condition::Family(words::family(c)?),
            _ => {
                let (negate, op, rest) = if let Some(r) = c.strip_prefix("net!=") {
                    (true, '=', r)
                } else if let Some(r) = c.strip_prefix("net!~") {
                    (true, '~', r)
                } else if let Some(r) = c.strip_prefix("net=") {
                    (false, '=', r)
                } else if let Some(r) = c.strip_prefix("net~") {
                    (false, '~', r)
                } else {
                    return Err(format!("bad rule condition {c:?} in {s:?}"));
                };
                let (net, range) = match rest.split_once('[') {
                    Some((n, r)) => (n, Some(r.trim_end_matches(']'))),
                    None => (rest, None),
                };
                let net: IpNet = words::parsed(net)?;
                let m = match (op, range) {
                    ('=', None) => PrefixMatch::exact(net),
                    ('~', None) => PrefixMatch::orlonger(net),
                    ('~', Some(r)) => {
                        let (a, b) = r.split_once('-').ok_or(format!("bad range [{r}]"))?;
                        PrefixMatch {
                            net,
                            ge: Some(words::parsed(a)?),
                            le: Some(words::parsed(b)?),
                        }
                    }
                    _ => return Err(format!("bad rule condition {c:?}")),
                };
                if negate {
                    Condition::NotPrefix(m)
                } else {
                    Condition::Prefix(m)
                }
            }
        });
    }
    match action {
        "accept" => Ok(Rule::accept(conditions)),
        "reject" => Ok(Rule::reject(conditions)),
        _ => Err(format!("bad rule {s:?}: accept or reject first")),
    }
}

/// `update <peer> announce <prefix>... nh=<addr> [attributes]` or
/// `update <peer> withdraw <prefix>...`.
pub fn update(peer: PeerIndex, w: &Words) -> Result<Vec<RibChange>> {
    let what: String = w.arg(1, "announce or withdraw")?;
    let nlri = w.bare[2..]
        .iter()
        .map(|p| match p.split_once('#') {
            // PREFIX#ID: with an ADD-PATH path identifier.
            Some((p, id)) => Ok(Nlri::with_path_id(words::parsed(p)?, words::parsed(id)?)),
            None => words::parsed::<IpNet>(p).map(Nlri::new),
        })
        .collect::<Result<Vec<_>>>()?;
    if nlri.is_empty() {
        return Err("no prefixes".into());
    }
    match what.as_str() {
        "withdraw" => Ok(vec![RibChange::Withdraw { peer, nlri }]),
        "announce" => {
            let origin = match w.opt::<String>("origin")?.as_deref() {
                None | Some("igp") => Origin::Igp,
                Some("egp") => Origin::Egp,
                Some("incomplete") => Origin::Incomplete,
                Some(o) => return Err(format!("bad origin={o}")),
            };
            let attrs = PathAttributes {
                origin: Some(origin),
                as_path: Some(AsPath::sequence(w.list("as-path", words::parsed)?)),
                med: w.opt("med")?,
                local_pref: w.opt("lp")?,
                communities: w.list("communities", community)?,
                large_communities: w.list("large", large_community)?,
                originator_id: w.opt("originator")?,
                cluster_list: w.list("cluster-list", ipv4)?,
                ..PathAttributes::default()
            };
            let next_hop = w.opt::<String>("nh")?.ok_or("nh= needed")?;
            Ok(vec![RibChange::Announce {
                peer,
                attrs,
                next_hop: addr(&next_hop)?,
                nlri,
            }])
        }
        other => Err(format!("update {other}: announce or withdraw")),
    }
}

pub fn state(s: &str) -> Result<State> {
    Ok(match s {
        "Idle" => State::Idle,
        "Connect" => State::Connect,
        "Active" => State::Active,
        "OpenSent" => State::OpenSent,
        "OpenConfirm" => State::OpenConfirm,
        "Established" => State::Established,
        _ => return Err(format!("bad state {s:?}")),
    })
}

/// `connection-lost`, `hold-timer-expired`, `stopped`, `collision`,
/// `peer-notification:6/2` or `local-notification:6/1`.
pub fn down_reason(s: &str) -> Result<DownReason> {
    let notification = |v: &str| -> Result<Notification> {
        let (c, sc) = v
            .split_once('/')
            .ok_or_else(|| format!("bad notification {v:?}"))?;
        Ok(Notification::new(
            words::parsed(c)?,
            words::parsed(sc)?,
            Vec::new(),
        ))
    };
    Ok(match s.split_once(':') {
        Some(("peer-notification", v)) => DownReason::PeerNotification(notification(v)?),
        Some(("local-notification", v)) => DownReason::LocalNotification(notification(v)?),
        _ => match s {
            "connection-lost" => DownReason::ConnectionLost,
            "hold-timer-expired" => DownReason::HoldTimerExpired,
            "stopped" => DownReason::Stopped,
            "collision" => DownReason::Collision,
            _ => return Err(format!("bad reason {s:?}")),
        },
    })
}
