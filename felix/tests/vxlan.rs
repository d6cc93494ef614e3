//! VXLAN as Calico does it, driven by felix's real loop ([`Felix`], fed
//! from confd's snapshot of a real etcd), between namespace hosts on two
//! subnets joined by a router namespace, each host with a pod:
//!
//! - `Always` pools, IPv4 (`vxlan.calico`, VNI 4096) and IPv6
//!   (`vxlan-v6.calico`, VNI 6096): the pods reach each other through the
//!   tunnels; ARP/NDP and FDB entries deleted by hand are back within a
//!   second; removing a node removes its routes and entries; the devices'
//!   MTUs and the pod MTU file follow the uplink's MTU.
//! - `CrossSubnet` pools with a third host on the first host's subnet:
//!   the off-subnet host is reached through the tunnel, the same-subnet
//!   one directly, and every pod reaches every other.
//!
//! The remote routes come from the IPAM blocks the test writes (each
//! host's block affine to it, holding its tunnel address and its pod's),
//! as Calico's felix computes VXLAN routes: no BGP prefix is handed in.

#[path = "../../confd/tests/common/mod.rs"]
mod common;
mod pods;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{WAIT, connect};
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::Datastore;
use manul_felix::{Felix, FelixConfig, ReconcilerConfig};
use manul_tests::{Etcd, Need, Netns, require, try_wait_until};
use pods::{Pod, pod};
use serde_json::json;
use tokio::task::JoinHandle;

const R: &str = "/calico/resources/v3/projectcalico.org";

/// A host: `n` is its number (also its block's), `subnet` 1 or 2.
struct Host {
    name: String,
    n: u8,
    subnet: u8,
    ns: Netns,
    pod: Pod,
}

impl Host {
    fn ip(&self) -> String {
        format!("192.168.{}.{}", self.subnet, self.n)
    }
    fn ip6(&self) -> String {
        format!("fd00:{}::{}", self.subnet, self.n)
    }
    fn block(&self) -> String {
        format!("10.65.{}.0/26", self.n)
    }
    fn block6(&self) -> String {
        format!("fd00:65:{}::/122", self.n)
    }
    fn tunnel(&self) -> String {
        format!("10.65.{}.1", self.n)
    }
    fn tunnel6(&self) -> String {
        format!("fd00:65:{}::1", self.n)
    }
    fn mac(&self) -> String {
        format!("66:00:00:00:04:{:02x}", self.n)
    }
    fn mac6(&self) -> String {
        format!("66:00:00:00:06:{:02x}", self.n)
    }
}

/// A router with one bridge per subnet (192.168.S.254/24, fd00:S::fe/64).
fn router() -> Netns {
    let r = Netns::new("vx-router").unwrap();
    r.sysctl("net.ipv4.ip_forward", "1").unwrap();
    r.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
    r.sysctl("net.ipv6.conf.default.accept_dad", "0").unwrap();
    for s in [1, 2] {
        let br = format!("br{s}");
        r.add_bridge(&br).unwrap();
        r.add_addr(&br, &format!("192.168.{s}.254/24")).unwrap();
        r.add_addr(&br, &format!("fd00:{s}::fe/64")).unwrap();
    }
    r
}

fn host(router: &Netns, n: u8, subnet: u8) -> Host {
    let name = format!("vx-{n}");
    let ns = Netns::new(&name).unwrap();
    ns.sysctl("net.ipv6.conf.default.accept_dad", "0").unwrap();
    ns.sysctl("net.ipv6.conf.all.accept_dad", "0").unwrap();
    let rdev = format!("h{n}");
    ns.veth("eth0", router, &rdev).unwrap();
    router
        .attach_to_bridge(&rdev, &format!("br{subnet}"))
        .unwrap();
    ns.add_addr("eth0", &format!("192.168.{subnet}.{n}/24"))
        .unwrap();
    ns.add_addr("eth0", &format!("fd00:{subnet}::{n}/64"))
        .unwrap();
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        &format!("192.168.{subnet}.254"),
    ])
    .unwrap();
    ns.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        &format!("fd00:{subnet}::fe"),
    ])
    .unwrap();
    ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
    ns.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
    let pod = pod(
        &ns,
        &format!("{name}-pod"),
        "cali0123456789a",
        &format!("10.65.{n}.2"),
        &format!("fd00:65:{n}::2"),
    );
    Host {
        name,
        n,
        subnet,
        ns,
        pod,
    }
}

