//! An IPIP pool is refused out loud: manul-node builds no IPIP tunnels,
//! so the pool's remote routes are not programmed (never sent out bare),
//! and `/status` and `/metrics` name the pool and why. Set to
//! `ipipMode: Never`, the same pool is routed at once.

mod common;

use std::time::Duration;

use anyhow::{Result, ensure};
use common::{agent, claim_block, status};
use manul_tests::node::{RES, get, wait_felix_route};
use manul_tests::{Etcd, Lab, Need, require, scratch, wait_until};

fn pool(ipip: &str) -> String {
    format!(
        r#"{{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tunnelled","creationTimestamp":null}},"spec":{{"cidr":"10.70.0.0/16","blockSize":26,"ipipMode":"{ipip}","vxlanMode":"Never","nodeSelector":"all()"}}}}"#
    )
}

#[test]
fn an_ipip_pool_is_not_routed_and_says_so_until_it_is_plain() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let lab = Lab::builder().hosts(2).build()?;
    let (h1, h2) = (lab.host(1), lab.host(2));
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    let key = format!("{RES}/ippools/tunnelled");
    etcd.put(&key, &pool("Always"))?;
    let logs = scratch::run().tempdir("ipip-agents")?;
    let _agents = [
        agent(h1, &endpoint, logs.path(), &[])?,
        agent(h2, &endpoint, logs.path(), &[])?,
    ];
    let b2 = claim_block(&h1.ns, &endpoint, &h2.name)?;

    // host1 learns host2's block over BGP, hands it to felix, and felix
    // refuses it: the kernel has no route to it, and none is counted.
    let s = wait_until(
        Duration::from_secs(60),
        "host1 has host2's block and refuses its pool",
        || {
            let s = status(&h1.ns).map_err(|e| e.to_string())?;
            let r = &s.routing.routes;
            let learned = s
                .routing
                .peers
                .iter()
                .map(|p| p.prefixes_received)
                .sum::<usize>();
            if s.routing.established() == 1
                && r.holding.is_none()
                && learned == 1
                && r.refused_pools.len() == 1
            {
                Ok(s)
            } else {
                Err(format!("{:?}", s.routing))
            }
        },
    );
    let refused = &s.routing.routes.refused_pools[0];
    ensure!(refused.pool == "tunnelled", "{refused:?}");
    ensure!(
        refused.reason.contains("ipipMode Always") && refused.reason.contains("IPIP"),
        "{refused:?}"
    );
    ensure!(
        s.routing.routes.remote_prefixes == 0,
        "{:?}",
        s.routing.routes
    );
    let routes = h1.ns.ip(&["route", "show", "proto", "80"])?;
    ensure!(
        !routes.contains(&b2.to_string()),
        "host1 routes the IPIP pool's block without a tunnel:\n{routes}"
    );
    let metrics = get(&h1.ns, "/metrics")?;
    ensure!(
        metrics.contains(r#"manul_pool_refused{pool="tunnelled"} 1"#),
        "{metrics}"
    );

    // Plain routing for the pool: routed at once, and no longer refused.
    etcd.put(&key, &pool("Never"))?;
    wait_felix_route(
        h1,
        &format!("{b2} via {} dev eth0", h2.ipv4),
        Duration::from_secs(10),
    );
    let s = status(&h1.ns)?;
    ensure!(
        s.routing.routes.refused_pools.is_empty() && s.routing.routes.remote_prefixes == 1,
        "{:?}",
        s.routing.routes
    );
    let metrics = get(&h1.ns, "/metrics")?;
    ensure!(!metrics.contains("tunnelled"), "{metrics}");
    Ok(())
}
