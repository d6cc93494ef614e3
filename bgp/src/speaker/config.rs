//! What the speaker and each of its peers are configured with.
//!
//! A peer's settings split in two: those that shape the session (what was
//! negotiated or how the TCP connection is made) and those that do not
//! (policies, max-prefix, next-hop-self, route-reflector client). Changing
//! the first kind restarts that one session; changing the second never
//! restarts anything ([`PeerConfig::needs_reset`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::policy::Rule;
use crate::types::{Asn, Family, RouterId};

/// The speaker as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub router_id: RouterId,
    pub asn: Asn,
    /// Addresses to accept BGP connections on; empty = outgoing only.
    pub listen: Vec<SocketAddr>,
    /// Set: this speaker is a route reflector with this cluster ID (RFC 4456).
    pub cluster_id: Option<Ipv4Addr>,
    pub graceful_restart: GracefulRestartConfig,
    /// Expose all equal-cost best paths (for kernel ECMP).
    pub multipath: bool,
    /// Peers accepted from address ranges rather than configured one by one.
    pub listen_ranges: Vec<ListenRange>,
}

/// Graceful restart (RFC 4724), both roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    pub enabled: bool,
    /// Restart time we announce: how long peers keep our routes (seconds, 12 bits).
    pub restart_time: u16,
    /// We are restarting: set the R bit and defer advertising until peers'
    /// End-of-RIB or `deferral` passes (RFC 4724 §4.1).
    pub restarting: bool,
    /// Our forwarding state survives our restarts (a routing agent whose
    /// kernel routes stay while it is down): the F bit is set for every
    /// family in every OPEN, so a peer keeps our routes across a restart
    /// until our End-of-RIB instead of dropping them when the new session
    /// comes up and learning them again a moment later (RFC 4724 §4.2).
    /// Without it, the F bit is set only while `restarting`.
    pub forwarding_preserved: bool,
    pub deferral: Duration,
    /// How long we keep a restarting peer's routes at most, whatever it announces.
    pub max_stale_time: Duration,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_time: 120,
            restarting: false,
            forwarding_preserved: false,
            deferral: Duration::from_secs(60),
            max_stale_time: Duration::from_secs(300),
        }
    }
}

/// Accept peers connecting from `range` (dynamic neighbours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRange {
    pub range: IpNet,
    /// The AS they must announce; `None` accepts any.
    pub asn: Option<Asn>,
    pub options: PeerOptions,
}

/// What to accept from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    #[default]
    All,
    None,
}

/// What to advertise to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// The node agent's default: what this speaker originates, plus what
    /// route reflection requires when it is a reflector.
    #[default]
    Originated,
    /// Every best path the rules of RFC 4271 §9.2 / RFC 4456 allow.
    All,
    None,
}

/// ADD-PATH (RFC 7911) towards a peer: the directions we announce in the
/// capability for each of its families; each works once the peer
/// announces the opposite one (RFC 7911 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddPathConfig {
    /// Accept several paths per prefix from the peer.
    pub receive: bool,
    /// Send several paths per prefix, chosen by `send_paths`.
    pub send: bool,
    pub send_paths: AddPathSend,
}

impl AddPathConfig {
    /// Both directions, ECMP paths sent (Calico's `add paths on`).
    pub const BOTH: AddPathConfig = AddPathConfig {
        receive: true,
        send: true,
        send_paths: AddPathSend::Ecmp,
    };
}

pub use crate::rib::adj_out::AddPathSend;

/// One configured peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    pub asn: Asn,
    pub options: PeerOptions,
}

