//! BGPFilter end to end, with a real agent, etcd and BIRD as the
//! top-of-rack router announcing a default route and other prefixes:
//! the import filter keeps the default (and a too-specific prefix) out of
//! the node's kernel while the rest arrive; the export filter limits what
//! BIRD receives; a change in etcd takes effect live — the import side by
//! a route refresh, the export side by the difference — without the
//! session being reset (BIRD's `since` and the agent's count of
//! Established stay); a rule on `interface` and a filter that does not
//! exist are shown on `/status`; the filter deleted filters nothing.

use std::net::IpAddr;
use std::time::Duration;

mod common;

use anyhow::Result;
use common::{agent, claim_block, peer};
use manul_status::State;
use manul_tests::node::{RES, pool_json};
use manul_tests::{Bird, Etcd, Lab, Need, require, scratch, wait_until};

const TOR_ROUTES: [&str; 5] = [
    "0.0.0.0/0",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "203.0.113.0/25",
];

fn filter_json(spec: &str) -> String {
    format!(
        r#"{{"kind":"BGPFilter","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tor-filter","creationTimestamp":null}},"spec":{spec}}}"#
    )
}

/// The prefixes of the host's kernel routes that felix wrote (protocol 80)
/// via the ToR.
fn felix_routes_via(host: &manul_tests::Host, via: IpAddr) -> Result<Vec<String>> {
    let out = host.ns.ip(&["route", "show", "proto", "80"])?;
    Ok(out
        .lines()
        .filter(|l| l.contains(&format!("via {via} ")))
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| if p == "default" { "0.0.0.0/0" } else { p }.to_string())
        .collect())
}

