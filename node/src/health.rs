//! `/readiness`: ready when in sync with etcd and — once a grace period
//! after start has passed — at least one BGP peer is Established when any
//! are configured (Calico's "BIRD is ready" check). `/liveness` is the
//! process answering at all.

use std::time::Duration;

use serde_json::Value;

/// How long after start a node may be ready without an Established peer.
pub const BGP_GRACE: Duration = Duration::from_secs(60);

/// `Ok` when ready, else why not.
pub fn readiness(
    in_sync: bool,
    sync_error: Option<&str>,
    peers: &Value,
    uptime: Duration,
) -> Result<(), String> {
    if !in_sync {
        return Err(format!(
            "not in sync with etcd: {}",
            sync_error.unwrap_or("first list pending")
        ));
    }
    let peers = peers.as_array().map(Vec::as_slice).unwrap_or_default();
    if uptime >= BGP_GRACE
        && !peers.is_empty()
        && !peers.iter().any(|p| p["state"] == "Established")
    {
        return Err(format!(
            "none of {} BGP peers is Established after {}s",
            peers.len(),
            uptime.as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_rules() {
        let down = json!([{"state": "Active"}]);
        let up = json!([{"state": "Active"}, {"state": "Established"}]);
        let early = Duration::from_secs(5);
        let late = Duration::from_secs(61);
        assert!(
            readiness(false, None, &json!([]), late)
                .unwrap_err()
                .contains("etcd")
        );
        assert!(readiness(true, None, &json!([]), late).is_ok());
        assert!(readiness(true, None, &down, early).is_ok());
        assert!(
            readiness(true, None, &down, late)
                .unwrap_err()
                .contains("Established")
        );
        assert!(readiness(true, None, &up, late).is_ok());
    }
}
