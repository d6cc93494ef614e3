//! manul-bgpd against a real BIRD 2, each in its own namespace (`a` is
//! manul at 10.77.0.1 / fd00:77::1, `b` is BIRD at .2 / ::2).

mod common;

use std::time::Duration;

use common::{Bgpd, pair};
use manul_tests::{Bird, Need, require, wait_until};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(30);

/// manul's side: one peer (BIRD) with extra peer lines, and one prefix.
fn manul_conf(local_as: u32, bird_as: u32, peer_extra: &str, top_extra: &str) -> String {
    format!(
        r#"
router_id = "10.77.0.1"
asn = {local_as}
listen = ["10.77.0.1:179", "[fd00:77::1]:179"]
{top_extra}

[[peer]]
address = "10.77.0.2"
asn = {bird_as}
hold_time = 9
connect_retry = 1
{peer_extra}

[[prefix]]
prefix = "10.201.0.0/24"
communities = ["65001:100"]
large_communities = ["4200000001:1:2"]
"#
    )
}

/// BIRD's side: a static route with communities and the session to manul.
fn bird_conf(local_as: u32, bird_as: u32, protocol_extra: &str) -> String {
    format!(
        r#"
protocol static s4 {{
    ipv4;
    route 10.202.0.0/24 blackhole {{ bgp_community.add((65002, 200)); bgp_large_community.add((65002, 3, 4)); }};
}}
protocol bgp manul {{
    local 10.77.0.2 as {bird_as};
    neighbor 10.77.0.1 as {local_as};
    hold time 9;
    connect retry time 1;
    {protocol_extra}
    ipv4 {{ import all; export all; }};
}}
"#
    )
}

fn bird_at(b: &manul_tests::Netns, conf: &str) -> anyhow::Result<Bird> {
    Bird::builder(b).router_id("10.77.0.2".parse()?).start(conf)
}

/// Stop manul-bgpd with `signal` (it can come back with `restart`) and
/// wait until BIRD sees the session gone.
fn stop_manul(manul: &Bgpd, bird: &Bird, signal: Signal) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(manul.daemon.pid() as i32);
    nix::sys::signal::kill(pid, signal)?;
    wait_until(T, "BIRD to notice the session loss", || {
        let p = bird
            .protocol("manul")
            .map_err(|e| e.to_string())?
            .ok_or("gone")?;
        if p.info.starts_with("Established") {
            Err(format!("{p:?}"))
        } else {
            Ok(())
        }
    });
    Ok(())
}

#[test]
fn ebgp_v4_routes_both_ways_with_communities_and_withdrawal() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "", ""))?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, ""))?;
    bird.wait_established("manul", T)?;
    manul.wait_established("10.77.0.2", T)?;

    // manul -> BIRD, with both kinds of communities.
    bird.wait_route("10.201.0.0/24", T)?;
    let detail = bird.birdc("show route 10.201.0.0/24 all")?;
    assert!(detail.contains("(65001,100)"), "{detail}");
    assert!(detail.contains("(4200000001, 1, 2)"), "{detail}");
    assert!(detail.contains("BGP.as_path: 65001"), "{detail}");
    assert!(detail.contains("BGP.next_hop: 10.77.0.1"), "{detail}");

    // BIRD -> manul.
    let route = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(route["next_hops"][0], "10.77.0.2");
    assert_eq!(route["as_path"][0], 65002);
    assert_eq!(route["communities"][0], "65002:200");
    assert_eq!(route["large_communities"][0], "65002:3:4");
    let peer = manul.peer("10.77.0.2")?;
    assert_eq!(peer["accepted"], 1);
    assert_eq!(peer["advertised"], 1);
    assert_eq!(peer["capabilities"]["four_octet_as"], true);
    assert_eq!(peer["capabilities"]["hold_time"], 9);

    // Withdrawal propagates.
    bird.birdc("disable s4")?;
    manul.wait_no_route("10.202.0.0/24", T)?;
    Ok(())
}

#[test]
fn ebgp_ipv6_session_with_v6_routes_both_ways() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(
        &a,
        r#"
router_id = "10.77.0.1"
asn = 65001
listen = ["[fd00:77::1]:179"]
[[peer]]
address = "fd00:77::2"
asn = 65002
families = ["ipv6"]
connect_retry = 1
[[prefix]]
prefix = "fd00:201::/64"
communities = ["65001:6"]
"#,
    )?;
    let bird = bird_at(
        &b,
        r#"
protocol static s6 { ipv6; route fd00:202::/64 blackhole; }
protocol bgp manul6 {
    local fd00:77::2 as 65002;
    neighbor fd00:77::1 as 65001;
    connect retry time 1;
    ipv6 { import all; export all; };
}
"#,
    )?;
    bird.wait_established("manul6", T)?;
    bird.wait_route("fd00:201::/64", T)?;
    let detail = bird.birdc("show route fd00:201::/64 all")?;
    assert!(detail.contains("BGP.next_hop: fd00:77::1"), "{detail}");
    assert!(detail.contains("(65001,6)"), "{detail}");
    let route = manul.wait_route("fd00:202::/64", T)?;
    assert_eq!(route["next_hops"][0], "fd00:77::2");
    Ok(())
}

