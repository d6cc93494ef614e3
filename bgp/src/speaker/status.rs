//! What the speaker reports about each peer.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::fsm::State;
use crate::types::Family;

/// Negotiated capabilities, as status shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// UPDATE errors a peer sent, counted by how RFC 7606 handled them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MalformedCounts {
    /// UPDATEs whose prefixes were taken as withdrawn (RFC 7606 §2).
    pub treat_as_withdraw: u64,
    /// UPDATEs used without one or more attributes (RFC 7606 §2).
    pub attribute_discard: u64,
    /// UPDATEs that reset the session with a NOTIFICATION (RFC 7606 §2,
    /// RFC 4271 §6.3).
    pub session_reset: u64,
}

impl MalformedCounts {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Add `other`'s counts to these.
    pub fn add(&mut self, other: &MalformedCounts) {
        self.treat_as_withdraw += other.treat_as_withdraw;
        self.attribute_discard += other.attribute_discard;
        self.session_reset += other.session_reset;
    }
}

/// One peer's status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerStatus {
    pub address: IpAddr,
    /// The configured AS, or the one the peer announced for dynamic peers.
    pub asn: u32,
    /// RFC 4271 §8.2.2 state; serialised by its RFC name (`Idle`,
    /// `Connect`, `Active`, `OpenSent`, `OpenConfirm`, `Established`).
    pub state: State,
    /// When the session reached Established, in wall-clock seconds since
    /// the Unix epoch; `None` when it is not Established. Uptime is now
    /// minus this (a stable value: status does not change every second).
    pub established_at: Option<u64>,
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
    /// Prefixes the export would advertise but that cannot be encoded for
    /// this session (an IPv6 route without an IPv6 next hop, an IPv4 route
    /// with an IPv6 next hop without RFC 8950): never sent, never counted
    /// in `advertised`.
    #[serde(default)]
    pub unsendable: usize,
    /// Why, for the last one found (with the prefix).
    #[serde(default)]
    pub last_unsendable: Option<String>,
    /// Malformed UPDATEs received since the peer was configured, by action.
    #[serde(default)]
    pub malformed: MalformedCounts,
}

impl PeerStatus {
    /// Seconds the session has been Established at `now_unix_secs`.
    pub fn uptime_secs(&self, now_unix_secs: u64) -> Option<u64> {
        self.established_at.map(|t| now_unix_secs.saturating_sub(t))
    }
}

/// A change of peers' status, from [`crate::speaker::Speaker::subscribe_peers`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PeerChange {
    /// A peer's status, new or different from the one last sent.
    Changed(PeerStatus),
    /// The peer (configured or dynamic) is gone.
    Removed(IpAddr),
}

/// Wall-clock seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialise_and_display_by_their_rfc_names() {
        for s in [
            State::Idle,
            State::Connect,
            State::Active,
            State::OpenSent,
            State::OpenConfirm,
            State::Established,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(s.to_string(), s.name());
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
        }
    }

    #[test]
    fn a_status_reads_back_from_its_json() {
        let s = PeerStatus {
            address: "10.0.0.2".parse().unwrap(),
            asn: 65002,
            state: State::Established,
            established_at: Some(1_700_000_000),
            established_count: 1,
            capabilities: Some(CapabilitySummary {
                families: [Family::Ipv4Unicast].into(),
                hold_time: 90,
                ..CapabilitySummary::default()
            }),
            accepted: 3,
            advertised: 2,
            stale: false,
            end_of_rib: [Family::Ipv4Unicast].into(),
            last_error: None,
            dynamic: false,
            unsendable: 1,
            last_unsendable: Some("2001:db8::/64: no IPv6 next hop".into()),
            malformed: MalformedCounts {
                treat_as_withdraw: 2,
                ..MalformedCounts::default()
            },
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "Established");
        assert_eq!(json["end_of_rib"][0], "ipv4-unicast");
        assert_eq!(serde_json::from_value::<PeerStatus>(json).unwrap(), s);
        assert_eq!(s.uptime_secs(1_700_000_042), Some(42));
    }
}
