//! Translating confd's BGP view into the speaker's configuration types:
//! a plain mapping, field by field (the decisions were made in confd).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use manul_bgp::speaker::{
    AddPathConfig, GracefulRestartConfig, PeerConfig, PeerOptions, SpeakerConfig,
};
use manul_bgp::wire::attributes::{Community, LargeCommunity};
use manul_confd::bgp::view::{Community as ViewCommunity, Globals, PeerView};
use manul_datastore::resources::NextHopMode;

/// The speaker's settings from the node's globals and `router_id`
/// (`CALICO_ROUTER_ID`, resolved), else the node's IPv4 address; `None`
/// without either (this node does not run BGP).
///
/// Listeners, as calico-node's BIRD (one daemon per family): one per
/// family the node has an address of, on the wildcard address, or with
/// `bindMode: NodeIP` on that address only (Calico's `listen bgp address
/// <node IP>`).
pub fn speaker_config(g: &Globals, router_id: Option<Ipv4Addr>) -> Option<SpeakerConfig> {
    let router_id = router_id.or(g.router_id)?;
    let v4 = g.ipv4.map(|n| n.addr());
    let v6 = g.ipv6.map(|n| n.addr());
    let listen = [
        v4.map(|a| {
            if g.bind_node_ip {
                a
            } else {
                Ipv4Addr::UNSPECIFIED
            }
        })
        .map(IpAddr::V4),
        v6.map(|a| {
            if g.bind_node_ip {
                a
            } else {
                Ipv6Addr::UNSPECIFIED
            }
        })
        .map(IpAddr::V6),
    ]
    .into_iter()
    .flatten()
    .map(|a| SocketAddr::new(a, g.listen_port))
    .collect();
    Some(SpeakerConfig {
        router_id,
        asn: g.asn,
        listen,
        cluster_id: g.cluster_id,
        // Routes stay in the kernel while the agent is down (felix never
        // flushes): peers keep ours across a restart until our End-of-RIB.
        graceful_restart: GracefulRestartConfig {
            forwarding_preserved: true,
            ..Default::default()
        },
        multipath: true,
        listen_ranges: Vec::new(),
    })
}

/// RFC 4724 §3: the Restart Time field has 12 bits.
const MAX_RESTART_TIME: u64 = 4095;

/// The restart time announced to the peer: `maxRestartTime` in whole
/// seconds, as Calico's confd writes it into BIRD's `graceful restart
/// time`, at most [`MAX_RESTART_TIME`].
fn restart_time(p: &PeerView) -> Option<u16> {
    p.max_restart_time
        .map(|d| d.as_secs().min(MAX_RESTART_TIME) as u16)
}

/// What manul cannot do as the peer's settings say, one line each: shown
/// on `/status` with the peer and logged once when its settings change.
pub fn notes(p: &PeerView) -> Vec<String> {
    let mut out = crate::filters::notes(&p.filters);
    if let Some(d) = p
        .max_restart_time
        .filter(|d| d.as_secs() > MAX_RESTART_TIME)
    {
        out.push(format!(
            "restart time {d:?} exceeds the {MAX_RESTART_TIME} s a graceful restart capability can carry (RFC 4724 §3): {MAX_RESTART_TIME} s announced"
        ));
    }
    if p.next_hop == NextHopMode::SelfHop && p.route_reflector_client {
        out.push(
            "nextHopMode Self: routes reflected to this client keep their next hop (RFC 4456 §10), where Calico's BIRD (`next hop self`) sets this node's; routes from eBGP peers and this node's own get this node's".into(),
        );
    }
    out
}

