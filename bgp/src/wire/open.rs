//! OPEN and its capabilities (RFC 4271 §4.2, RFC 5492).

use crate::types::{Asn, Family, RouterId};

/// A decoded OPEN. `asn` is the real AS: the 4-octet capability's value when
/// present, else the 2-octet "My Autonomous System" field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    pub asn: Asn,
    pub hold_time: u16,
    pub router_id: RouterId,
    pub capabilities: Vec<Capability>,
}

/// Graceful restart capability value (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): notification handled gracefully. Kept as received.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Per family: forwarding state preserved (F bit).
    pub families: Vec<(Family, bool)>,
}

/// ADD-PATH send/receive mode per family (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddPathMode {
    Receive,
    Send,
    Both,
}

/// One capability (RFC 5492). Unknown ones are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760).
    Multiprotocol(Family),
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 5 (RFC 8950): (NLRI family, next-hop AFI).
    ExtendedNextHop(Vec<(Family, u16)>),
    /// Code 6 (RFC 8654).
    ExtendedMessage,
    /// Code 64 (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Code 65 (RFC 6793).
    FourOctetAs(Asn),
    /// Code 69 (RFC 7911).
    AddPath(Vec<(Family, AddPathMode)>),
    /// Code 70 (RFC 7313).
    EnhancedRouteRefresh,
    /// Anything else, kept as received.
    Unknown { code: u8, value: Vec<u8> },
}
