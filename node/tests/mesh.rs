//! Three manul-node agents, each in its own host namespace of a lab
//! segment, with a real etcd: they form the iBGP node-to-node mesh and
//! each kernel gets routes to the other hosts' blocks.

use std::path::Path;
use std::time::Duration;

mod common;

use anyhow::Result;
use common::status;
use manul_status::{PeerType, State};
use manul_tests::node::{agent, get, wait_felix_route};
use manul_tests::{Etcd, Lab, Need, require, scratch, wait_until};

#[test]
fn three_nodes_form_the_mesh_and_route_to_each_others_blocks() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let lab = Lab::builder().hosts(3).build()?;
    let etcd_host = lab.host(1);
    let etcd = Etcd::start_in(&etcd_host.ns, etcd_host.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", etcd_host.ipv4);
    let logs = scratch::run().tempdir("mesh-agents")?;
    // The default pool, created by whichever agent starts first.
    let spawn = |h| {
        let pool = [("CALICO_IPV4POOL_CIDR", "10.65.0.0/16")];
        let bin = Path::new(env!("CARGO_BIN_EXE_manul-node"));
        agent(bin, h, &endpoint, logs.path(), &pool)
    };
    let mut agents = Vec::new();
    for h in &lab.hosts {
        agents.push(spawn(h)?);
    }
    // Every agent sees two mesh peers Established.
    for h in &lab.hosts {
        wait_until(
            Duration::from_secs(60),
            &format!("{}: 2 mesh peers Established", h.name),
            || {
                let s = status(&h.ns).map_err(|e| e.to_string())?;
                let up = s
                    .routing
                    .peers
                    .iter()
                    .filter(|p| p.state == State::Established && p.kind == PeerType::Mesh)
                    .count();
                if up == 2 {
                    Ok(())
                } else {
                    Err(format!("{:?}", s.routing.peers))
                }
            },
        );
    }
    // A block per host; every other host's kernel gets a route to it via that host.
    let mut blocks = Vec::new();
    for h in &lab.hosts {
        let block = common::claim_block(&etcd_host.ns, &endpoint, &h.name)?;
        blocks.push((h, block));
    }
    for (owner, block) in &blocks {
        for h in &lab.hosts {
            let want = if h.name == owner.name {
                format!("blackhole {block}")
            } else {
                format!("{block} via {} dev eth0", owner.ipv4)
            };
            wait_felix_route(h, &want, Duration::from_secs(30));
        }
    }
    // /metrics agrees (peers Established, prefixes received).
    let h1 = lab.host(1);
    wait_until(
        Duration::from_secs(5),
        "metrics show 2 established peers",
        || {
            let m = get(&h1.ns, "/metrics").map_err(|e| e.to_string())?;
            let up = m
                .lines()
                .filter(|l| l.starts_with("manul_bgp_peer_established{") && l.ends_with(" 1"))
                .count();
            if up == 2 && m.contains("manul_routes_remote_prefixes 2") {
                Ok(())
            } else {
                Err(m)
            }
        },
    );
    // Restart without loss: while host2's agent stops (SIGTERM) and starts
    // again, its kernel never loses the routes to the other hosts' blocks.
    let h2 = lab.host(2);
    let remote: Vec<String> = blocks
        .iter()
        .filter(|(o, _)| o.name != h2.name)
        .map(|(o, b)| format!("{b} via {}", o.ipv4))
        .collect();
    agents[1].stop();
    agents[1] = spawn(h2)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut ready_at = None;
    while std::time::Instant::now() < deadline {
        let routes = h2.ns.ip(&["route", "show", "proto", "80"])?;
        for r in &remote {
            anyhow::ensure!(
                routes.contains(r.as_str()),
                "{r} left host2's kernel during the restart:\n{routes}"
            );
        }
        if ready_at.is_none()
            && status(&h2.ns).is_ok_and(|s| {
                s.routing.established() == 2 && s.routing.routes.remote_prefixes == 2
            })
        {
            ready_at = Some(std::time::Instant::now());
        }
        if ready_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::ensure!(
        ready_at.is_some(),
        "host2's agent did not come back with its peers and routes"
    );

    // SIGTERM leaves the routes in the kernel; --cleanup removes them.
    let h3 = lab.host(3);
    agents[2].stop();
    let before = h3.ns.ip(&["route", "show", "proto", "80"])?;
    anyhow::ensure!(
        before.lines().count() >= 3,
        "routes gone after SIGTERM:\n{before}"
    );
    let out = h3
        .ns
        .command(env!("CARGO_BIN_EXE_manul-node"))
        .arg("--cleanup")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "--cleanup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = h3.ns.ip(&["route", "show", "proto", "80"])?;
    anyhow::ensure!(
        after.trim().is_empty(),
        "routes left after --cleanup:\n{after}"
    );
    drop(etcd);
    Ok(())
}
