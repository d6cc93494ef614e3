//! Translating confd's BGP view into the speaker's configuration types:
//! a plain mapping, field by field (the decisions were made in confd).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use manul_bgp::speaker::{
    AddPathConfig, GracefulRestartConfig, PeerConfig, PeerOptions, SpeakerConfig,
};
use manul_bgp::wire::attributes::{Community, LargeCommunity};
use manul_confd::bgp::view::{Community as ViewCommunity, Globals, PeerView};
use manul_datastore::resources::NextHopMode;

/// The speaker's settings from the node's globals; `None` without a router
/// ID (no IPv4 address: this node does not run BGP).
pub fn speaker_config(g: &Globals) -> Option<SpeakerConfig> {
    let router_id = g.router_id?;
    let mut listen = vec![SocketAddr::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        g.listen_port,
    )];
    if g.ipv6.is_some() {
        listen.push(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            g.listen_port,
        ));
    }
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
        next_hop_self: p.next_hop == NextHopMode::SelfHop,
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
        assert!(speaker_config(&Globals::default()).is_none());
        let g = Globals {
            router_id: Some("10.0.0.1".parse().unwrap()),
            asn: 64512,
            listen_port: 179,
            ..Default::default()
        };
        let c = speaker_config(&g).unwrap();
        assert_eq!(c.listen.len(), 1);
        assert_eq!(c.asn, 64512);
        // The kernel keeps felix's routes while the agent is down: every
        // start announces forwarding preserved (F bit), restarting or not.
        assert!(c.graceful_restart.enabled);
        assert!(c.graceful_restart.forwarding_preserved);
        assert!(!c.graceful_restart.restarting);
    }
}