/// Per-peer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// Our AS towards this peer, if not the speaker's.
    pub local_asn: Option<Asn>,
    pub passive: bool,
    /// TCP-MD5 password (RFC 2385).
    pub password: Option<String>,
    /// GTSM with this many hops (RFC 5082).
    pub ttl_security: Option<u8>,
    /// eBGP multihop TTL.
    pub multihop: Option<u8>,
    pub source_address: Option<IpAddr>,
    pub families: Vec<Family>,
    pub hold_time: u16,
    pub keepalive: Option<Duration>,
    pub connect_retry: Duration,
    /// Accept at most this many prefixes; more closes the session (Cease 6/1).
    pub max_prefixes: Option<u32>,
    /// Times our own AS may appear in a received AS_PATH.
    pub allow_own_as: u8,
    pub route_reflector_client: bool,
    pub next_hop_self: bool,
    /// Pass on the next hop a route was received with, towards eBGP
    /// peers too (BIRD's `next hop keep`, Calico's `nextHopMode: Keep`):
    /// only routes this speaker originates get its own address. Ignored
    /// when `next_hop_self` is set.
    pub next_hop_keep: bool,
    pub import: ImportMode,
    pub export: ExportMode,
    /// Rules tried before those of `import`, in order, the first that
    /// matches deciding (a route filter, say): what none decides is left
    /// to `import`.
    pub import_rules: Vec<Rule>,
    /// Rules tried before those of `export`, likewise.
    pub export_rules: Vec<Rule>,
    /// The IPv6 next hop we advertise for IPv6 routes when we are the
    /// next hop; `None`: the session's own IPv6 address, or on an IPv4
    /// session a global IPv6 address of the interface it uses (RFC 2545
    /// §3, RFC 4760 §3).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Announce the Extended Next Hop capability for IPv4 unicast with
    /// IPv6 next hops (RFC 8950): IPv4 routes over an IPv6 session whose
    /// interface has no IPv4 address.
    pub extended_next_hop: bool,
    /// ADD-PATH (RFC 7911).
    pub add_path: AddPathConfig,
    /// The Restart Time we announce to this peer in our Graceful Restart
    /// capability (RFC 4724 §3: how long it keeps our routes when our
    /// session goes down), instead of [`GracefulRestartConfig::restart_time`];
    /// BIRD's per-protocol `graceful restart time`. It is in our OPEN, so
    /// a change restarts the session (as BIRD restarts the protocol).
    /// How long we keep *this peer's* routes is the time it announces
    /// (RFC 4724 §4.2), as BIRD does.
    pub restart_time: Option<u16>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            local_asn: None,
            passive: false,
            password: None,
            ttl_security: None,
            multihop: None,
            source_address: None,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            max_prefixes: None,
            allow_own_as: 0,
            route_reflector_client: false,
            next_hop_self: false,
            next_hop_keep: false,
            import: ImportMode::All,
            export: ExportMode::Originated,
            import_rules: Vec::new(),
            export_rules: Vec::new(),
            next_hop_v6: None,
            extended_next_hop: false,
            add_path: AddPathConfig::default(),
            restart_time: None,
        }
    }
}

impl PeerOptions {
    /// The settings that shape the session itself.
    fn session_shape(&self) -> impl PartialEq + '_ {
        (
            self.local_asn,
            self.passive,
            &self.password,
            self.ttl_security,
            self.multihop,
            self.source_address,
            &self.families,
            self.hold_time,
            self.keepalive,
            self.connect_retry,
            // What the session announces and sets up at Established.
            (
                self.next_hop_v6,
                self.extended_next_hop,
                self.add_path,
                self.restart_time,
            ),
        )
    }
}

impl PeerConfig {
    /// Must the session restart to apply `new`? Only when the address, port,
    /// AS or a session-shaping option differs; policies, max-prefix,
    /// next-hop-self and reflector-client changes apply live.
    pub fn needs_reset(&self, new: &PeerConfig) -> bool {
        self.address != new.address
            || self.port != new.port
            || self.asn != new.asn
            || self.options.session_shape() != new.options.session_shape()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerConfig {
        PeerConfig {
            address: "10.0.0.2".parse().unwrap(),
            port: 179,
            asn: 64512,
            options: PeerOptions::default(),
        }
    }

    #[test]
    fn session_settings_reset_and_others_apply_live() {
        let base = peer();
        let live = [
            PeerOptions {
                export: ExportMode::All,
                ..Default::default()
            },
            PeerOptions {
                import: ImportMode::None,
                ..Default::default()
            },
            PeerOptions {
                max_prefixes: Some(10),
                ..Default::default()
            },
            PeerOptions {
                next_hop_self: true,
                ..Default::default()
            },
            PeerOptions {
                next_hop_keep: true,
                ..Default::default()
            },
            PeerOptions {
                route_reflector_client: true,
                ..Default::default()
            },
            PeerOptions {
                allow_own_as: 1,
                ..Default::default()
            },
            PeerOptions {
                import_rules: vec![Rule::reject(vec![])],
                export_rules: vec![Rule::accept(vec![])],
                ..Default::default()
            },
        ];
        for options in live {
            let new = PeerConfig {
                options: options.clone(),
                ..peer()
            };
            assert!(!base.needs_reset(&new), "{options:?}");
        }
        let reset = [
            PeerConfig {
                asn: 64513,
                ..peer()
            },
            PeerConfig {
                port: 1179,
                ..peer()
            },
            PeerConfig {
                address: "10.0.0.3".parse().unwrap(),
                ..peer()
            },
            PeerConfig {
                options: PeerOptions {
                    password: Some("x".into()),
                    ..Default::default()
                },
                ..peer()
            },
            PeerConfig {
                options: PeerOptions {
                    hold_time: 9,
                    ..Default::default()
                },
                ..peer()
            },
            // The restart time is announced in the OPEN (RFC 4724 §3).
            PeerConfig {
                options: PeerOptions {
                    restart_time: Some(45),
                    ..Default::default()
                },
                ..peer()
            },
            PeerConfig {
                options: PeerOptions {
                    families: vec![Family::Ipv4Unicast],
                    ..Default::default()
                },
                ..peer()
            },
        ];
        for new in reset {
            assert!(base.needs_reset(&new), "{new:?}");
        }
    }
}
