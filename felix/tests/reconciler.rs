//! The route reconciler in network namespaces the tests create: owned
//! routes written, foreign ones untouched, repairs, minimal restarts, ECMP.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use manul_felix::{DesiredRoutes, NextHop, Reconciler, ReconcilerConfig, Target};
use manul_tests::{Need, Netns, require, try_wait_until};

/// Guard on waits: far above what any step takes.
const WAIT: Duration = Duration::from_secs(30);
const CALI: &str = "cali0123456789a";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn via(gws: &[&str]) -> Target {
    Target::Via(
        gws.iter()
            .map(|g| NextHop {
                gateway: g.parse::<IpAddr>().unwrap(),
                device: None,
                onlink: false,
            })
            .collect(),
    )
}

/// An interface `name` that is up (a veth whose peer `<name>p` stays in
/// the namespace: this kernel has no dummy interfaces).
fn link(ns: &Netns, name: &str) {
    let peer = format!("{}p", &name[..name.len().min(14)]);
    ns.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])
        .unwrap();
    ns.link_up(name).unwrap();
    ns.link_up(&peer).unwrap();
}

/// A host: `eth0` on 192.168.1.1/24 and fd00:1::1/64, a workload
/// interface, and foreign routes of three other owners.
fn host() -> Netns {
    let ns = Netns::new("felix").unwrap();
    link(&ns, "eth0");
    ns.add_addr("eth0", "192.168.1.1/24").unwrap();
    ns.add_addr("eth0", "fd00:1::1/64").unwrap();
    link(&ns, CALI);
    for (dst, proto) in [
        ("10.200.0.0/24", "bird"),
        ("10.201.0.0/24", "static"),
        ("10.202.0.0/24", "boot"),
    ] {
        ns.ip(&["route", "add", dst, "via", "192.168.1.5", "proto", proto])
            .unwrap();
    }
    ns
}

fn desired() -> DesiredRoutes {
    let mut d = DesiredRoutes::new();
    d.insert(net("10.65.0.0/26"), Target::Blackhole);
    d.insert(net("10.65.0.2/32"), Target::Device(CALI.into()));
    d.insert(net("fd00:65::2/128"), Target::Device(CALI.into()));
    d.insert(net("10.65.1.0/26"), via(&["192.168.1.2", "192.168.1.3"]));
    d.insert(net("10.65.2.0/26"), via(&["192.168.1.4"]));
    d.insert(net("fd00:65:1::/122"), via(&["fd00:1::2"]));
    d
}

/// `ip route` lines (both families) matching `filter`, sorted, whitespace
/// normalised.
fn routes(ns: &Netns, filter: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for fam in ["-4", "-6"] {
        let mut args = vec![fam, "-o", "route", "show"];
        args.extend_from_slice(filter);
        let text = ns.ip(&args).unwrap();
        out.extend(
            text.lines()
                .map(|l| {
                    l.split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .replace("\\ ", "")
                })
                .filter(|l| !l.is_empty()),
        );
    }
    out.sort();
    out
}

fn owned(ns: &Netns) -> Vec<String> {
    routes(ns, &["proto", "80"])
}

fn foreign(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = routes(ns, &[])
        .into_iter()
        .filter(|l| !l.contains("proto 80"))
        .collect();
    v.sort();
    v
}

async fn start(ns: &Netns) -> Reconciler {
    Reconciler::start(ReconcilerConfig {
        netns: Some(ns.path()),
        retry_interval: Duration::from_millis(200),
        ..ReconcilerConfig::default()
    })
    .await
    .unwrap()
}

async fn converge(r: &Reconciler, routes: DesiredRoutes) {
    let generation = r.set_desired(routes);
    let p = tokio::time::timeout(WAIT, r.wait_generation(generation))
        .await
        .expect("processed in time");
    assert!(p.failed.is_empty(), "failed writes: {:?}", p.failed);
}

