//! Helpers shared by manul-node's end-to-end tests, on top of the
//! harness's [`manul_tests::node`]: start this package's agent in a lab
//! host, find a peer in its status, claim an IPAM block through
//! manul-ipam.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use manul_status::{NodeStatus, PeerStatus};
use manul_tests::{Daemon, Host, Netns};

/// This package's manul-node in `host` (address `<ipv4>/24`) against
/// `endpoint`, creating no default pool, with `env` on top; logged to
/// `logs/<host>.log`.
pub fn agent(host: &Host, endpoint: &str, logs: &Path, env: &[(&str, &str)]) -> Result<Daemon> {
    let mut all = vec![("NO_DEFAULT_POOLS", "true")];
    all.extend_from_slice(env);
    manul_tests::node::agent(
        Path::new(env!("CARGO_BIN_EXE_manul-node")),
        host,
        endpoint,
        logs,
        &all,
    )
}

/// The agent's `/status` in `ns`, read as manulctl reads it.
pub fn status(ns: &Netns) -> Result<NodeStatus> {
    Ok(serde_json::from_value(manul_tests::node::status(ns)?)?)
}

/// The peer at `address` in `/status`, as a string error for `wait_until`.
pub fn peer(ns: &Netns, address: IpAddr) -> Result<PeerStatus, String> {
    let s = status(ns).map_err(|e| e.to_string())?;
    s.routing
        .peers
        .iter()
        .find(|p| p.address == address)
        .cloned()
        .ok_or_else(|| format!("no peer {address}: {:?}", s.routing.peers))
}

/// One address for `host` through manul-ipam (claims a block, the pool
/// must exist); runs from inside `ns`. Returns the block (/26).
pub fn claim_block(ns: &Netns, endpoint: &str, host: &str) -> Result<ipnet::Ipv4Net> {
    let ip = ns.run(|| -> Result<IpAddr> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let ds =
                manul_datastore::Datastore::connect(&manul_datastore::EtcdConfig::new([endpoint]))
                    .await?;
            let ipam = manul_ipam::Ipam::new(ds);
            let ips = ipam
                .auto_assign(&manul_ipam::AutoAssignArgs {
                    handle_id: format!("k8s-pod-network.test-{host}"),
                    num_v4: 1,
                    host: host.to_string(),
                    ..Default::default()
                })
                .await?;
            Ok(ips[0])
        })
    })?;
    match ip {
        IpAddr::V4(v4) => Ok(ipnet::Ipv4Net::new(v4, 26)?.trunc()),
        IpAddr::V6(_) => anyhow::bail!("an IPv6 address from a v4 request"),
    }
}
