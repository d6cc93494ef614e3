//! Route reflection from one BGPPeer: host1 is a route reflector (a
//! cluster ID, mesh off) and a single BGPPeer makes the other hosts peer
//! with it; host1 peers back with them by itself (Calico's reverse
//! peering) and reflects each client's block to the other.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{agent, claim_block, peer, status};
use manul_status::State;
use manul_tests::node::{RES, pool_json, wait_felix_route};
use manul_tests::{Etcd, Lab, Need, require, scratch, wait_until};

#[test]
fn one_bgppeer_makes_both_ends_of_reflector_sessions() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let lab = Lab::builder().hosts(3).build()?;
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(
        &format!("{RES}/bgpconfigurations/default"),
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":null},"spec":{"nodeToNodeMeshEnabled":false}}"#,
    )?;
    etcd.put(
        &format!("{RES}/nodes/host1"),
        &format!(
            r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"host1","creationTimestamp":null,"labels":{{"route-reflector":"true"}}}},"spec":{{"bgp":{{"ipv4Address":"{}/24","routeReflectorClusterID":"224.0.0.1"}}}}}}"#,
            h1.ipv4
        ),
    )?;
    etcd.put(
        &format!("{RES}/bgppeers/peer-with-rr"),
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"peer-with-rr","creationTimestamp":null},"spec":{"nodeSelector":"!has(route-reflector)","peerSelector":"route-reflector == 'true'"}}"#,
    )?;
    let logs = scratch::run().tempdir("reflector-agents")?;
    let _agents = [
        agent(h1, &endpoint, logs.path(), &[])?,
        agent(h2, &endpoint, logs.path(), &[])?,
        agent(h3, &endpoint, logs.path(), &[])?,
    ];
    for client in [h2, h3] {
        wait_until(
            Duration::from_secs(60),
            &format!("host1 <-> {} Established", client.name),
            || {
                let back = peer(&h1.ns, client.ipv4_ip())?;
                let to = peer(&client.ns, h1.ipv4_ip())?;
                if back.state == State::Established && to.state == State::Established {
                    Ok(())
                } else {
                    Err(format!("{back:?} / {to:?}"))
                }
            },
        );
        // A client peers with the reflector only.
        let s = status(&client.ns)?;
        assert_eq!(s.routing.peers.len(), 1, "{:?}", s.routing.peers);
    }
    // Each client learns the other's block through the reflector, with
    // the originator's next hop.
    let b2 = claim_block(&h1.ns, &endpoint, &h2.name)?;
    let b3 = claim_block(&h1.ns, &endpoint, &h3.name)?;
    for (h, want) in [
        (h2, format!("{b3} via {} dev eth0", h3.ipv4)),
        (h3, format!("{b2} via {} dev eth0", h2.ipv4)),
    ] {
        wait_felix_route(h, &want, Duration::from_secs(30));
    }
    Ok(())
}
