//! What the speaker reports about each peer.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::types::Family;

/// Negotiated capabilities, as status shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CapabilitySummary {
    pub families: BTreeSet<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub graceful_restart: bool,
    pub extended_message: bool,
    pub add_path: bool,
    pub hold_time: u16,
}

/// One peer's status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    pub address: IpAddr,
    /// The configured AS, or the one the peer announced for dynamic peers.
    pub asn: u32,
    /// RFC 4271 state name (`Idle`, `Connect`, `Active`, `OpenSent`,
    /// `OpenConfirm`, `Established`).
    pub state: String,
    /// Seconds since Established, when it is.
    pub uptime_secs: Option<u64>,
    /// How many times the session has reached Established since the peer
    /// was configured: more than 1 means it flapped.
    pub established_count: u64,
    pub capabilities: Option<CapabilitySummary>,
    /// Routes received and accepted by import policy (Adj-RIB-In).
    pub accepted: usize,
    /// Routes advertised (Adj-RIB-Out).
    pub advertised: usize,
    /// Routes kept from a restarting peer, not yet refreshed (RFC 4724).
    pub stale: bool,
    /// Families whose End-of-RIB the peer has sent in this session (RFC
    /// 4724 §2): its initial routes of those are all in.
    pub end_of_rib: BTreeSet<Family>,
    pub last_error: Option<String>,
    /// Accepted from a listen range rather than configured.
    pub dynamic: bool,
}
