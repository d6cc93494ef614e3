//! Load N IPv4 /24s into a bare RIB in UPDATE-sized batches and print the
//! time and the peak memory: the RIB's own share of a full-table load,
//! without sessions or the codec; then the same again (a route refresh),
//! and take the peer down (all withdrawn). `cargo run --release -p manul-bgp --example rib_load --
//! 1000000 [filter]`: with `filter`, the peer's import policy is a
//! 100-rule route filter that every prefix passes through to its default
//! (the shape of `bgp-bench --import-filter`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ipnet::IpNet;
use manul_bgp::policy::{Condition, Policy, PrefixMatch, Rule, Verdict};
use manul_bgp::rib::{AdjRibOut, PeerInfo, Rib, RibChange, RibConfig};
use manul_bgp::wire::{AsPath, AsSegment, Nlri, Origin, PathAttributes, SegmentKind};

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .unwrap_or_default()
}

/// 100 rules rejecting prefixes outside 11.0.0.0-26.255.255.255 (where
/// the loaded prefixes are): the default route, 60 /16s and 39 /24s.
fn filter() -> Policy {
    let mut rules = vec![Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(
        "0.0.0.0/0".parse().unwrap(),
    ))])];
    for i in 0..60u32 {
        let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x6400_0000 + (i << 16))), 16).unwrap();
        rules.push(Rule::reject(vec![Condition::Prefix(
            PrefixMatch::orlonger(net),
        )]));
    }
    for i in 0..39u32 {
        let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x6500_0000 + (i << 8))), 24).unwrap();
        rules.push(Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(
            net,
        ))]));
    }
    Policy::new(rules, Verdict::Accept)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let filtered = std::env::args().nth(2).as_deref() == Some("filter");
    let before = vm("VmRSS:");
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    let mut info = PeerInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
        Ipv4Addr::new(10, 0, 1, 1),
        65001,
        65000,
    );
    info.local_v4 = Some(Ipv4Addr::new(10, 0, 1, 2));
    let import = if filtered {
        filter()
    } else {
        Policy::accept_all()
    };
    let peer = rib.add_peer(info, import, Policy::accept_all());
    let mut out = AdjRibOut::new(peer);
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65001],
            }],
        }),
        ..Default::default()
    };
    // Load the table, then again (a route refresh: the same routes).
    let mut load = |rib: &mut Rib| {
        let mut changes = 0;
        for chunk in (0..n).collect::<Vec<_>>().chunks(16_000) {
            let nlri = chunk
                .iter()
                .map(|i| {
                    let a = Ipv4Addr::from(0x0b00_0000 + (i << 8));
                    Nlri::new(IpNet::new(IpAddr::V4(a), 24).unwrap())
                })
                .collect();
            rib.stage(vec![RibChange::Announce {
                peer,
                attrs: attrs.clone(),
                next_hop: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
                nlri,
            }])
            .unwrap();
            // As the speaker does a pass: decide, advertise, settle.
            let decided = rib.take_decided();
            changes += decided.len();
            let _ = out.apply(rib, &decided);
            rib.settle(decided);
        }
        changes
    };
    let start = Instant::now();
    let changes_seen = load(&mut rib);
    let took = start.elapsed();
    let start = Instant::now();
    let refreshed = load(&mut rib);
    let refresh = start.elapsed();
    let after = vm("VmRSS:");
    // The session goes down: every path withdrawn, as the speaker does it
    // (marked stale at once, removed a pass's worth at a time).
    let start = Instant::now();
    let keys = rib.retire(peer, None).unwrap();
    let mut gone = 0;
    for chunk in keys.chunks(16_384) {
        rib.remove_stale(peer, chunk);
        let decided = rib.take_decided();
        gone += decided.len();
        let _ = out.apply(&mut rib, &decided);
        rib.settle(decided);
    }
    let down = start.elapsed();
    println!(
        "{n} prefixes: {:.3} s, {:.0} ns/prefix, {changes_seen} changes; RSS before {before} kB, after {after} kB, peak {} kB; refresh: {:.3} s, {refreshed} changes; peer down: {:.3} s, {gone} changes",
        took.as_secs_f64(),
        took.as_nanos() as f64 / f64::from(n),
        vm("VmHWM:"),
        refresh.as_secs_f64(),
        down.as_secs_f64(),
    );
}