#[test]
fn ibgp_routes_carry_local_pref_and_keep_the_next_hop() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(64512, 64512, "", ""))?;
    let bird = bird_at(&b, &bird_conf(64512, 64512, "direct;"))?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    let detail = bird.birdc("show route 10.201.0.0/24 all")?;
    assert!(detail.contains("BGP.local_pref: 100"), "{detail}");
    // iBGP: our AS is not prepended.
    assert!(!detail.contains("BGP.as_path: 64512"), "{detail}");
    let route = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(route["local_pref"], 100);
    assert_eq!(route["as_path"].as_array().map(Vec::len), Some(0));
    Ok(())
}

#[test]
fn four_octet_as_numbers_both_sides() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(4200000001, 4200000002, "", ""))?;
    let bird = bird_at(&b, &bird_conf(4200000001, 4200000002, ""))?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    let detail = bird.birdc("show route 10.201.0.0/24 all")?;
    assert!(detail.contains("BGP.as_path: 4200000001"), "{detail}");
    let route = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(route["as_path"][0], 4200000002u32);
    Ok(())
}

#[test]
fn md5_right_password_establishes_wrong_one_never_does() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "password = \"s3cret\"", ""))?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, "password \"s3cret\";"))?;
    bird.wait_established("manul", T)?;
    drop(bird);
    let (c, d) = pair()?;
    let manul_wrong = Bgpd::start(&c, &manul_conf(65001, 65002, "password = \"s3cret\"", ""))?;
    let bird_wrong = bird_at(&d, &bird_conf(65001, 65002, "password \"other\";"))?;
    std::thread::sleep(Duration::from_secs(5));
    let p = bird_wrong.protocol("manul")?.expect("protocol exists");
    assert!(!p.info.starts_with("Established"), "{p:?}");
    assert_ne!(manul_wrong.peer("10.77.0.2")?["state"], "Established");
    drop(manul);
    Ok(())
}

#[test]
fn hold_timer_drops_a_frozen_peer() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "", ""))?;
    let mut bird = bird_at(&b, &bird_conf(65001, 65002, "error wait time 1, 5;"))?;
    manul.wait_established("10.77.0.2", T)?;
    manul.wait_route("10.202.0.0/24", T)?;
    let pid = nix::unistd::Pid::from_raw(bird.daemon().pid() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP)?;
    let frozen = std::time::Instant::now();
    let result = manul_tests::try_wait_until(
        Duration::from_secs(20),
        "manul to drop the frozen peer",
        || {
            let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
            if p["state"] != "Established" {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    );
    let waited = frozen.elapsed();
    nix::sys::signal::kill(pid, Signal::SIGCONT)?;
    result?;
    // Hold time 9 s: not before it (keepalives would have kept it up).
    assert!(waited >= Duration::from_secs(7), "dropped after {waited:?}");
    let peer = manul.peer("10.77.0.2")?;
    assert!(
        peer["last_error"].as_str().unwrap_or("").contains("Hold"),
        "{peer}"
    );
    // Its routes are gone (BIRD did not announce graceful restart).
    assert!(manul.route("10.202.0.0/24")?.is_none());
    // And it comes back.
    manul.wait_established("10.77.0.2", T)?;
    Ok(())
}

#[test]
fn max_prefix_closes_the_session_with_cease_6_1() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let _manul = Bgpd::start(&a, &manul_conf(65001, 65002, "max_prefixes = 2", ""))?;
    let bird = bird_at(
        &b,
        &bird_conf(65001, 65002, "").replace(
            "route 10.202.0.0/24 blackhole",
            "route 10.203.0.0/24 blackhole; route 10.204.0.0/24 blackhole; route 10.202.0.0/24 blackhole",
        ),
    )?;
    wait_until(T, "BIRD to see Cease 6/1 from manul", || {
        let all = bird
            .birdc("show protocols all manul")
            .map_err(|e| e.to_string())?;
        if all.contains("Maximum number of prefixes reached") {
            Ok(())
        } else {
            Err(all)
        }
    });
    Ok(())
}

#[test]
fn route_refresh_request_gets_everything_again() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let _manul = Bgpd::start(&a, &manul_conf(65001, 65002, "", ""))?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, ""))?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    let imported = |bird: &Bird| -> Result<u64, String> {
        let all = bird
            .birdc("show protocols all manul")
            .map_err(|e| e.to_string())?;
        // "Import updates:     1   0   0   0   1": the first number is received.
        all.lines()
            .find(|l| l.trim_start().starts_with("Import updates:"))
            .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
            .ok_or(all)
    };
    let before = imported(&bird).map_err(anyhow::Error::msg)?;
    bird.birdc("reload in manul")?;
    wait_until(T, "manul to answer the route refresh", || {
        let now = imported(&bird)?;
        if now > before {
            Ok(())
        } else {
            Err(format!("import updates {now}"))
        }
    });
    Ok(())
}

