//! A node's own AS changes live: the agent restarts its BGP speaker in
//! place with the new AS (peers hold our routes by graceful restart), the
//! sessions come back with the new AS on both ends, and the agent's kernel
//! routes to the other host's block never leave in between.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use common::{agent, claim_block, peer, status};
use manul_status::{HoldReason, State};
use manul_tests::node::{RES, get, pool_json, wait_felix_route};
use manul_tests::{Etcd, Lab, Need, require, scratch};

#[test]
fn a_changed_node_as_restarts_the_speaker_and_keeps_the_routes() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let lab = Lab::builder().hosts(2).build()?;
    let (h1, h2) = (lab.host(1), lab.host(2));
    let etcd = Etcd::start_in(&h1.ns, h1.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", h1.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    let logs = scratch::run().tempdir("identity-agents")?;
    let _agents = [
        agent(h1, &endpoint, logs.path(), &[])?,
        agent(h2, &endpoint, logs.path(), &[])?,
    ];
    let b1 = claim_block(&h1.ns, &endpoint, &h1.name)?;
    let b2 = claim_block(&h1.ns, &endpoint, &h2.name)?;
    let on_h1 = format!("{b2} via {} dev eth0", h2.ipv4);
    let on_h2 = format!("{b1} via {} dev eth0", h1.ipv4);
    for (h, want) in [(h1, &on_h1), (h2, &on_h2)] {
        wait_felix_route(h, want, Duration::from_secs(60));
    }

    // host1's Node gets AS 65001 (the agent wrote the Node; keep the rest).
    let key = format!("{RES}/nodes/{}", h1.name);
    let mut node: serde_json::Value =
        serde_json::from_str(&etcd.get(&key)?.ok_or_else(|| anyhow::anyhow!("no Node"))?)?;
    node["spec"]["bgp"]["asNumber"] = 65001.into();
    etcd.put(&key, &node.to_string())?;

    // Poll every 10 ms: host1's route to host2's block never leaves; the
    // sessions come back with the new AS on both ends.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut back_at = None;
    let mut h2_gap: Option<(Instant, Instant)> = None;
    let mut saw_hold = false;
    while Instant::now() < deadline {
        let routes = h1.ns.ip(&["route", "show", "proto", "80"])?;
        ensure!(
            routes.contains(on_h1.as_str()),
            "host1 lost {on_h1} during its speaker restart:\n{routes}"
        );
        if !h2
            .ns
            .ip(&["route", "show", "proto", "80"])?
            .contains(on_h2.as_str())
        {
            let now = Instant::now();
            h2_gap = Some((h2_gap.map_or(now, |(first, _)| first), now));
        }
        // While the new speaker converges, host1 says it holds its
        // remote routes, and why.
        if let Ok(s) = status(&h1.ns)
            && s.routing.routes.holding.map(|h| h.reason) == Some(HoldReason::SpeakerRestart)
        {
            saw_hold = true;
        }
        if back_at.is_none() {
            let p1 = peer(&h1.ns, h2.ipv4_ip());
            let p2 = peer(&h2.ns, h1.ipv4_ip());
            if let (Ok(p1), Ok(p2)) = (p1, p2)
                && p1.state == State::Established
                && p2.state == State::Established
                && p2.asn == Some(65001)
                && status(&h1.ns)?.routing.bgp_restarts == 1
            {
                back_at = Some(Instant::now());
            }
        }
        if back_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ensure!(
        back_at.is_some(),
        "the sessions did not come back with AS 65001: host1 {:?}, host2 {:?}",
        status(&h1.ns)?.routing,
        status(&h2.ns)?.routing
    );
    ensure!(
        saw_hold,
        "host1 never reported holding its routes for the speaker restart"
    );
    ensure!(
        status(&h1.ns)?.routing.routes.holding.is_none(),
        "host1 still holding after the sessions came back"
    );
    // host2 resets its session to host1 (the AS it negotiated changed):
    // its route may go for a moment, and must be back.
    let routes = h2.ns.ip(&["route", "show", "proto", "80"])?;
    ensure!(
        routes.contains(on_h2.as_str()),
        "host2 lacks {on_h2}:\n{routes}"
    );
    if let Some((first, last)) = h2_gap {
        eprintln!("host2 was without {on_h2} for {:?}", last - first);
    }
    let m = get(&h1.ns, "/metrics")?;
    ensure!(m.contains("manul_bgp_speaker_restarts 1"), "{m}");
    Ok(())
}
