//! felix's eBPF maps follow its desired state by difference — after adds,
//! deletes and a felix restart — and attachments survive a restart, go
//! with a detach, and go with cleanup. Real kernel, a namespace the test
//! creates, its own pin directory.

use std::collections::BTreeMap;
use std::net::IpAddr;

use aya::programs::{SchedClassifier, TcAttachType};
use ipnet::IpNet;
use manul_felix::desired::{Encap, Pool};
use manul_felix::ebpf::entries::{endpoint_entries, route_entries};
use manul_felix::ebpf::link::links_in;
use manul_felix::ebpf::{
    Attach, Dataplane, DataplaneConfig, Endpoint, Hosts, SyncStats, cleanup, kind,
};
use manul_felix::{DesiredRoutes, NextHop, Target};
use manul_tests::{Need, Netns, PinDir, require};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn via(gw: &str) -> Target {
    Target::Via(vec![NextHop {
        gateway: gw.parse().unwrap(),
        device: None,
        onlink: false,
    }])
}

fn pools() -> Vec<Pool> {
    vec![Pool {
        name: "p".into(),
        cidr: net("10.65.0.0/16"),
        ipip: Encap::Never,
        vxlan: Encap::Never,
        nat_outgoing: false,
    }]
}

fn hosts() -> Hosts {
    Hosts {
        local: vec!["192.168.1.1".parse().unwrap()],
        remote: vec!["192.168.1.2".parse().unwrap(), "fd00::2".parse().unwrap()],
    }
}

fn subnets() -> Vec<IpNet> {
    vec![net("192.168.1.0/24")]
}

fn endpoint(name: &str, addrs: &[&str]) -> Endpoint {
    Endpoint {
        interface: name.into(),
        addresses: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
        mac: [0x02, 0, 0, 0, 0, name.len() as u8],
    }
}

/// What the maps must hold for this desired state, resolved in `ns`.
fn expected(
    ns: &Netns,
    routes: &DesiredRoutes,
    eps: &[Endpoint],
) -> (
    BTreeMap<IpNet, manul_felix::ebpf::RouteValue>,
    BTreeMap<u32, manul_felix::ebpf::EndpointValue>,
) {
    let names: Vec<String> = ["cali1", "cali2", "cali3"].map(String::from).to_vec();
    let links: BTreeMap<String, _> = names
        .iter()
        .cloned()
        .zip(links_in(Some(&ns.path()), &names).unwrap())
        .collect();
    let link = |n: &str| links.get(n).copied().flatten();
    (
        route_entries(routes, &hosts(), &pools(), &subnets(), link),
        endpoint_entries(eps, link),
    )
}

/// Names of the programs at TCX ingress of `dev` in `ns`, from the kernel.
fn tc_programs(ns: &Netns, dev: &str) -> Vec<String> {
    ns.run(|| SchedClassifier::query_tcx(dev, TcAttachType::Ingress))
        .unwrap()
        .1
        .iter()
        .map(|p| p.name_as_str().unwrap_or("?").to_string())
        .collect()
}

/// Is manul's program (its kernel name is cut to 15 bytes) on `dev`?
fn ours_on(ns: &Netns, dev: &str) -> bool {
    tc_programs(ns, dev)
        .iter()
        .any(|n| "workload_ingress".starts_with(n.as_str()) && !n.is_empty())
}

