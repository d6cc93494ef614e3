//! Next hops across families and ADD-PATH against real BIRD 2 and GoBGP
//! daemons in namespaces:
//! - IPv4 and IPv6 unicast on one IPv4 session (RFC 4760): IPv6 routes
//!   leave manul with a global IPv6 address of the session's interface and
//!   its link-local address (RFC 2545 §3), and arrive from the peer;
//! - IPv4 routes over an IPv6 session on an IPv6-only link with the
//!   Extended Next Hop capability (RFC 8950);
//! - ADD-PATH (RFC 7911): a reflector sends its client both ECMP paths of
//!   a prefix originated by two others, in both roles.

mod common;

use std::time::Duration;

use common::{Bgpd, pair};
use manul_tests::{Bird, Gobgp, Lab, Need, Netns, require, try_wait_until};

const T: Duration = Duration::from_secs(30);

/// manul at 10.77.0.1 with one IPv4 session to .2 carrying both families.
const MANUL_DUAL: &str = r#"
router_id = "10.77.0.1"
asn = 65001
listen = ["10.77.0.1:179"]
[[peer]]
address = "10.77.0.2"
asn = 65002
connect_retry = 1
families = ["ipv4", "ipv6"]
[[prefix]]
prefix = "10.201.0.0/24"
[[prefix]]
prefix = "fd00:201::/64"
"#;

/// The link-local address of `ns`'s eth0.
fn link_local(ns: &Netns) -> anyhow::Result<String> {
    let out = ns.ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"])?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no link-local address on eth0: {out}"))
}

#[test]
fn bird_both_families_on_one_ipv4_session() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, MANUL_DUAL)?;
    let bird = Bird::builder(&b).router_id("10.77.0.2".parse()?).start(
        r#"
protocol static s4 { ipv4; route 10.202.0.0/24 blackhole; }
protocol static s6 { ipv6; route fd00:202::/64 blackhole; }
protocol bgp manul {
    local 10.77.0.2 as 65002;
    neighbor 10.77.0.1 as 65001;
    connect retry time 1;
    ipv4 { import all; export all; };
    ipv6 { import all; export all; };
}
"#,
    )?;
    bird.wait_established("manul", T)?;
    manul.wait_established("10.77.0.2", T)?;
    // manul -> BIRD: the IPv6 route with the interface's global address
    // and, the peer being on the link, the link-local one.
    let d = bird.wait_route("fd00:201::/64", T)?;
    let ll = link_local(&a)?;
    assert!(d.contains(&format!("BGP.next_hop: fd00:77::1 {ll}")), "{d}");
    let d = bird.wait_route("10.201.0.0/24", T)?;
    assert!(d.contains("BGP.next_hop: 10.77.0.1"), "{d}");
    // BIRD -> manul, both families.
    let r6 = manul.wait_route("fd00:202::/64", T)?;
    assert_eq!(r6["next_hops"][0], "fd00:77::2", "{r6}");
    let r4 = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(r4["next_hops"][0], "10.77.0.2", "{r4}");
    let p = manul.peer("10.77.0.2")?;
    assert_eq!(p["advertised"], 2, "{p}");
    assert_eq!(p["unsendable"], 0, "{p}");
    Ok(())
}

#[test]
fn gobgp_both_families_on_one_ipv4_session() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, MANUL_DUAL)?;
    let gobgp = Gobgp::start(
        &b,
        r#"
[global.config]
  as = 65002
  router-id = "10.77.0.2"
  local-address-list = ["10.77.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.77.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#,
    )?;
    gobgp.wait_established("10.77.0.1", T)?;
    gobgp.wait_route("ipv6", "fd00:201::/64", T)?;
    let shown = gobgp.cli(&["global", "rib", "-a", "ipv6", "fd00:201::/64"])?;
    assert!(shown.contains("fd00:77::1"), "IPv6 next hop: {shown}");
    gobgp.wait_route("ipv4", "10.201.0.0/24", T)?;
    gobgp.cli(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv6",
        "fd00:202::/64",
        "nexthop",
        "fd00:77::2",
    ])?;
    let r6 = manul.wait_route("fd00:202::/64", T)?;
    assert_eq!(r6["next_hops"][0], "fd00:77::2", "{r6}");
    assert_eq!(manul.peer("10.77.0.2")?["advertised"], 2);
    Ok(())
}

