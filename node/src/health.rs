//! `/readiness`: ready when in sync with etcd and — once a grace period
//! after start has passed — at least one BGP peer is Established when any
//! are configured (Calico's "BIRD is ready" check). `/liveness` is the
//! process answering at all. Both read the node's [`NodeStatus`].

use std::time::Duration;

use manul_status::NodeStatus;

/// How long after start a node may be ready without an Established peer.
pub const BGP_GRACE: Duration = Duration::from_secs(60);

/// `Ok` when ready, else why not.
pub fn readiness(status: &NodeStatus) -> Result<(), String> {
    let ds = &status.datastore;
    if !ds.in_sync {
        return Err(format!(
            "not in sync with etcd: {}",
            ds.last_error.as_deref().unwrap_or("first list pending")
        ));
    }
    let peers = &status.routing.peers;
    if status.uptime_seconds >= BGP_GRACE.as_secs()
        && !peers.is_empty()
        && status.routing.established() == 0
    {
        return Err(format!(
            "none of {} BGP peers is Established after {}s",
            peers.len(),
            status.uptime_seconds
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_bgp::fsm::State;
    use manul_status::{PeerStatus, PeerType};

    fn peer(state: State) -> PeerStatus {
        PeerStatus {
            address: "10.0.0.2".parse().unwrap(),
            asn: Some(64512),
            kind: PeerType::Mesh,
            state,
            since: None,
            prefixes_received: 0,
            prefixes_advertised: 0,
            info: None,
            established_count: 1,
            notes: Vec::new(),
            prefixes_unsendable: 0,
            unsendable_reason: None,
            malformed: Default::default(),
        }
    }

    fn status(in_sync: bool, peers: Vec<PeerStatus>, uptime: u64) -> NodeStatus {
        let mut s = NodeStatus::default();
        s.datastore.in_sync = in_sync;
        s.routing.peers = peers;
        s.uptime_seconds = uptime;
        s
    }

    #[test]
    fn ready_rules() {
        let down = vec![peer(State::Active)];
        let up = vec![peer(State::Active), peer(State::Established)];
        let (early, late) = (5, 61);
        assert!(
            readiness(&status(false, vec![], late))
                .unwrap_err()
                .contains("etcd")
        );
        assert!(readiness(&status(true, vec![], late)).is_ok());
        assert!(readiness(&status(true, down.clone(), early)).is_ok());
        assert!(
            readiness(&status(true, down, late))
                .unwrap_err()
                .contains("Established")
        );
        assert!(readiness(&status(true, up, late)).is_ok());
    }
}
