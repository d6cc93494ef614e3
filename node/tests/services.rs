//! Service address ranges end to end, with two real agents (meshed), etcd
//! and BIRD as the top-of-rack router: the ranges of the global
//! BGPConfiguration (`serviceClusterIPs`, `serviceExternalIPs`,
//! `serviceLoadBalancerIPs`) reach BIRD from both nodes, with the
//! communities `prefixAdvertisements` gives them; no node programs a
//! kernel route inside a range (neither the other node's advertisement nor
//! the ToR's route inside it), while the ToR's other routes arrive; a range
//! removed from the BGPConfiguration is withdrawn live.

use std::time::Duration;

mod common;

use anyhow::Result;
use common::agent;
use manul_tests::node::{RES, pool_json, tor_peer_json};
use manul_tests::{Bird, Etcd, Host, Lab, Need, require, scratch, wait_until};

const CLUSTER: &str = "10.96.0.0/12";
const EXTERNAL: &str = "203.0.113.0/24";
const LB: &str = "198.51.100.0/24";

fn config_json(ranges: &[(&str, &str)]) -> String {
    let list = |field: &str| {
        ranges
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, c)| format!(r#"{{"cidr":"{c}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{{"name":"default","creationTimestamp":null}},"spec":{{"serviceClusterIPs":[{}],"serviceExternalIPs":[{}],"serviceLoadBalancerIPs":[{}],"communities":[{{"name":"svc","value":"65001:300"}}],"prefixAdvertisements":[{{"cidr":"203.0.0.0/8","communities":["svc"]}}]}}}}"#,
        list("serviceClusterIPs"),
        list("serviceExternalIPs"),
        list("serviceLoadBalancerIPs"),
    )
}

/// The node's protocol-80 routes, by destination.
fn felix_routes(host: &Host) -> Result<Vec<String>, String> {
    let out = host
        .ns
        .ip(&["route", "show", "proto", "80"])
        .map_err(|e| e.to_string())?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

#[test]
fn service_ranges_are_advertised_never_routed_and_withdrawn_live() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(2).tor(true).build()?;
    let tor = lab.tor();
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    etcd.put(&format!("{RES}/bgppeers/tor"), &tor_peer_json(tor))?;
    let key = format!("{RES}/bgpconfigurations/default");
    etcd.put(
        &key,
        &config_json(&[
            ("serviceClusterIPs", CLUSTER),
            ("serviceExternalIPs", EXTERNAL),
            ("serviceLoadBalancerIPs", LB),
        ]),
    )?;
    // The ToR announces a route inside the cluster range and one outside.
    let sessions: String = lab
        .hosts
        .iter()
        .map(|h| {
            format!(
                "protocol bgp {} {{ local {} as 65000; neighbor {} as 64512; ipv4 {{ import all; export where proto = \"tor_routes\"; }}; }}\n",
                h.name, tor.ipv4, h.ipv4
            )
        })
        .collect();
    let bird = Bird::builder(&tor.ns).router_id(tor.ipv4).start(&format!(
        "protocol static tor_routes {{ ipv4; route 10.96.5.0/24 blackhole; route 192.0.2.0/24 blackhole; }}\n{sessions}"
    ))?;
    let logs = scratch::run().tempdir("services-agents")?;
    let _agents = lab
        .hosts
        .iter()
        .map(|h| agent(h, &endpoint, logs.path(), &[]))
        .collect::<Result<Vec<_>>>()?;
    for h in &lab.hosts {
        bird.wait_established(&h.name, Duration::from_secs(60))?;
    }

    // BIRD learns every range from both nodes.
    for range in [CLUSTER, EXTERNAL, LB] {
        let all = bird.wait_route(range, Duration::from_secs(30))?;
        wait_until(Duration::from_secs(10), "both nodes' paths", || {
            let all = bird
                .birdc(&format!("show route {range} all"))
                .map_err(|e| e.to_string())?;
            if lab.hosts.iter().all(|h| all.contains(&h.ipv4.to_string())) {
                Ok(())
            } else {
                Err(all)
            }
        });
        let communities = all.lines().find(|l| l.contains("BGP.community"));
        if range == EXTERNAL {
            assert!(
                communities.is_some_and(|l| l.contains("(65001,300)")),
                "{all}"
            );
        } else {
            assert!(communities.is_none(), "{all}");
        }
    }

    // No node routes into a range: the ToR's 192.0.2.0/24 arrives, its
    // 10.96.5.0/24 and the other node's ranges do not.
    for h in &lab.hosts {
        wait_until(Duration::from_secs(30), "the ToR's route outside", || {
            let r = felix_routes(h)?;
            if r.iter().any(|p| p == "192.0.2.0/24") {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        });
    }
    std::thread::sleep(Duration::from_secs(1));
    for h in &lab.hosts {
        let r = felix_routes(h).map_err(anyhow::Error::msg)?;
        for inside in ["10.96.5.0/24", CLUSTER, EXTERNAL, LB] {
            assert!(
                !r.iter().any(|p| p == inside),
                "{}: {inside} in the kernel: {r:?}",
                h.name
            );
        }
    }

    // Removed from the BGPConfiguration: withdrawn, the rest stays.
    etcd.put(&key, &config_json(&[("serviceClusterIPs", CLUSTER)]))?;
    wait_until(Duration::from_secs(10), "the ranges withdrawn", || {
        let gone = [EXTERNAL, LB]
            .iter()
            .map(|r| bird.has_route(r).map_err(|e| e.to_string()))
            .collect::<Result<Vec<bool>, String>>()?;
        if gone.iter().all(|has| !has) {
            Ok(())
        } else {
            Err(format!("{gone:?}"))
        }
    });
    assert!(bird.has_route(CLUSTER)?);
    // With the ranges gone from the config, the ToR's route is routed.
    etcd.put(&key, &config_json(&[]))?;
    for h in &lab.hosts {
        wait_until(
            Duration::from_secs(10),
            "the ToR's route no longer held back",
            || {
                let r = felix_routes(h)?;
                if r.iter().any(|p| p == "10.96.5.0/24") {
                    Ok(())
                } else {
                    Err(format!("{r:?}"))
                }
            },
        );
    }
    assert!(!bird.has_route(CLUSTER)?);
    Ok(())
}