fn wait_owned(ns: &Netns, what: &str, want: &[String]) {
    try_wait_until(WAIT, what, || {
        let got = owned(ns);
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:#?}"))
        }
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_owned_routes_with_ecmp_and_leaves_foreign_ones() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let before = foreign(&ns);
    let r = start(&ns).await;
    converge(&r, desired()).await;
    let got = owned(&ns);
    let cali = format!("dev {CALI}");
    let expect = [
        "10.65.0.0/26".to_string(),
        format!("10.65.0.2 {cali}"),
        "10.65.1.0/26".into(),
        "10.65.2.0/26 via 192.168.1.4".into(),
        format!("fd00:65::2 {cali}"),
        "fd00:65:1::/122 via fd00:1::2".into(),
    ];
    for e in expect {
        assert!(
            got.iter().any(|l| l.contains(&e)),
            "no route like {e:?} in {got:#?}"
        );
    }
    assert!(
        got.iter().any(|l| l.starts_with("blackhole 10.65.0.0/26")),
        "{got:#?}"
    );
    let ecmp = got.iter().find(|l| l.starts_with("10.65.1.0/26")).unwrap();
    assert!(
        ecmp.contains("nexthop via 192.168.1.2") && ecmp.contains("nexthop via 192.168.1.3"),
        "ECMP: {ecmp}"
    );
    assert_eq!(r.stats().writes(), 6);
    assert_eq!(foreign(&ns), before, "foreign routes untouched");
    // The workload interface got Calico's sysctls.
    for (path, value) in manul_felix::interface::workload_sysctls(CALI) {
        let got = ns.run(|| std::fs::read_to_string(&path)).unwrap();
        assert_eq!(got.trim(), value, "{}", path.display());
    }

    // Wanting a destination BIRD holds: blocked, BIRD's route stays.
    let mut d = desired();
    d.insert(net("10.200.0.0/24"), Target::Blackhole);
    d.remove(&net("10.65.2.0/26"));
    d.insert(net("10.65.1.0/26"), via(&["192.168.1.3"]));
    let generation = r.set_desired(d);
    let p = r.wait_generation(generation).await;
    assert_eq!(p.blocked.len(), 1, "{:?}", p.blocked);
    assert!(p.blocked[0].1.contains("protocol 12"));
    let got = owned(&ns);
    assert!(
        !got.iter().any(|l| l.starts_with("10.65.2.0/26")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|l| l == "10.65.1.0/26 via 192.168.1.3 dev eth0"),
        "{got:#?}"
    );
    assert_eq!(r.stats().writes(), 8, "one delete, one replace");
    assert_eq!(foreign(&ns), before, "foreign routes untouched");

    // Nothing wanted: every owned route goes, nothing else does.
    converge(&r, DesiredRoutes::new()).await;
    assert_eq!(owned(&ns), Vec::<String>::new());
    assert_eq!(foreign(&ns), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_an_owned_route_deleted_or_changed_by_hand() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let r = start(&ns).await;
    converge(&r, desired()).await;
    let want = owned(&ns);
    ns.ip(&["route", "del", "10.65.0.0/26", "proto", "80"])
        .unwrap();
    ns.ip(&["route", "del", "10.65.0.2/32", "dev", CALI])
        .unwrap();
    wait_owned(&ns, "deleted routes back", &want);
    ns.ip(&[
        "route",
        "replace",
        "10.65.1.0/26",
        "via",
        "192.168.1.9",
        "proto",
        "80",
    ])
    .unwrap();
    wait_owned(&ns, "changed ECMP route back", &want);
    // A route someone adds with felix's protocol that felix does not want goes.
    ns.ip(&[
        "route",
        "add",
        "10.77.0.0/24",
        "via",
        "192.168.1.9",
        "proto",
        "80",
    ])
    .unwrap();
    wait_owned(&ns, "stray owned route removed", &want);
    assert!(r.stats().events.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_a_populated_table_writes_only_the_difference() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let mut d = desired();
    for i in 0..1000u32 {
        let dst = IpNet::new(
            IpAddr::from([10, 66, (i / 4) as u8, ((i % 4) * 64) as u8]),
            26,
        )
        .unwrap();
        d.insert(dst, via(&["192.168.1.2", "192.168.1.3"]));
    }
    let first = start(&ns).await;
    converge(&first, d.clone()).await;
    assert_eq!(first.stats().writes(), 1006);
    drop(first);
    let full = owned(&ns);

    let second = start(&ns).await;
    converge(&second, d.clone()).await;
    assert_eq!(
        second.stats().writes(),
        0,
        "a restart over a right table writes nothing"
    );
    assert_eq!(owned(&ns), full);
    drop(second);

    // While down: one owned route lost, one stale one left.
    ns.ip(&["route", "del", "10.66.0.0/26", "proto", "80"])
        .unwrap();
    ns.ip(&[
        "route",
        "add",
        "10.78.0.0/24",
        "via",
        "192.168.1.9",
        "proto",
        "80",
    ])
    .unwrap();
    let third = start(&ns).await;
    converge(&third, d).await;
    assert_eq!(
        third
            .stats()
            .upserts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        third
            .stats()
            .deletes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(owned(&ns), full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_waits_for_its_interface() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let r = start(&ns).await;
    let mut d = DesiredRoutes::new();
    d.insert(net("10.65.0.9/32"), Target::Device("cali-late".into()));
    d.insert(net("10.65.0.0/26"), Target::Blackhole);
    let generation = r.set_desired(d);
    let p = r.wait_generation(generation).await;
    assert_eq!(p.blocked.len(), 1, "{p:?}");
    assert_eq!(owned(&ns).len(), 1);
    link(&ns, "cali-late");
    try_wait_until(WAIT, "the workload route once its interface exists", || {
        let got = owned(&ns);
        if got.iter().any(|l| l.starts_with("10.65.0.9 dev cali-late")) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_route_is_reported_and_retried_while_the_rest_goes_in() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let r = start(&ns).await;
    let mut d = desired();
    // No route to 192.168.9.9 yet: the kernel refuses this one.
    d.insert(net("10.65.9.0/26"), via(&["192.168.9.9"]));
    let generation = r.set_desired(d);
    let p = r.wait_generation(generation).await;
    assert_eq!(
        p.failed.keys().copied().collect::<Vec<_>>(),
        vec![net("10.65.9.0/26")],
        "{p:?}"
    );
    assert_eq!(owned(&ns).len(), 6, "every other route is in");
    assert!(
        r.stats()
            .failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // Once the gateway is reachable, a retry puts it in.
    ns.add_addr("eth0", "192.168.9.1/24").unwrap();
    try_wait_until(WAIT, "the refused route after a retry", || {
        let got = owned(&ns);
        if got
            .iter()
            .any(|l| l.starts_with("10.65.9.0/26 via 192.168.9.9"))
        {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .unwrap();
    try_wait_until(WAIT, "no failure left", || {
        let p = r.progress();
        if p.failed.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", p.failed))
        }
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_writes_own_notifications_are_not_decoded_and_repairs_still_follow() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let r = start(&ns).await;
    let mut bulk = desired();
    for i in 0..2000u32 {
        let dst = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 90, 0, 0)) + i);
        bulk.insert(
            IpNet::from(std::net::IpAddr::V4(dst)),
            via(&["192.168.1.5"]),
        );
    }
    converge(&r, bulk).await;
    let want = owned(&ns);
    assert_eq!(want.len(), 2000 + desired().len());
    // Let any notification that was going to be handed on arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = r.stats().events.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        events < 100,
        "{events} notifications decoded for a 2000-route bulk write"
    );
    // Someone else's changes are still seen and repaired at once.
    ns.ip(&["route", "del", "10.90.0.7/32", "proto", "80"])
        .unwrap();
    ns.ip(&[
        "route",
        "replace",
        "10.90.0.8/32",
        "via",
        "192.168.1.9",
        "proto",
        "80",
    ])
    .unwrap();
    wait_owned(&ns, "hand changes after a bulk write repaired", &want);
    assert!(r.stats().events.load(std::sync::atomic::Ordering::Relaxed) > events);
}

/// The CNI plugin writes a pod's host route, marked as felix's, before the
/// pod's endpoint reaches felix: felix keeps such a route on a new
/// interface for the grace period instead of deleting it, and deletes it
/// once the interface is older and still nobody wants the route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_route_on_a_new_interface_is_kept_until_its_endpoint_arrives() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    let r = Reconciler::start(ReconcilerConfig {
        netns: Some(ns.path()),
        retry_interval: Duration::from_millis(200),
        new_link_grace: Duration::from_secs(3),
        ..ReconcilerConfig::default()
    })
    .await
    .unwrap();
    converge(&r, desired()).await;
    let has = |dst: &str| owned(&ns).iter().any(|l| l.starts_with(dst));
    // What the CNI plugin does for two pods; the first one's endpoint
    // arrives, the second one's never does.
    for (dev, dst) in [
        ("cali-new", "10.65.0.20/32"),
        ("cali-gone", "10.65.0.21/32"),
    ] {
        link(&ns, dev);
        ns.ip(&[
            "route", "add", dst, "dev", dev, "proto", "80", "scope", "link",
        ])
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(has("10.65.0.20 dev cali-new"), "{:#?}", owned(&ns));
    assert!(has("10.65.0.21 dev cali-gone"), "{:#?}", owned(&ns));
    let mut d = desired();
    d.insert(net("10.65.0.20/32"), Target::Device("cali-new".into()));
    converge(&r, d).await;
    try_wait_until(WAIT, "the unwanted route gone after the grace", || {
        if has("10.65.0.21 ") {
            Err(format!("{:#?}", owned(&ns)))
        } else {
            Ok(())
        }
    })
    .unwrap();
    assert!(has("10.65.0.20 dev cali-new"), "{:#?}", owned(&ns));
    assert_eq!(
        r.stats().deletes.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// `ip route show proto 80` per family, as counts.
fn owned_counts(ns: &Netns) -> (usize, usize) {
    let count = |fam: &str| {
        ns.ip(&[fam, "-o", "route", "show", "proto", "80"])
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    (count("-4"), count("-6"))
}

/// What the reconciler's progress says the kernel holds, as counts.
fn reported(r: &Reconciler) -> (usize, usize) {
    let k = r.progress().kernel;
    (k.ipv4, k.ipv6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_what_the_kernel_holds_before_and_after_the_first_desired_set() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = host();
    // A previous run's routes (and one of BIRD's, not counted).
    for args in [
        &["route", "add", "blackhole", "10.65.0.0/26", "proto", "80"][..],
        &[
            "route",
            "add",
            "10.65.1.0/26",
            "via",
            "192.168.1.2",
            "proto",
            "80",
        ],
        &[
            "route",
            "add",
            "fd00:65::/122",
            "via",
            "fd00:1::2",
            "proto",
            "80",
        ],
    ] {
        ns.ip(args).unwrap();
    }
    let r = start(&ns).await;
    let mut progress = r.watch_progress();
    // Known before any desired set, and nothing written.
    let p = tokio::time::timeout(
        WAIT,
        progress.wait_for(|p| p.kernel.ipv4 + p.kernel.ipv6 == 3),
    )
    .await
    .expect("the dump in time")
    .unwrap()
    .clone();
    assert_eq!((p.kernel.ipv4, p.kernel.ipv6), (2, 1));
    assert_eq!(p.desired, None);
    assert_eq!(owned_counts(&ns), (2, 1));
    // A route someone else (the CNI plugin) writes meanwhile is counted
    // from its notification; still nothing is written.
    ns.ip(&["route", "add", "10.65.0.9/32", "dev", CALI, "proto", "80"])
        .unwrap();
    tokio::time::timeout(WAIT, progress.wait_for(|p| p.kernel.ipv4 == 3))
        .await
        .expect("the notification in time")
        .unwrap();
    assert_eq!(r.stats().writes(), 0);

    // The first desired set: once processed, the count is the kernel's.
    converge(&r, desired()).await;
    assert_eq!(reported(&r), owned_counts(&ns));
    assert_eq!(r.progress().desired, Some(desired().len()));
    // A smaller set: the count follows the deletes as they are written.
    let mut d = desired();
    d.remove(&net("10.65.2.0/26"));
    d.remove(&net("fd00:65:1::/122"));
    converge(&r, d).await;
    assert_eq!(reported(&r), owned_counts(&ns));
}

/// Calico's `routeRefreshInterval`, changed while running: the full resync
/// follows the new period; zero stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_period_changes_live_and_zero_stops_it() {
    require!(Need::Root, Need::Bin("ip"));
    use std::sync::atomic::Ordering::Relaxed;
    let ns = host();
    let r = start(&ns).await;
    converge(&r, desired()).await;
    let resyncs = || r.stats().resyncs.load(Relaxed);
    // The default 90 s: none more in a second.
    let first = resyncs();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(resyncs(), first, "a resync before 90 s");
    r.set_resync_interval(Duration::from_millis(200));
    try_wait_until(WAIT, "three resyncs at the new period", || {
        let n = resyncs();
        (n >= first + 3).then_some(()).ok_or(format!("{n}"))
    })
    .unwrap();
    r.set_resync_interval(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = resyncs();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(resyncs(), stopped, "a resync after the period was set to 0");
}
