//! Peers as the RIB sees them, and the speaker-wide RIB configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::{Asn, Family, RouterId};

/// A peer's slot in the RIB. [`PeerIndex::LOCAL`] stands for routes this
/// speaker originates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIndex(pub u32);

impl PeerIndex {
    /// The pseudo-peer of locally originated routes.
    pub const LOCAL: PeerIndex = PeerIndex(0);

    pub fn is_local(self) -> bool {
        self == Self::LOCAL
    }
}

/// Internal or external session (RFC 4271 §1.1), derived from the ASes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    Ibgp,
    Ebgp,
}

/// Where a route came from: this speaker, or a peer of some kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteSource {
    Local,
    Ibgp,
    Ebgp,
}

impl From<PeerKind> for RouteSource {
    fn from(kind: PeerKind) -> Self {
        match kind {
            PeerKind::Ibgp => RouteSource::Ibgp,
            PeerKind::Ebgp => RouteSource::Ebgp,
        }
    }
}

/// One neighbour as the RIB needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The neighbour's transport address (the final tie-break, RFC 4271 §9.1.2.2 g).
    pub address: IpAddr,
    /// The neighbour's BGP Identifier from its OPEN (unspecified until known).
    pub router_id: RouterId,
    pub peer_as: Asn,
    /// The AS we present on this session (usually [`RibConfig::local_as`]).
    pub local_as: Asn,
    /// The neighbour is a route-reflector client of ours (RFC 4456 §6).
    pub rr_client: bool,
    /// Advertise ourselves as next hop to this (iBGP) neighbour too.
    pub next_hop_self: bool,
    /// Pass received next hops on unchanged, towards eBGP too (BIRD's
    /// `next hop keep`); `next_hop_self` wins.
    pub next_hop_keep: bool,
    /// How many times our AS may appear in an AS_PATH received from this
    /// neighbour before the route is a loop (0 = the RFC 4271 §9.1.2
    /// rule; >0 = "allowas-in", Calico's `numAllowedLocalASNumbers`).
    pub allow_own_as: u8,
    /// Our IPv4 address on this session: the next hop when we are it.
    pub local_v4: Option<Ipv4Addr>,
    /// Our IPv6 address on this session: the next hop when we are it.
    pub local_v6: Option<Ipv6Addr>,
    /// Our link-local address on the peer's link, sent after `local_v6`
    /// when we are the next hop (RFC 2545 §3; see [`super::local`]).
    pub local_link_local: Option<Ipv6Addr>,
}

impl PeerInfo {
    /// A peer with the given addresses and ASes, not a client, no next-hop-self;
    /// the local address of the session's family is `local`'s.
    pub fn new(address: IpAddr, router_id: RouterId, peer_as: Asn, local_as: Asn) -> Self {
        Self {
            address,
            router_id,
            peer_as,
            local_as,
            rr_client: false,
            next_hop_self: false,
            next_hop_keep: false,
            allow_own_as: 0,
            local_v4: None,
            local_v6: None,
            local_link_local: None,
        }
    }

    /// iBGP when both ends are in the same AS (RFC 4271 §1.1).
    pub fn kind(&self) -> PeerKind {
        if self.peer_as == self.local_as {
            PeerKind::Ibgp
        } else {
            PeerKind::Ebgp
        }
    }

    /// Our address on this session for a prefix of `family`, if configured.
    pub fn local_address(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4Unicast => self.local_v4.map(IpAddr::V4),
            Family::Ipv6Unicast => self.local_v6.map(IpAddr::V6),
        }
    }
}

/// Speaker-wide settings the decision process and exports depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibConfig {
    pub local_as: Asn,
    pub router_id: RouterId,
    /// CLUSTER_ID when reflecting; `None` means the router ID (RFC 4456 §7).
    pub cluster_id: Option<RouterId>,
    /// Report all equally good next hops (ECMP) and not only the best's.
    pub multipath: bool,
}

impl RibConfig {
    pub fn new(local_as: Asn, router_id: RouterId) -> Self {
        Self {
            local_as,
            router_id,
            cluster_id: None,
            multipath: false,
        }
    }

    /// The effective CLUSTER_ID (RFC 4456 §7: defaults to the router ID).
    pub fn cluster_id(&self) -> RouterId {
        self.cluster_id.unwrap_or(self.router_id)
    }
}