/// Without an IPv6 address on the interface, an IPv6 route cannot go over
/// the IPv4 session: not sent, not counted as advertised, and status says
/// why (it used to be counted, and dropped by the encoder with a warning).
#[test]
fn ipv6_route_without_an_ipv6_next_hop_is_refused_out_loud() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", "10.77.0.1/24")?;
    b.add_addr("eth0", "10.77.0.2/24")?;
    let manul = Bgpd::start(&a, MANUL_DUAL)?;
    let bird = Bird::builder(&b).router_id("10.77.0.2".parse()?).start(
        r#"
protocol bgp manul {
    local 10.77.0.2 as 65002;
    neighbor 10.77.0.1 as 65001;
    connect retry time 1;
    ipv4 { import all; export all; };
    ipv6 { import all; export all; };
}
"#,
    )?;
    bird.wait_established("manul", T)?;
    bird.wait_route("10.201.0.0/24", T)?;
    let p = try_wait_until(T, "the unsendable count", || {
        let p = manul.peer("10.77.0.2").map_err(|e| e.to_string())?;
        if p["unsendable"] == 1 {
            Ok(p)
        } else {
            Err(p.to_string())
        }
    })?;
    assert_eq!(p["advertised"], 1, "{p}");
    let why = p["last_unsendable"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("fd00:201::/64: IPv6 route with no IPv6 next hop"),
        "{p}"
    );
    assert!(!bird.has_route("fd00:201::/64")?);
    Ok(())
}

#[test]
fn bird_ipv4_over_an_ipv6_only_link_with_extended_next_hop() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", "fd00:77::1/64")?;
    b.add_addr("eth0", "fd00:77::2/64")?;
    let manul = Bgpd::start(
        &a,
        r#"
router_id = "10.77.0.1"
asn = 65001
listen = ["[fd00:77::1]:179"]
[[peer]]
address = "fd00:77::2"
asn = 65002
connect_retry = 1
families = ["ipv4", "ipv6"]
extended_next_hop = true
[[prefix]]
prefix = "10.201.0.0/24"
"#,
    )?;
    let bird = Bird::builder(&b).router_id("10.77.0.2".parse()?).start(
        r#"
protocol static s4 { ipv4; route 10.202.0.0/24 blackhole; }
protocol bgp manul {
    local fd00:77::2 as 65002;
    neighbor fd00:77::1 as 65001;
    connect retry time 1;
    ipv4 { import all; export all; extended next hop on; };
    ipv6 { import all; export all; };
}
"#,
    )?;
    bird.wait_established("manul", T)?;
    let d = bird.wait_route("10.201.0.0/24", T)?;
    assert!(d.contains("BGP.next_hop: fd00:77::1"), "{d}");
    let r = manul.wait_route("10.202.0.0/24", T)?;
    assert_eq!(r["next_hops"][0], "fd00:77::2", "{r}");
    let p = manul.peer("fd00:77::2")?;
    assert_eq!(
        (p["advertised"].clone(), p["unsendable"].clone()),
        (1.into(), 0.into()),
        "{p}"
    );
    Ok(())
}

/// manul-bgpd at host `n` of the lab originating `prefix`, peering iBGP
/// with the reflector at host `rr`.
fn originator(lab: &Lab, n: usize, rr: usize, prefix: &str) -> anyhow::Result<Bgpd> {
    Bgpd::start(
        &lab.host(n).ns,
        &format!(
            r#"
router_id = "10.88.0.{n}"
asn = 64512
listen = ["10.88.0.{n}:179"]
# Its paths go as soon as it does (no graceful restart to wait out).
[graceful_restart]
enabled = false
[[peer]]
address = "10.88.0.{rr}"
asn = 64512
connect_retry = 1
[[prefix]]
prefix = "{prefix}"
"#
        ),
    )
}

