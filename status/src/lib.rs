//! What `manul-node` reports about itself, as one typed value.
//!
//! The agent builds a [`NodeStatus`] in one place (`node/src/status.rs`)
//! from the live state of its parts, and every consumer reads it through
//! these types: `GET /status` serialises it, `manulctl node status`
//! deserialises it, `/metrics` and `/readiness` read its fields. A field
//! renamed here is a compiler error in each of them, not a status line
//! that quietly prints zeros.
//!
//! - [`datastore`]: confd's sync with etcd.
//! - [`routing`]: the BGP speaker and its peers, the prefixes this node
//!   originates.
//! - [`kernel`]: the routes felix owns in the kernel, what it wants, and
//!   whether it is holding its writes.
//! - [`ebpf`]: felix's eBPF dataplane.
//! - [`network`]: the networking backend, this node's VXLAN tunnel ends
//!   and the MTUs.
//! - [`nat`]: NAT outgoing, felix's nftables table.
//! - [`felix_config`]: which FelixConfiguration fields the agent acts on.
//!
//! Times are Unix seconds (wall clock), so a value does not change while
//! nothing happens; durations are derived by the reader.

pub mod datastore;
pub mod ebpf;
pub mod felix_config;
pub mod kernel;
pub mod nat;
pub mod network;
pub mod routing;

use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use datastore::DatastoreStatus;
pub use ebpf::{EbpfMode, EbpfStatus};
pub use felix_config::{FelixConfigurationStatus, HONOURED_FIELDS};
pub use kernel::{FamilyCount, Hold, HoldReason, KernelRoutes, RefusedPool};
/// A session's state: the BGP FSM's own (RFC 4271 §8.2.2).
pub use manul_bgp::fsm::State;
pub use nat::NatStatus;
pub use network::{Backend, NetworkStatus, Vtep};
pub use routing::{MalformedCounts, PeerStatus, PeerType, RoutingStatus};

/// Everything `GET /status` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's name (`NODENAME`).
    pub node: String,
    /// Its IPv4 address with the subnet length, when it has one.
    pub ipv4: Option<IpNet>,
    /// Its IPv6 address with the subnet length, when it has one.
    pub ipv6: Option<IpNet>,
    /// When the agent started (Unix seconds).
    pub started_at: u64,
    /// Seconds since then, at the time of the answer.
    pub uptime_seconds: u64,
    /// confd's sync with etcd.
    pub datastore: DatastoreStatus,
    /// BGP: the speaker, its peers, what this node originates; and the
    /// kernel routes felix keeps from them.
    pub routing: RoutingStatus,
    /// felix's eBPF dataplane.
    pub ebpf: EbpfStatus,
    /// The networking backend, the VXLAN tunnel ends, the MTUs (absent
    /// in the answers of agents that predate it).
    #[serde(default)]
    pub network: NetworkStatus,
    /// NAT outgoing (absent in an older agent's answer: the default).
    #[serde(default)]
    pub nat: NatStatus,
    /// The FelixConfiguration fields set for this node and what the agent
    /// does with each.
    #[serde(default)]
    pub felix_configuration: FelixConfigurationStatus,
}

/// Now, in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    unix_seconds(SystemTime::now())
}

/// `t` in Unix seconds (0 before 1970).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_bgp::fsm::State;

    /// The JSON the agent serves reads back as the same value, and keeps
    /// the names operators and scripts already use.
    #[test]
    fn round_trips_through_json_with_stable_names() {
        let s = NodeStatus {
            node: "host1".into(),
            ipv4: Some("10.0.0.1/24".parse().unwrap()),
            started_at: 1_700_000_000,
            uptime_seconds: 5,
            datastore: DatastoreStatus {
                in_sync: true,
                revision: 7,
                ..Default::default()
            },
            routing: RoutingStatus {
                bgp: true,
                peers: vec![PeerStatus {
                    address: "10.0.0.2".parse().unwrap(),
                    asn: Some(64512),
                    kind: PeerType::Mesh,
                    state: State::Established,
                    since: Some(1_700_000_001),
                    prefixes_received: 1,
                    prefixes_advertised: 1,
                    info: None,
                    established_count: 1,
                    notes: Vec::new(),
                    prefixes_unsendable: 0,
                    unsendable_reason: None,
                    malformed: Default::default(),
                }],
                originated: vec!["10.65.0.0/26".parse().unwrap()],
                routes: KernelRoutes {
                    kernel: FamilyCount { ipv4: 3, ipv6: 0 },
                    desired: Some(3),
                    holding: Some(Hold {
                        reason: HoldReason::SpeakerRestart,
                        since: 1_700_000_002,
                        until: Some(1_700_000_033),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["routing"]["peers"][0]["state"], "Established");
        assert_eq!(json["routing"]["peers"][0]["type"], "mesh");
        assert_eq!(json["routing"]["routes"]["kernel"]["ipv4"], 3);
        assert_eq!(
            json["routing"]["routes"]["holding"]["reason"],
            "speaker-restart"
        );
        assert_eq!(json["ebpf"]["mode"], "off");
        assert_eq!(json["network"]["backend"], "bird");
        assert_eq!(json["nat"]["in_sync"], false);
        let back: NodeStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