/// A peer's settings, with its password (read from the secret the view
/// refers to by the caller, [`crate::secrets`]).
pub fn peer_config(p: &PeerView, password: Option<String>) -> PeerConfig {
    let mut options = PeerOptions {
        local_asn: p.local_asn,
        passive: p.passive,
        password,
        ttl_security: p.ttl_security,
        source_address: p.source_address,
        keepalive: p.keepalive,
        allow_own_as: p.allow_own_as,
        route_reflector_client: p.route_reflector_client,
        // Calico's `nextHopMode`: Self is BIRD's `next hop self`, Keep its
        // `next hop keep`, Auto neither (our address towards eBGP, the
        // received next hop kept towards iBGP).
        next_hop_self: p.next_hop == NextHopMode::SelfHop,
        next_hop_keep: p.next_hop == NextHopMode::Keep,
        restart_time: restart_time(p),
        // Calico's BIRD templates: `add paths on` for every session (both
        // directions), so a client behind a reflector gets every ECMP path.
        add_path: AddPathConfig::BOTH,
        ..PeerOptions::default()
    };
    // Its BGPFilters, before Calico's default import and export.
    let filters = crate::filters::compile(&p.filters);
    options.import_rules = filters.import;
    options.export_rules = filters.export;
    // The family of the peer's address; see [`families`] for IPv6.
    options.families = vec![match p.address {
        IpAddr::V4(_) => manul_bgp::types::Family::Ipv4Unicast,
        IpAddr::V6(_) => manul_bgp::types::Family::Ipv6Unicast,
    }];
    PeerConfig {
        address: p.address,
        port: p.port,
        asn: p.asn,
        options,
    }
}

/// The families a session to `cfg`'s peer offers, when this node has an IPv6
/// address (`node_v6`) and peers a router that is not a node over IPv4:
/// IPv6 unicast too, so a top-of-rack router carrying both families on one
/// IPv4 session (and negotiating IPv6) learns this node's IPv6 blocks, with
/// a global IPv6 address of the session's interface as next hop (RFC 2545
/// §3). Calico's BIRD (a daemon per family) never does this; between nodes
/// the mesh and node peerings already run one session per family both
/// have, so those stay single-family (no duplicate IPv6 paths).
pub fn with_families(mut cfg: PeerConfig, node: bool, node_v6: bool) -> PeerConfig {
    use manul_bgp::types::Family;
    if cfg.address.is_ipv4() && node_v6 && !node {
        cfg.options.families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    }
    cfg
}

