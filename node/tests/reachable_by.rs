//! BGPPeer `reachableBy` end to end, with a real agent, etcd and BIRD: a
//! BIRD router in a network of its own (10.99.0.0/24) that the node
//! reaches only through the top-of-rack router (the node has no default
//! route). The BGPPeer's gateway becomes a protocol-80 host route on the
//! node, the session comes up over it, the route is put back when someone
//! deletes it, removing `reachableBy` removes the route, and a gateway on
//! no connected network shows as a failed route (and a log line).

use std::time::Duration;

mod common;

use anyhow::Result;
use common::{agent, claim_block, status};
use manul_tests::node::{RES, pool_json};
use manul_tests::{Bird, Etcd, Lab, Need, Netns, require, scratch, wait_until};

const FAR: &str = "10.99.0.2";
const FAR_GW: &str = "10.99.0.254";

fn peer_json(reachable_by: Option<&str>) -> String {
    let gw = reachable_by
        .map(|g| format!(r#","reachableBy":"{g}""#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"far","creationTimestamp":null}},"spec":{{"peerIP":"{FAR}","asNumber":65099{gw}}}}}"#
    )
}

/// The node's protocol-80 route to the far router, if any.
fn route_to_far(ns: &Netns) -> Result<Option<String>, String> {
    let out = ns
        .ip(&["route", "show", "proto", "80"])
        .map_err(|e| e.to_string())?;
    Ok(out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(FAR))
        .map(|l| l.trim().to_string()))
}

#[test]
fn reachable_by_routes_to_the_peer_through_its_gateway_live() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(1).tor(true).build()?;
    let (tor, host) = (lab.tor(), lab.host(1));
    // The node reaches the far network only through reachableBy.
    host.ns.ip(&["route", "del", "default"])?;
    let far = Netns::new("far")?;
    tor.ns.veth("far0", &far, "eth0")?;
    tor.ns.add_addr("far0", &format!("{FAR_GW}/24"))?;
    far.add_addr("eth0", &format!("{FAR}/24"))?;
    far.ip(&["route", "add", "default", "via", FAR_GW])?;
    let far_ip: std::net::IpAddr = FAR.parse()?;
    assert!(
        host.ns.ping(far_ip, 1).is_err(),
        "the far router is reachable without reachableBy"
    );

    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    let block = claim_block(&tor.ns, &endpoint, &host.name)?.to_string();
    let bird = Bird::builder(&far)
        .router_id(FAR.parse()?)
        .start(&format!(
            "protocol static {{ ipv4; route 0.0.0.0/0 via {FAR_GW}; }}\n\
             protocol bgp {} {{ local {FAR} as 65099; neighbor {} as 64512; multihop; ipv4 {{ import all; export none; }}; }}\n",
            host.name, host.ipv4
        ))?;
    let logs = scratch::run().tempdir("reachable-by-agent")?;
    let _agent = agent(host, &endpoint, logs.path(), &[])?;
    // The agent has written its first routes (nothing to wait for).
    wait_until(Duration::from_secs(30), "the node's blackhole", || {
        let out = host
            .ns
            .ip(&["route", "show", "proto", "80"])
            .map_err(|e| e.to_string())?;
        if out.contains(&block) {
            Ok(())
        } else {
            Err(out)
        }
    });

    // The peer with its gateway: the route, then the session over it.
    let key = format!("{RES}/bgppeers/far");
    etcd.put(&key, &peer_json(Some(&tor.ipv4.to_string())))?;
    let want = format!("{FAR} via {} dev eth0", tor.ipv4);
    // Listed by `ip route show proto 80`: felix's.
    wait_until(
        Duration::from_secs(10),
        "the route to the peer",
        || match route_to_far(&host.ns)? {
            Some(r) if r.starts_with(&want) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    bird.wait_established(&host.name, Duration::from_secs(30))?;
    bird.wait_route(&block, Duration::from_secs(30))?;

    // Someone deletes it: felix puts it back.
    host.ns.ip(&["route", "del", FAR])?;
    wait_until(
        Duration::from_secs(10),
        "the route put back",
        || match route_to_far(&host.ns)? {
            Some(r) if r.starts_with(&want) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // reachableBy removed: the route goes.
    etcd.put(&key, &peer_json(None))?;
    wait_until(
        Duration::from_secs(10),
        "the route gone",
        || match route_to_far(&host.ns)? {
            None => Ok(()),
            r => Err(format!("{r:?}")),
        },
    );

    // A gateway on no connected network: the kernel refuses the route,
    // and the node says so (a failed route on /status, the log).
    etcd.put(&key, &peer_json(Some("10.77.0.1")))?;
    wait_until(Duration::from_secs(10), "the failed route counted", || {
        let s = status(&host.ns).map_err(|e| e.to_string())?;
        let r = route_to_far(&host.ns)?;
        if s.routing.routes.failed == 1 && r.is_none() {
            Ok(())
        } else {
            Err(format!("failed {}, route {r:?}", s.routing.routes.failed))
        }
    });
    let log = std::fs::read_to_string(logs.path().join(format!("{}.log", host.name)))?;
    assert!(
        log.lines()
            .any(|l| l.contains("route write failed") && l.contains(FAR)),
        "no log line for the refused route"
    );
    etcd.put(&key, &peer_json(None))?;
    wait_until(Duration::from_secs(10), "nothing failed any more", || {
        let s = status(&host.ns).map_err(|e| e.to_string())?;
        if s.routing.routes.failed == 0 {
            Ok(())
        } else {
            Err(format!("failed {}", s.routing.routes.failed))
        }
    });
    Ok(())
}