#[test]
fn graceful_restart_peer_keeps_routes_while_manul_is_killed_or_stopped() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let mut manul = Bgpd::start(&a, &manul_conf(65001, 65002, "", ""))?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, "graceful restart on;"))?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    for signal in [Signal::SIGKILL, Signal::SIGTERM] {
        stop_manul(&manul, &bird, signal)?;
        // The route stays while manul is away (without graceful restart,
        // or after a Cease, BIRD would have dropped it at once).
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            bird.has_route("10.201.0.0/24")?,
            "after {signal}: route dropped"
        );
        // manul returns, announces the restart and re-sends; nothing lost.
        manul.restart(Signal::SIGCONT, &["--restarting"])?;
        bird.wait_established("manul", T)?;
        // BIRD's restart timer is 120 s: the route is there now because
        // manul re-sent it and its End-of-RIB ended the stale phase.
        std::thread::sleep(Duration::from_secs(1));
        let all = bird.birdc("show protocols all manul")?;
        assert!(!all.contains("stale"), "{all}");
        assert!(
            bird.has_route("10.201.0.0/24")?,
            "after {signal} and return: route lost"
        );
    }
    Ok(())
}

/// manul-node restarts its speaker as a plain start (no R bit): its routes
/// outlive the process in the kernel, so it sets the F bit anyway, and
/// BIRD keeps manul's route across the restart — in its kernel table too —
/// instead of dropping it when the new session comes up and installing it
/// again a moment later (RFC 4724 §4.2; a packet in that gap is lost).
#[test]
fn forwarding_preserved_keeps_the_route_in_birds_kernel_across_a_plain_restart()
-> anyhow::Result<()> {
    require!(
        Need::Root,
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip")
    );
    let (a, b) = pair()?;
    let mut manul = Bgpd::start(
        &a,
        &manul_conf(
            65001,
            65002,
            "",
            "[graceful_restart]\nforwarding_preserved = true\n",
        ),
    )?;
    let bird = Bird::builder(&b)
        .router_id("10.77.0.2".parse()?)
        .kernel_export(true)
        .start(&bird_conf(65001, 65002, "graceful restart on;"))?;
    bird.wait_established("manul", T)?;
    wait_until(T, "manul's route in BIRD's kernel table", || {
        let r = b
            .ip(&["route", "show", "10.201.0.0/24"])
            .map_err(|e| e.to_string())?;
        if r.contains("proto bird") {
            Ok(())
        } else {
            Err(r)
        }
    });
    let mut monitor = b
        .command("ip")
        .args(["monitor", "route"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    for signal in [Signal::SIGKILL, Signal::SIGTERM] {
        stop_manul(&manul, &bird, signal)?;
        manul.restart(Signal::SIGCONT, &[])?;
        bird.wait_established("manul", T)?;
        // manul's End-of-RIB ends BIRD's stale phase.
        wait_until(T, "BIRD's stale phase over", || {
            let all = bird
                .birdc("show protocols all manul")
                .map_err(|e| e.to_string())?;
            if all.contains("stale") {
                Err(all)
            } else {
                Ok(())
            }
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    monitor.kill()?;
    let seen = String::from_utf8_lossy(&monitor.wait_with_output()?.stdout).to_string();
    assert!(
        !seen.contains("10.201.0.0/24"),
        "BIRD's kernel route changed across manul's restarts:\n{seen}"
    );
    assert!(
        b.ip(&["route", "show", "10.201.0.0/24"])?
            .contains("proto bird")
    );
    Ok(())
}

#[test]
fn gtsm_session_with_bird() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002, "ttl_security = 1", ""))?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, "ttl security on;"))?;
    bird.wait_established("manul", T)?;
    manul.wait_established("10.77.0.2", T)?;
    manul.wait_route("10.202.0.0/24", T)?;
    Ok(())
}

#[test]
fn dynamic_peer_from_a_listen_range() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(
        &a,
        r#"
router_id = "10.77.0.1"
asn = 65001
listen = ["10.77.0.1:179"]
[[listen_range]]
range = "10.77.0.0/24"
password = "r4nge"
export = "all"
[[prefix]]
prefix = "10.201.0.0/24"
"#,
    )?;
    let bird = bird_at(&b, &bird_conf(65001, 65002, "password \"r4nge\";"))?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    let route = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(route["next_hops"][0], "10.77.0.2");
    let peer = manul.peer("10.77.0.2")?;
    assert_eq!(peer["dynamic"], true, "{peer}");
    assert_eq!(peer["asn"], 65002, "{peer}");
    Ok(())
}