/// Communities of an originated prefix, split by kind.
pub fn communities(c: &[ViewCommunity]) -> (Vec<Community>, Vec<LargeCommunity>) {
    let mut std = Vec::new();
    let mut large = Vec::new();
    for c in c {
        match *c {
            ViewCommunity::Standard(a, n) => {
                std.push(Community((u32::from(a) << 16) | u32::from(n)))
            }
            ViewCommunity::Large(global, local1, local2) => large.push(LargeCommunity {
                global,
                local1,
                local2,
            }),
        }
    }
    (std, large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_rides_an_ipv4_session_to_a_router_not_to_a_node() {
        use manul_bgp::types::Family::{Ipv4Unicast as V4, Ipv6Unicast as V6};
        let cfg = |addr: &str| PeerConfig {
            address: addr.parse().unwrap(),
            port: 179,
            asn: 65000,
            options: PeerOptions {
                families: vec![if addr.contains(':') { V6 } else { V4 }],
                ..PeerOptions::default()
            },
        };
        let fams = |c: PeerConfig| c.options.families;
        assert_eq!(
            fams(with_families(cfg("10.0.0.254"), false, true)),
            [V4, V6]
        );
        // Without an IPv6 address there are no IPv6 blocks to carry.
        assert_eq!(fams(with_families(cfg("10.0.0.254"), false, false)), [V4]);
        // Nodes peer once per family already.
        assert_eq!(fams(with_families(cfg("10.0.0.2"), true, true)), [V4]);
        assert_eq!(fams(with_families(cfg("fd00::254"), false, true)), [V6]);
    }

    #[test]
    fn communities_split() {
        let (s, l) = communities(&[
            ViewCommunity::Standard(65000, 100),
            ViewCommunity::Large(1, 2, 3),
        ]);
        assert_eq!(s, vec![Community((65000 << 16) | 100)]);
        assert_eq!(l[0].local2, 3);
    }

    #[test]
    fn no_router_id_no_bgp() {
        assert!(speaker_config(&Globals::default(), None).is_none());
        let g = Globals {
            router_id: Some("10.0.0.1".parse().unwrap()),
            ipv4: Some("10.0.0.1/24".parse().unwrap()),
            asn: 64512,
            listen_port: 179,
            ..Default::default()
        };
        let c = speaker_config(&g, None).unwrap();
        assert_eq!(c.listen, ["0.0.0.0:179".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.asn, 64512);
        // The kernel keeps felix's routes while the agent is down: every
        // start announces forwarding preserved (F bit), restarting or not.
        assert!(c.graceful_restart.enabled);
        assert!(c.graceful_restart.forwarding_preserved);
        assert!(!c.graceful_restart.restarting);
    }

    /// An IPv6-only node runs BGP with a router ID from CALICO_ROUTER_ID,
    /// listening on IPv6 only; `bindMode: NodeIP` binds the node's
    /// addresses instead of the wildcard.
    #[test]
    fn router_id_and_bind_mode() {
        let v6only = Globals {
            ipv6: Some("fd00::1/64".parse().unwrap()),
            asn: 64512,
            listen_port: 179,
            ..Default::default()
        };
        assert!(speaker_config(&v6only, None).is_none());
        let c = speaker_config(&v6only, Some("10.9.9.9".parse().unwrap())).unwrap();
        assert_eq!(c.router_id, "10.9.9.9".parse::<Ipv4Addr>().unwrap());
        assert_eq!(c.listen, ["[::]:179".parse::<SocketAddr>().unwrap()]);
        let dual = Globals {
            router_id: Some("10.0.0.1".parse().unwrap()),
            ipv4: Some("10.0.0.1/24".parse().unwrap()),
            bind_node_ip: true,
            listen_port: 1179,
            ..v6only
        };
        let c = speaker_config(&dual, None).unwrap();
        assert_eq!(c.router_id, "10.0.0.1".parse::<Ipv4Addr>().unwrap());
        let want: Vec<SocketAddr> = vec![
            "10.0.0.1:1179".parse().unwrap(),
            "[fd00::1]:1179".parse().unwrap(),
        ];
        assert_eq!(c.listen, want);
    }

    #[test]
    fn restart_time_and_next_hop_mode_reach_the_peer() {
        use manul_confd::bgp::view::PeerSource;
        use std::time::Duration;
        let view = |next_hop, restart: Option<u64>| PeerView {
            address: "10.0.0.254".parse().unwrap(),
            port: 179,
            asn: 65000,
            local_asn: None,
            source: PeerSource::Global {
                peer: "tor".into(),
                node: None,
            },
            passive: false,
            password: None,
            source_address: None,
            route_reflector_client: false,
            next_hop,
            ttl_security: None,
            max_restart_time: restart.map(Duration::from_secs),
            keepalive: None,
            allow_own_as: 0,
            reachable_by: None,
            filters: Vec::new(),
        };
        let o = peer_config(&view(NextHopMode::Keep, Some(45)), None).options;
        assert!(o.next_hop_keep && !o.next_hop_self);
        assert_eq!(o.restart_time, Some(45));
        let o = peer_config(&view(NextHopMode::SelfHop, None), None).options;
        assert!(o.next_hop_self && !o.next_hop_keep);
        assert_eq!(o.restart_time, None);
        let o = peer_config(&view(NextHopMode::Auto, None), None).options;
        assert!(!o.next_hop_self && !o.next_hop_keep);
        // Past 12 bits: the most the capability carries, and a note says so.
        let v = view(NextHopMode::Auto, Some(7200));
        assert_eq!(peer_config(&v, None).options.restart_time, Some(4095));
        let n = notes(&v);
        assert!(n.len() == 1 && n[0].contains("4095 s announced"), "{n:?}");
        assert!(notes(&view(NextHopMode::Auto, Some(120))).is_empty());
    }
}