async fn put(ds: &Datastore, key: &str, value: String) {
    match ds.get(key).await.unwrap() {
        Some(kv) => ds.update(key, value, kv.mod_revision).await.unwrap(),
        None => ds.create(key, value).await.unwrap(),
    };
}

async fn pools(ds: &Datastore, mode: &str) {
    for (name, cidr) in [("vxlan", "10.65.0.0/16"), ("vxlan6", "fd00:65::/32")] {
        put(
            ds,
            &format!("{R}/ippools/{name}"),
            json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":name},
                   "spec":{"cidr":cidr,"vxlanMode":mode}})
            .to_string(),
        )
        .await;
    }
}

async fn write_host(ds: &Datastore, h: &Host) {
    put(
        ds,
        &format!("{R}/nodes/{}", h.name),
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":h.name},
               "spec":{"bgp":{"ipv4Address":format!("{}/24", h.ip()),
                              "ipv6Address":format!("{}/64", h.ip6())},
                       "ipv4VXLANTunnelAddr":h.tunnel(),"vxlanTunnelMACAddr":h.mac(),
                       "ipv6VXLANTunnelAddr":h.tunnel6(),"vxlanTunnelMACAddrV6":h.mac6()}})
        .to_string(),
    )
    .await;
    for (family, block) in [("ipv4", h.block()), ("ipv6", h.block6())] {
        put(
            ds,
            &format!(
                "/calico/ipam/v2/host/{}/{family}/block/{}",
                h.name,
                block.replace('/', "-")
            ),
            r#"{"state":"confirmed","deleted":false}"#.into(),
        )
        .await;
        // The block itself: ordinal 1 the tunnel address, 2 the pod's.
        let allocations: Vec<serde_json::Value> = (0..64)
            .map(|i| match i {
                1 => json!(0),
                2 => json!(1),
                _ => serde_json::Value::Null,
            })
            .collect();
        let unallocated: Vec<u32> = (0..64).filter(|i| *i != 1 && *i != 2).collect();
        put(
            ds,
            &format!(
                "/calico/ipam/v2/assignment/{family}/block/{}",
                block.replace('/', "-")
            ),
            json!({"cidr":block,"affinity":format!("host:{}", h.name),
                   "allocations":allocations,"unallocated":unallocated,
                   "attributes":[
                       {"handle_id":format!("vxlan-tunnel-addr-{}", h.name),
                        "secondary":{"node":h.name,"type":"vxlanTunnelAddress"}},
                       {"handle_id":"k8s-pod-network.pod","secondary":{"node":h.name}}],
                   "deleted":false,"sequenceNumber":0,"sequenceNumberForAllocation":{}})
            .to_string(),
        )
        .await;
    }
    put(
        ds,
        &format!("{R}/workloadendpoints/default/{}-k8s-pod-eth0", h.name),
        json!({"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3",
               "metadata":{"name":format!("{}-k8s-pod-eth0", h.name),"namespace":"default"},
               "spec":{"node":h.name,
                       "ipNetworks":[format!("10.65.{}.2/32", h.n), format!("fd00:65:{}::2/128", h.n)],
                       "interfaceName":"cali0123456789a"}})
        .to_string(),
    )
    .await;
}

/// confd → felix for one host, as manul-node wires them.
struct Agent {
    _confd: Confd,
    _felix: Arc<Felix>,
    pump: JoinHandle<()>,
    /// Holds the pod MTU file.
    scratch: manul_tests::scratch::ScratchDir,
}

