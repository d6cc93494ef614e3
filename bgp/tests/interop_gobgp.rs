//! manul-bgpd against a real GoBGP, each in its own namespace (`a` is
//! manul at 10.77.0.1 / fd00:77::1, `b` is GoBGP at .2 / ::2).

mod common;

use std::time::Duration;

use common::{Bgpd, pair};
use manul_tests::{Gobgp, Need, require, wait_until};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(30);

fn manul_conf(local_as: u32, peer_as: u32, peer_extra: &str) -> String {
    format!(
        r#"
router_id = "10.77.0.1"
asn = {local_as}
listen = ["10.77.0.1:179", "[fd00:77::1]:179"]
[[peer]]
address = "10.77.0.2"
asn = {peer_as}
connect_retry = 1
families = ["ipv4"]
{peer_extra}
[[peer]]
address = "fd00:77::2"
asn = {peer_as}
connect_retry = 1
families = ["ipv6"]
{peer_extra}
[[prefix]]
prefix = "10.201.0.0/24"
communities = ["65001:100"]
large_communities = ["4200000001:1:2"]
[[prefix]]
prefix = "fd00:201::/64"
"#
    )
}

/// GoBGP with a v4 and a v6 session to manul; `neighbor_extra` is TOML
/// added to each neighbor (after its config table).
fn gobgp_conf(local_as: u32, peer_as: u32, neighbor_extra: &str) -> String {
    let neighbor = |addr: &str, family: &str| {
        format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{addr}"
    peer-as = {peer_as}
{neighbor_extra}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{family}"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
"#
        )
    };
    format!(
        r#"
[global.config]
  as = {local_as}
  router-id = "10.77.0.2"
  local-address-list = ["10.77.0.2", "fd00:77::2"]
{}{}"#,
        neighbor("10.77.0.1", "ipv4-unicast"),
        neighbor("fd00:77::1", "ipv6-unicast")
    )
}

#[test]
fn ebgp_v4_and_v6_both_ways_with_communities_and_withdrawals() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, ""))?;
    let gobgp = Gobgp::start(&b, &gobgp_conf(65002, 65001, ""))?;
    gobgp.wait_established("10.77.0.1", T)?;
    gobgp.wait_established("fd00:77::1", T)?;

    gobgp.wait_route("ipv4", "10.201.0.0/24", T)?;
    let shown = gobgp.cli(&["global", "rib", "-a", "ipv4", "10.201.0.0/24"])?;
    assert!(shown.contains("10.77.0.1"), "next hop: {shown}");
    assert!(shown.contains("65001:100"), "community: {shown}");
    assert!(shown.contains("4200000001:1:2"), "large community: {shown}");
    gobgp.wait_route("ipv6", "fd00:201::/64", T)?;
    let shown = gobgp.cli(&["global", "rib", "-a", "ipv6", "fd00:201::/64"])?;
    assert!(shown.contains("fd00:77::1"), "v6 next hop: {shown}");

    gobgp.cli(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "10.202.0.0/24",
        "community",
        "65002:200",
        "large-community",
        "65002:3:4",
    ])?;
    gobgp.cli(&["global", "rib", "add", "-a", "ipv6", "fd00:202::/64"])?;
    let r4 = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(r4["next_hops"][0], "10.77.0.2");
    assert_eq!(r4["communities"][0], "65002:200");
    assert_eq!(r4["large_communities"][0], "65002:3:4");
    let r6 = manul.wait_route("fd00:202::/64", T)?;
    assert_eq!(r6["next_hops"][0], "fd00:77::2");

    gobgp.cli(&["global", "rib", "del", "-a", "ipv4", "10.202.0.0/24"])?;
    gobgp.cli(&["global", "rib", "del", "-a", "ipv6", "fd00:202::/64"])?;
    manul.wait_no_route("10.202.0.0/24", T)?;
    manul.wait_no_route("fd00:202::/64", T)?;
    Ok(())
}

#[test]
fn ibgp_with_gobgp() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(64512, 64512, ""))?;
    let gobgp = Gobgp::start(&b, &gobgp_conf(64512, 64512, ""))?;
    gobgp.wait_established("10.77.0.1", T)?;
    gobgp.wait_route("ipv4", "10.201.0.0/24", T)?;
    let shown = gobgp.cli(&["global", "rib", "-a", "ipv4", "10.201.0.0/24"])?;
    assert!(shown.contains("LocalPref: 100"), "{shown}");
    gobgp.add_route("10.202.0.0/24", "ipv4")?;
    let r = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(r["as_path"].as_array().map(Vec::len), Some(0), "{r}");
    Ok(())
}