#[test]
fn maps_follow_desired_state_by_difference_across_restart() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = Netns::new("ebpfmaps").unwrap();
    for dev in ["cali1", "cali2", "cali3"] {
        ns.ip(&[
            "link",
            "add",
            dev,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{dev}p"),
        ])
        .unwrap();
        ns.link_up(dev).unwrap();
    }
    let pins = PinDir::new("maps").unwrap();
    let config = DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        netns: Some(ns.path()),
        ..DataplaneConfig::default()
    };
    let mut dp = Dataplane::open(config.clone()).unwrap_or_else(|e| panic!("{e}"));

    // Adds.
    let mut routes = DesiredRoutes::new();
    routes.insert(net("10.65.0.0/26"), Target::Blackhole);
    routes.insert(net("10.65.0.2/32"), Target::Device("cali1".into()));
    routes.insert(net("10.65.0.3/32"), Target::Device("cali2".into()));
    routes.insert(net("fd00:65::2/128"), Target::Device("cali1".into()));
    routes.insert(net("10.65.1.0/26"), via("192.168.1.2"));
    routes.insert(net("fd00:65:1::/122"), via("fd00:1::2"));
    let mut eps = vec![
        endpoint("cali1", &["10.65.0.2", "fd00:65::2"]),
        endpoint("cali2", &["10.65.0.3"]),
    ];
    let stats = dp
        .sync_desired(&routes, &hosts(), &pools(), &subnets(), &eps)
        .unwrap();
    assert_eq!(
        stats,
        SyncStats {
            routes_put: 6 + 3,
            endpoints_put: 2,
            ..SyncStats::default()
        }
    );
    let want = expected(&ns, &routes, &eps);
    assert_eq!(dp.dump().unwrap(), want);
    assert_eq!(want.0[&net("10.65.1.0/26")].kind, kind::REMOTE_WORKLOAD);
    assert_eq!(want.0[&net("192.168.1.1/32")].kind, kind::LOCAL_HOST);
    assert_eq!(want.0[&net("fd00::2/128")].kind, kind::REMOTE_HOST);

    // Deletes and changes: only the difference is written.
    routes.remove(&net("10.65.0.3/32"));
    eps.retain(|e| e.interface != "cali2");
    routes.insert(net("10.65.1.0/26"), via("192.168.1.3"));
    routes.insert(net("10.65.0.4/32"), Target::Device("cali3".into()));
    eps.push(endpoint("cali3", &["10.65.0.4"]));
    let stats = dp
        .sync_desired(&routes, &hosts(), &pools(), &subnets(), &eps)
        .unwrap();
    assert_eq!(
        stats,
        SyncStats {
            routes_put: 2,
            routes_deleted: 1,
            endpoints_put: 1,
            endpoints_deleted: 1,
        }
    );
    let want = expected(&ns, &routes, &eps);
    assert_eq!(dp.dump().unwrap(), want);

    // A restart: everything pinned is picked up, nothing is rewritten, the
    // attachment stays.
    assert_eq!(dp.attach("cali1").unwrap(), Attach::Attached);
    assert!(ours_on(&ns, "cali1"));
    drop(dp);
    assert!(
        ours_on(&ns, "cali1"),
        "felix going away leaves the program attached"
    );
    let mut dp = Dataplane::open(config.clone()).unwrap();
    assert!(dp.reused());
    assert_eq!(dp.dump().unwrap(), want);
    assert_eq!(
        dp.sync_desired(&routes, &hosts(), &pools(), &subnets(), &eps)
            .unwrap(),
        SyncStats::default()
    );
    assert_eq!(dp.attach("cali1").unwrap(), Attach::AlreadyAttached);
    assert_eq!(dp.attached().unwrap(), vec!["cali1".to_string()]);

    // Detach, then cleanup takes what is left.
    assert!(dp.detach("cali1").unwrap());
    assert!(!ours_on(&ns, "cali1"));
    assert!(!dp.detach("cali1").unwrap());
    assert_eq!(dp.attach("cali3").unwrap(), Attach::Attached);
    assert!(ours_on(&ns, "cali3"));
    drop(dp);
    assert!(cleanup(pins.path(), Some(&ns.path())).unwrap());
    assert!(!pins.path().exists());
    assert!(!ours_on(&ns, "cali3"));
}

/// Route entries go in batches (one bpf(2) call per family and direction);
/// a batch delete that meets an entry someone else already removed skips
/// it and removes the rest.
#[test]
fn batched_writes_survive_an_entry_removed_behind_felixs_back() {
    require!(Need::Root);
    let ns = Netns::new("ebpfbatch").unwrap();
    let pins = PinDir::new("batch").unwrap();
    let config = DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        netns: Some(ns.path()),
        ..DataplaneConfig::default()
    };
    let mut dp = Dataplane::open(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let block = |i: u32| {
        let n = 0x0a41_0000 + i * 64; // 10.65.0.0/26, 10.65.0.64/26, ...
        net(&format!("{}/26", std::net::Ipv4Addr::from(n)))
    };
    let mut routes = DesiredRoutes::new();
    for i in 0..3000 {
        routes.insert(block(i), via("192.168.1.2"));
    }
    routes.insert(net("fd00:65:1::/122"), via("fd00:1::2"));
    dp.sync_desired(&routes, &hosts(), &pools(), &subnets(), &[])
        .unwrap();
    let (want, _) = expected(&ns, &routes, &[]);
    assert_eq!(dp.dump().unwrap().0, want);

    // A second handle on the same pins drops block 1500 from the kernel;
    // `dp` still believes it is there.
    let mut other = Dataplane::open(config).unwrap_or_else(|e| panic!("{e}"));
    let mut without = routes.clone();
    without.remove(&block(1500));
    other
        .sync_desired(&without, &hosts(), &pools(), &subnets(), &[])
        .unwrap();
    // Now `dp` deletes blocks 1000..2000 (1500 among them) and the v6 one.
    let mut fewer = routes.clone();
    for i in 1000..2000 {
        fewer.remove(&block(i));
    }
    fewer.remove(&net("fd00:65:1::/122"));
    let stats = dp
        .sync_desired(&fewer, &hosts(), &pools(), &subnets(), &[])
        .unwrap();
    assert_eq!(stats.routes_deleted, 1001);
    let (want, _) = expected(&ns, &fewer, &[]);
    assert_eq!(dp.dump().unwrap().0, want, "every other entry deleted");
    assert!(!want.contains_key(&block(1500)));
    assert!(cleanup(pins.path(), Some(&ns.path())).unwrap());
}