impl Agent {
    fn mtu_file(&self) -> std::path::PathBuf {
        self.scratch.path().join("mtu")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

async fn agent(ds: Datastore, h: &Host) -> Agent {
    let mut cfg = ConfdConfig::new(h.name.clone());
    cfg.backoff_max = Duration::from_millis(500);
    let confd = Confd::start(ds, cfg);
    let scratch = manul_tests::scratch::run()
        .tempdir(&format!("mtu-{}", h.name))
        .unwrap();
    let felix = Arc::new(
        Felix::start(FelixConfig {
            routes: ReconcilerConfig {
                netns: Some(h.ns.path()),
                ..ReconcilerConfig::default()
            },
            mtu: manul_felix::mtu::MtuConfig {
                file: Some(scratch.path().join("mtu")),
                ..Default::default()
            },
            ..FelixConfig::default()
        })
        .await
        .unwrap(),
    );
    confd.status_watch().wait_for(|s| s.in_sync).await.unwrap();
    let mut sub = confd.subscribe();
    let me = h.name.clone();
    let f = Arc::clone(&felix);
    let pump = tokio::spawn(async move {
        loop {
            // No BGP: VXLAN routes are felix's own.
            f.update(sub.snapshot(), &me, BTreeMap::new(), BTreeMap::new(), false);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    Agent {
        _confd: confd,
        _felix: felix,
        pump,
        scratch,
    }
}

fn wait(what: &str, mut probe: impl FnMut() -> Result<(), String>) {
    try_wait_until(WAIT, what, &mut probe).unwrap();
}

fn route(h: &Host, dst: &str) -> String {
    let family = if dst.contains(':') { "-6" } else { "-4" };
    h.ns.ip(&[family, "route", "show", dst]).unwrap_or_default()
}

fn wait_route(h: &Host, dst: &str, want: &str) {
    wait(&format!("{}: route {dst} {want}", h.name), || {
        let r = route(h, dst);
        r.contains(want).then_some(()).ok_or_else(|| {
            format!(
                "{r:?}; all: {}",
                h.ns.ip(&["-6", "route"]).unwrap_or_default()
            )
        })
    });
}

fn pings(from: &Host, to: &Host) {
    for ip in to.pod.ips() {
        wait(&format!("pod {} reaches {ip}", from.n), || {
            from.pod.ns.ping(ip, 1).map_err(|e| format!("{e:#}"))
        });
    }
}

fn show(h: &Host, args: &[&str]) -> String {
    h.ns.ip(args).unwrap_or_default()
}

fn fdb(h: &Host, dev: &str) -> String {
    h.ns.exec("bridge", &["fdb", "show", "dev", dev])
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_talk_over_vxlan_v4_and_v6_entries_are_repaired_and_a_removed_node_leaves_nothing() {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("bridge"),
        Need::Bin("ping")
    );
    let router = router();
    let a = host(&router, 1, 1);
    let b = host(&router, 2, 2);
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    pools(&ds, "Always").await;
    write_host(&ds, &a).await;
    write_host(&ds, &b).await;
    let _agent_a = agent(connect(etcd.endpoint()).await, &a).await;
    let _agent_b = agent(connect(etcd.endpoint()).await, &b).await;

    wait_route(
        &a,
        &b.block(),
        "via 10.65.2.1 dev vxlan.calico proto 80 onlink",
    );
    wait_route(
        &a,
        &b.block6(),
        "via fd00:65:2::1 dev vxlan-v6.calico proto 80",
    );
    wait_route(&b, &a.block(), "dev vxlan.calico");
    wait_route(&b, &a.block6(), "dev vxlan-v6.calico");
    let link = show(&a, &["-d", "link", "show", "vxlan.calico"]);
    assert!(
        link.contains("vxlan id 4096") && link.contains("dstport 4789"),
        "{link}"
    );
    let link6 = show(&a, &["-d", "link", "show", "vxlan-v6.calico"]);
    assert!(
        link6.contains("vxlan id 6096") && link6.contains("dstport 4789"),
        "{link6}"
    );
    // MTUs: the uplink's (1500) less 50 (IPv4), 70 (IPv6); the pods get
    // the smaller.
    wait("A's VXLAN MTUs and pod MTU file", || {
        let (l, l6) = (
            show(&a, &["link", "show", "vxlan.calico"]),
            show(&a, &["link", "show", "vxlan-v6.calico"]),
        );
        let file = std::fs::read_to_string(_agent_a.mtu_file()).unwrap_or_default();
        (l.contains(" mtu 1450 ") && l6.contains(" mtu 1430 ") && file == "1430")
            .then_some(())
            .ok_or(format!("{l}{l6}file {file:?}"))
    });
    assert!(link6.contains("local fd00:1::1"), "{link6}");
    let entries = |h: &Host| {
        (
            show(h, &["neigh", "show", "dev", "vxlan.calico"]),
            show(h, &["-6", "neigh", "show", "dev", "vxlan-v6.calico"]),
            fdb(h, "vxlan.calico"),
            fdb(h, "vxlan-v6.calico"),
        )
    };
    let want_a = |e: &(String, String, String, String)| {
        e.0.contains("10.65.2.1 lladdr 66:00:00:00:04:02 PERMANENT")
            && e.1
                .contains("fd00:65:2::1 lladdr 66:00:00:00:06:02 PERMANENT")
            && e.2.contains("66:00:00:00:04:02 dst 192.168.2.2")
            && e.3.contains("66:00:00:00:06:02 dst fd00:2::2")
    };
    wait("A's ARP, NDP and FDB entries for B", || {
        let e = entries(&a);
        want_a(&e).then_some(()).ok_or(format!("{e:?}"))
    });
    pings(&a, &b);
    pings(&b, &a);

    // Deleted by hand: back within a second, from the notifications.
    a.ns.ip(&["neigh", "del", "10.65.2.1", "dev", "vxlan.calico"])
        .unwrap();
    a.ns.ip(&[
        "-6",
        "neigh",
        "del",
        "fd00:65:2::1",
        "dev",
        "vxlan-v6.calico",
    ])
    .unwrap();
    a.ns.exec(
        "bridge",
        &[
            "fdb",
            "del",
            "66:00:00:00:04:02",
            "dev",
            "vxlan.calico",
            "dst",
            "192.168.2.2",
        ],
    )
    .unwrap();
    a.ns.exec(
        "bridge",
        &[
            "fdb",
            "del",
            "66:00:00:00:06:02",
            "dev",
            "vxlan-v6.calico",
            "dst",
            "fd00:2::2",
        ],
    )
    .unwrap();
    try_wait_until(Duration::from_secs(1), "entries repaired", || {
        let e = entries(&a);
        want_a(&e).then_some(()).ok_or(format!("{e:?}"))
    })
    .unwrap();
    pings(&a, &b);

    // Node B leaves: A drops its routes, ARP/NDP and FDB entries.
    let kv = ds
        .get(&format!("{R}/nodes/{}", b.name))
        .await
        .unwrap()
        .unwrap();
    ds.delete(&kv.key, kv.mod_revision).await.unwrap();
    wait("B's overlay entries gone from A", || {
        let (r, r6) = (route(&a, &b.block()), route(&a, &b.block6()));
        let e = entries(&a);
        let gone = r.trim().is_empty()
            && r6.trim().is_empty()
            && !e.0.contains("10.65.2.1")
            && !e.1.contains("fd00:65:2::1")
            && !e.2.contains("192.168.2.2")
            && !e.3.contains("fd00:2::2");
        gone.then_some(())
            .ok_or(format!("routes {r:?} {r6:?} entries {e:?}"))
    });

    // The uplink's MTU changes: the devices and the pod MTU follow.
    a.ns.ip(&["link", "set", "eth0", "mtu", "1400"]).unwrap();
    wait("A's MTUs follow its uplink's", || {
        let (l, l6) = (
            show(&a, &["link", "show", "vxlan.calico"]),
            show(&a, &["link", "show", "vxlan-v6.calico"]),
        );
        let file = std::fs::read_to_string(_agent_a.mtu_file()).unwrap_or_default();
        (l.contains(" mtu 1350 ") && l6.contains(" mtu 1330 ") && file == "1330")
            .then_some(())
            .ok_or(format!("{l}{l6}file {file:?}"))
    });

    // `manul-node --cleanup` on A: both devices go with the routes.
    drop(_agent_a);
    let pins = std::env::temp_dir().join(format!("manul-no-pins-{}", std::process::id()));
    let done = manul_felix::cleanup(
        manul_felix::ReconcilerConfig {
            netns: Some(a.ns.path()),
            ..Default::default()
        },
        &pins,
    )
    .await
    .unwrap();
    assert_eq!(done.vxlan_removed, 2, "{done:?}");
    let links = show(&a, &["link", "show"]);
    assert!(!links.contains("vxlan"), "{links}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_subnet_tunnels_only_off_subnet_and_every_pod_reaches_every_other() {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let router = router();
    let a = host(&router, 1, 1);
    let b = host(&router, 2, 2);
    let c = host(&router, 3, 1);
    let all = [&a, &b, &c];
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    pools(&ds, "CrossSubnet").await;
    for h in all {
        write_host(&ds, h).await;
    }
    let mut agents = Vec::new();
    for h in all {
        agents.push(agent(connect(etcd.endpoint()).await, h).await);
    }
    // A: B is on the other subnet (tunnel), C on A's own (direct).
    wait_route(
        &a,
        &b.block(),
        "via 10.65.2.1 dev vxlan.calico proto 80 onlink",
    );
    wait_route(&a, &b.block6(), "via fd00:65:2::1 dev vxlan-v6.calico");
    wait_route(&a, &c.block(), "via 192.168.1.3 dev eth0 proto 80");
    wait_route(&a, &c.block6(), "via fd00:1::3 dev eth0 proto 80");
    wait_route(&c, &a.block(), "via 192.168.1.1 dev eth0 proto 80");
    wait_route(&b, &c.block(), "via 10.65.3.1 dev vxlan.calico");
    for (from, to) in [(&a, &b), (&a, &c), (&b, &c), (&c, &b), (&b, &a), (&c, &a)] {
        pings(from, to);
    }
    drop(agents);
}