/// The next hops BIRD holds for `prefix` (one per path).
fn bird_next_hops(bird: &Bird, prefix: &str) -> anyhow::Result<Vec<String>> {
    let d = bird.birdc(&format!("show route {prefix} all"))?;
    let mut v: Vec<String> = d
        .lines()
        .filter_map(|l| l.trim().strip_prefix("BGP.next_hop: "))
        .map(str::to_string)
        .collect();
    v.sort();
    Ok(v)
}

/// manul-bgpd at host 1: a route reflector for hosts 2, 3 and 4, with
/// `extra` global settings and `add_path` towards host 4.
fn reflector(lab: &Lab, extra: &str, add_path: &str) -> anyhow::Result<Bgpd> {
    let mut cfg = format!(
        "router_id = \"10.88.0.1\"\nasn = 64512\ncluster_id = \"10.88.0.1\"\n{extra}listen = [\"10.88.0.1:179\"]\n"
    );
    for n in 2..=4 {
        cfg += &format!(
            "[[peer]]\naddress = \"10.88.0.{n}\"\nasn = 64512\nconnect_retry = 1\nroute_reflector_client = true\n"
        );
    }
    cfg += &format!("add_path = \"{add_path}\"\n");
    Bgpd::start(&lab.host(1).ns, &cfg)
}

/// Wait until BIRD holds `n` paths of 10.99.0.0/24; their next hops.
fn wait_bird_paths(bird: &Bird, what: &str, n: usize) -> anyhow::Result<Vec<String>> {
    Ok(try_wait_until(T, what, || {
        let h = bird_next_hops(bird, "10.99.0.0/24").map_err(|e| e.to_string())?;
        if h.len() == n {
            Ok(h)
        } else {
            Err(format!("{h:?}"))
        }
    })?)
}

#[test]
fn manul_reflector_sends_a_bird_client_both_ecmp_paths() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let lab = Lab::builder().hosts(4).build()?;
    let manul = reflector(&lab, "multipath = true\n", "both")?;
    let _o2 = originator(&lab, 2, 1, "10.99.0.0/24")?;
    let _o3 = originator(&lab, 3, 1, "10.99.0.0/24")?;
    let client = Bird::builder(&lab.host(4).ns)
        .router_id("10.88.0.4".parse()?)
        .start(
            r#"
protocol bgp reflector {
    local 10.88.0.4 as 64512;
    neighbor 10.88.0.1 as 64512;
    direct;
    connect retry time 1;
    ipv4 { import all; export none; add paths rx; };
}
"#,
        )?;
    client.wait_established("reflector", T)?;
    let hops = wait_bird_paths(&client, "both paths at the BIRD client", 2)?;
    assert_eq!(hops, ["10.88.0.2", "10.88.0.3"]);
    let r = manul.wait_route("10.99.0.0/24", T)?;
    assert_eq!(r["next_hops"].as_array().map(Vec::len), Some(2), "{r}");
    let p = manul.peer("10.88.0.4")?;
    assert_eq!(p["capabilities"]["add_path"], true, "{p}");
    assert_eq!(p["advertised"], 1, "one prefix, two paths: {p}");
    // One path goes: the client is left with the other.
    drop(_o2);
    let hops = wait_bird_paths(&client, "one path left at the BIRD client", 1)?;
    assert_eq!(hops, ["10.88.0.3"]);
    Ok(())
}

/// manul-bgpd at host 1: an ADD-PATH client of the reflector at host 4,
/// installing every equal path (multipath).
fn manul_client(lab: &Lab) -> anyhow::Result<Bgpd> {
    Bgpd::start(
        &lab.host(1).ns,
        r#"
router_id = "10.88.0.1"
asn = 64512
multipath = true
listen = ["10.88.0.1:179"]
[[peer]]
address = "10.88.0.4"
asn = 64512
connect_retry = 1
add_path = "both"
"#,
    )
}

