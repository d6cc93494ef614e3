//! The five BGP messages (RFC 4271 §4, RFC 2918, RFC 7313).

use std::net::IpAddr;

use crate::types::Family;
use crate::wire::{Nlri, Open, PathAttributes};

/// One message. UPDATE dominates both traffic and size, so it is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
    /// A well-formed ROUTE-REFRESH for an AFI/SAFI manul does not speak, or
    /// with an unknown subtype: to be ignored (RFC 2918 §4, RFC 7313 §5).
    UnknownRouteRefresh {
        afi: u16,
        safi: u8,
        subtype: u8,
    },
}

/// MP_REACH_NLRI (RFC 4760 §3): next hop(s) and NLRI of one family. IPv6
/// next hops may be global only or global + link-local (32 octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: IpAddr,
    pub link_local_next_hop: Option<std::net::Ipv6Addr>,
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// An UPDATE. IPv4 unicast may travel in the classic fields or in
/// MP_REACH/MP_UNREACH; other families only in the MP attributes. An UPDATE
/// with nothing in it but an empty MP_UNREACH (or nothing at all, for IPv4)
/// is End-of-RIB (RFC 4724 §2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Nlri>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
}

/// NOTIFICATION (RFC 4271 §4.5). `data` holds the raw data field; for Cease
/// Administrative Shutdown/Reset it is the shutdown communication (RFC 9003).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH (RFC 2918) with the RFC 7313 message subtype
/// (0 = request, 1 = BoRR, 2 = EoRR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
}