#[test]
fn bgp_filters_keep_routes_out_limit_exports_and_change_live() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip")
    );
    let lab = Lab::builder().hosts(1).tor(true).build()?;
    let (tor, host) = (lab.tor(), lab.host(1));
    // The default route is to come from BGP, not from the lab.
    host.ns.ip(&["route", "del", "default"])?;
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(&format!("{RES}/ippools/pool"), pool_json())?;
    // Import: no default route, nothing longer than /24 in 203.0.113.0/24.
    // Export: a rule on interfaces (manul exports none: noted).
    etcd.put(
        &format!("{RES}/bgpfilters/tor-filter"),
        &filter_json(
            r#"{"importV4":[{"action":"Reject","matchOperator":"Equal","cidr":"0.0.0.0/0"},{"action":"Reject","matchOperator":"In","cidr":"203.0.113.0/24","prefixLength":{"min":25}}],"exportV4":[{"action":"Reject","interface":"eth*"}]}"#,
        ),
    )?;
    etcd.put(
        &format!("{RES}/bgppeers/tor"),
        &format!(
            r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tor","creationTimestamp":null}},"spec":{{"peerIP":"{}","asNumber":65000,"filters":["tor-filter","not-yet"]}}}}"#,
            tor.ipv4
        ),
    )?;
    let block = claim_block(&tor.ns, &endpoint, &host.name)?.to_string();

    let statics: String = TOR_ROUTES
        .iter()
        .map(|p| format!("route {p} blackhole; "))
        .collect();
    let bird = Bird::builder(&tor.ns).router_id(tor.ipv4).start(&format!(
        "protocol static tor_routes {{ ipv4; {statics}}}\n\
         protocol bgp {} {{ local {} as 65000; neighbor {} as 64512; ipv4 {{ import all; export where proto = \"tor_routes\"; }}; }}\n",
        host.name, tor.ipv4, host.ipv4
    ))?;
    let logs = scratch::run().tempdir("filter-agent")?;
    let _agent = agent(host, &endpoint, logs.path(), &[])?;
    bird.wait_established(&host.name, Duration::from_secs(60))?;

    // Import: the rest arrive, the default and the /25 do not.
    let via = tor.ipv4_ip();
    let routes = wait_until(
        Duration::from_secs(30),
        "the ToR's accepted routes in the kernel",
        || {
            let r = felix_routes_via(host, via).map_err(|e| e.to_string())?;
            let want = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];
            if want.iter().all(|w| r.iter().any(|p| p == w)) {
                Ok(r)
            } else {
                Err(format!("{r:?}"))
            }
        },
    );
    // A second for anything rejected that would still come.
    std::thread::sleep(Duration::from_secs(1));
    let routes_now = felix_routes_via(host, via)?;
    for rejected in ["0.0.0.0/0", "203.0.113.0/25"] {
        assert!(
            !routes.iter().chain(&routes_now).any(|p| p == rejected),
            "{rejected} reached the kernel: {routes_now:?}"
        );
    }
    // Export: BIRD has the node's block.
    bird.wait_route(&block, Duration::from_secs(30))?;

    // /status: the peer's notes, one session so far.
    let p = wait_until(Duration::from_secs(10), "the ToR peer's notes", || {
        let p = peer(&host.ns, via)?;
        if p.state == State::Established && p.notes.len() == 2 {
            Ok(p)
        } else {
            Err(format!("{p:?}"))
        }
    });
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("exportV4[0]") && n.contains("interface")),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("BGPFilter not-yet does not exist")),
        "{:?}",
        p.notes
    );
    assert_eq!(p.established_count, 1);
    let (since, bird_was) = (p.since, bird_since(&bird, &host.name)?);

    // Live change: the default is now accepted, 198.51.100.0/24 is not,
    // and the node's pool is no longer exported.
    etcd.put(
        &format!("{RES}/bgpfilters/tor-filter"),
        &filter_json(
            r#"{"importV4":[{"action":"Reject","matchOperator":"In","cidr":"198.51.100.0/24"}],"exportV4":[{"action":"Reject","matchOperator":"In","cidr":"10.65.0.0/16"}]}"#,
        ),
    )?;
    wait_until(
        Duration::from_secs(15),
        "the new import filter in the kernel",
        || {
            let r = felix_routes_via(host, via).map_err(|e| e.to_string())?;
            let has = |p: &str| r.iter().any(|x| x == p);
            if has("0.0.0.0/0") && has("203.0.113.0/25") && !has("198.51.100.0/24") {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    );
    wait_until(
        Duration::from_secs(15),
        "BIRD to lose the node's block",
        || match bird.has_route(&block) {
            Ok(false) => Ok(()),
            Ok(true) => Err(bird.birdc("show route").unwrap_or_default()),
            Err(e) => Err(format!("{e:#}")),
        },
    );
    // The same session throughout, on both ends.
    let p = peer(&host.ns, via).map_err(anyhow::Error::msg)?;
    assert_eq!(p.state, State::Established);
    assert_eq!(p.established_count, 1, "manul's session was reset: {p:?}");
    assert_eq!(p.since, since, "manul's session was reset: {p:?}");
    assert_eq!(
        bird_since(&bird, &host.name)?,
        bird_was,
        "BIRD's session was reset:\n{}",
        bird.birdc(&format!("show protocols all {}", host.name))?
    );
    // Only the missing filter is left to note.
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);

    // The filter deleted: nothing is filtered any more (as in Calico).
    etcd.etcdctl(&["del", &format!("{RES}/bgpfilters/tor-filter")])?;
    wait_until(
        Duration::from_secs(15),
        "every ToR route in the kernel",
        || {
            let r = felix_routes_via(host, via).map_err(|e| e.to_string())?;
            if TOR_ROUTES.iter().all(|w| r.iter().any(|p| p == w)) {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    );
    bird.wait_route(&block, Duration::from_secs(15))?;
    let p = peer(&host.ns, via).map_err(anyhow::Error::msg)?;
    assert_eq!(p.established_count, 1, "{p:?}");
    assert_eq!(bird_since(&bird, &host.name)?, bird_was);
    Ok(())
}

/// When BIRD's protocol `name` last changed state.
fn bird_since(bird: &Bird, name: &str) -> Result<String> {
    let p = bird
        .protocol(name)?
        .ok_or_else(|| anyhow::anyhow!("BIRD has no protocol {name}"))?;
    anyhow::ensure!(p.info.starts_with("Established"), "{p:?}");
    Ok(p.since)
}