fn wait_two_hops(manul: &Bgpd) -> anyhow::Result<Vec<String>> {
    Ok(try_wait_until(T, "both next hops at manul", || {
        let r = manul
            .route("10.99.0.0/24")
            .map_err(|e| e.to_string())?
            .ok_or("absent")?;
        let mut h: Vec<String> = r["next_hops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        h.sort();
        if h.len() == 2 {
            Ok(h)
        } else {
            Err(r.to_string())
        }
    })?)
}

#[test]
fn bird_reflector_with_add_paths_gives_the_manul_client_both_paths() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let lab = Lab::builder().hosts(4).build()?;
    let manul = manul_client(&lab)?;
    let _o2 = originator(&lab, 2, 4, "10.99.0.0/24")?;
    let _o3 = originator(&lab, 3, 4, "10.99.0.0/24")?;
    let rr = Bird::builder(&lab.host(4).ns)
        .router_id("10.88.0.4".parse()?)
        .start(
            r#"
template bgp clients {
    local 10.88.0.4 as 64512;
    rr client;
    rr cluster id 10.88.0.4;
    direct;
    connect retry time 1;
    ipv4 { import all; export all; add paths on; };
}
protocol bgp manul from clients { neighbor 10.88.0.1 as 64512; }
protocol bgp o2 from clients { neighbor 10.88.0.2 as 64512; }
protocol bgp o3 from clients { neighbor 10.88.0.3 as 64512; }
"#,
        )?;
    rr.wait_established("manul", T)?;
    assert_eq!(wait_two_hops(&manul)?, ["10.88.0.2", "10.88.0.3"]);
    assert_eq!(manul.peer("10.88.0.4")?["accepted"], 2);
    Ok(())
}

#[test]
fn gobgp_reflector_with_add_paths_gives_the_manul_client_both_paths() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let lab = Lab::builder().hosts(4).build()?;
    let manul = manul_client(&lab)?;
    let _o2 = originator(&lab, 2, 4, "10.99.0.0/24")?;
    let _o3 = originator(&lab, 3, 4, "10.99.0.0/24")?;
    let client = |n: usize| {
        format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.88.0.{n}"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "10.88.0.4"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
      send-max = 8
"#
        )
    };
    let gobgp = Gobgp::start(
        &lab.host(4).ns,
        &format!(
            r#"
[global.config]
  as = 64512
  router-id = "10.88.0.4"
  local-address-list = ["10.88.0.4"]
{}{}{}"#,
            client(1),
            client(2),
            client(3)
        ),
    )?;
    gobgp.wait_established("10.88.0.1", T)?;
    assert_eq!(wait_two_hops(&manul)?, ["10.88.0.2", "10.88.0.3"]);
    Ok(())
}

#[test]
fn manul_reflector_sends_a_gobgp_client_both_ecmp_paths() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let lab = Lab::builder().hosts(4).build()?;
    let _manul = reflector(&lab, "", "send")?;
    let _o2 = originator(&lab, 2, 1, "10.99.0.0/24")?;
    let _o3 = originator(&lab, 3, 1, "10.99.0.0/24")?;
    let gobgp = Gobgp::start(
        &lab.host(4).ns,
        r#"
[global.config]
  as = 64512
  router-id = "10.88.0.4"
  local-address-list = ["10.88.0.4"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.88.0.1"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
"#,
    )?;
    gobgp.wait_established("10.88.0.1", T)?;
    try_wait_until(T, "both paths at the GoBGP client", || {
        let shown = gobgp
            .cli(&["global", "rib", "-a", "ipv4", "10.99.0.0/24"])
            .map_err(|e| e.to_string())?;
        if shown.contains("10.88.0.2") && shown.contains("10.88.0.3") {
            Ok(())
        } else {
            Err(shown)
        }
    })?;
    Ok(())
}