#[test]
fn md5_with_gobgp() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let _manul = Bgpd::start(&a, &manul_conf(65001, 65002, "password = \"k3y\""))?;
    let gobgp = Gobgp::start(&b, &gobgp_conf(65002, 65001, "    auth-password = \"k3y\""))?;
    gobgp.wait_established("10.77.0.1", T)?;
    gobgp.wait_established("fd00:77::1", T)?;
    drop(gobgp);
    let (c, d) = pair()?;
    let _manul2 = Bgpd::start(&c, &manul_conf(65001, 65002, "password = \"k3y\""))?;
    let wrong = Gobgp::start(
        &d,
        &gobgp_conf(65002, 65001, "    auth-password = \"nope\""),
    )?;
    std::thread::sleep(Duration::from_secs(5));
    assert_ne!(wrong.neighbor_state("10.77.0.1")?, "established");
    Ok(())
}

#[test]
fn graceful_restart_receiver_keeps_a_restarting_peers_routes() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, ""))?;
    let gr = "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 4\n";
    let conf = gobgp_conf(65002, 65001, gr);
    let mut gobgp = Gobgp::start(&b, &conf)?;
    gobgp.wait_established("10.77.0.1", T)?;
    gobgp.add_route("10.202.0.0/24", "ipv4")?;
    manul.wait_route("10.202.0.0/24", T)?;

    // GoBGP dies: manul keeps the route, stale, while GoBGP restarts.
    let pid = nix::unistd::Pid::from_raw(gobgp.daemon().pid() as i32);
    nix::sys::signal::kill(pid, Signal::SIGKILL)?;
    wait_until(T, "manul to mark the peer's routes stale", || {
        let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
        if p["stale"] == true {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    assert!(
        manul.route("10.202.0.0/24")?.is_some(),
        "route dropped at once"
    );
    drop(gobgp);
    gobgp = Gobgp::start_with_args(&b, &conf, &["-r"])?;
    gobgp.add_route("10.202.0.0/24", "ipv4")?;
    if let Err(e) = gobgp.wait_established("10.77.0.1", T) {
        anyhow::bail!("{e}\nmanul log:\n{}", manul.daemon.log_tail(40));
    }
    wait_until(T, "the stale phase to end with GoBGP's End-of-RIB", || {
        let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
        if p["stale"] == false {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    assert!(
        manul.route("10.202.0.0/24")?.is_some(),
        "route lost across the restart"
    );

    // GoBGP dies and does not come back: after its restart time (4 s) the
    // stale routes go.
    let pid = nix::unistd::Pid::from_raw(gobgp.daemon().pid() as i32);
    nix::sys::signal::kill(pid, Signal::SIGKILL)?;
    wait_until(T, "the session to drop", || {
        let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
        if p["stale"] == true {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    assert!(manul.route("10.202.0.0/24")?.is_some());
    manul.wait_no_route("10.202.0.0/24", Duration::from_secs(15))?;
    Ok(())
}

#[test]
fn hold_timer_drops_a_frozen_gobgp() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "hold_time = 9"))?;
    let mut gobgp = Gobgp::start(&b, &gobgp_conf(65002, 65001, ""))?;
    gobgp.wait_established("10.77.0.1", T)?;
    manul.wait_established("10.77.0.2", T)?;
    let pid = nix::unistd::Pid::from_raw(gobgp.daemon().pid() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP)?;
    let frozen = std::time::Instant::now();
    let dropped = manul_tests::try_wait_until(
        Duration::from_secs(20),
        "manul to drop the frozen peer",
        || {
            let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
            if p["state"] != "Established" {
                Ok(p)
            } else {
                Err(p.to_string())
            }
        },
    );
    let waited = frozen.elapsed();
    nix::sys::signal::kill(pid, Signal::SIGCONT)?;
    let p = dropped?;
    assert!(waited >= Duration::from_secs(7), "dropped after {waited:?}");
    assert!(
        p["last_error"].as_str().unwrap_or("").contains("Hold"),
        "{p}"
    );
    Ok(())
}

#[test]
fn max_prefix_with_gobgp() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "max_prefixes = 2"))?;
    let gobgp = Gobgp::start(&b, &gobgp_conf(65002, 65001, ""))?;
    gobgp.wait_established("10.77.0.1", T)?;
    for p in ["10.202.0.0/24", "10.203.0.0/24", "10.204.0.0/24"] {
        gobgp.add_route(p, "ipv4")?;
    }
    wait_until(T, "manul to close the session with Cease 6/1", || {
        let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
        let err = p["last_error"].as_str().unwrap_or("");
        if err.contains("Maximum Number of Prefixes") {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });
    Ok(())
}
