//! VXLAN between two namespace hosts on different subnets (a router
//! namespace between them), each with a pod namespace: the pods reach each
//! other through `vxlan.calico`; removing a node removes its route, ARP and
//! FDB entries. Calico objects come from a real etcd through confd. The
//! remote blocks, which the BGP speaker learns in the node agent, are
//! handed in by the test.

#[path = "../../confd/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{WAIT, connect};
use ipnet::IpNet;
use manul_confd::{Confd, ConfdConfig};
use manul_datastore::etcd::Datastore;
use manul_felix::vxlan::{VxlanManager, overlay_from_snapshot};
use manul_felix::{Reconciler, ReconcilerConfig, calico, desired_routes};
use manul_tests::{Etcd, Need, Netns, require, try_wait_until};
use serde_json::json;
use tokio::task::JoinHandle;

const R: &str = "/calico/resources/v3/projectcalico.org";

struct Host {
    name: &'static str,
    ns: Netns,
    pod: Netns,
    ip: &'static str,
    block: &'static str,
    pod_ip: &'static str,
    tunnel: &'static str,
    mac: &'static str,
}

fn host(router: &Netns, i: u8, name: &'static str) -> Host {
    let (ip, block, pod_ip, tunnel, mac) = match i {
        1 => (
            "192.168.1.1",
            "10.65.0.0/26",
            "10.65.0.2",
            "10.65.0.1",
            "66:00:00:00:00:0a",
        ),
        _ => (
            "192.168.2.1",
            "10.65.1.0/26",
            "10.65.1.2",
            "10.65.1.1",
            "66:00:00:00:00:0b",
        ),
    };
    let ns = Netns::new(name).unwrap();
    let rdev = format!("r{i}");
    ns.veth("eth0", router, &rdev).unwrap();
    ns.add_addr("eth0", &format!("{ip}/24")).unwrap();
    router
        .add_addr(&rdev, &format!("192.168.{i}.254/24"))
        .unwrap();
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        &format!("192.168.{i}.254"),
    ])
    .unwrap();
    ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
    let pod = Netns::new(&format!("{name}-pod")).unwrap();
    pod.veth("eth0", &ns, "cali0123456789a").unwrap();
    pod.add_addr("eth0", &format!("{pod_ip}/32")).unwrap();
    pod.ip(&[
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ])
    .unwrap();
    pod.ip(&[
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
    ])
    .unwrap();
    Host {
        name,
        ns,
        pod,
        ip,
        block,
        pod_ip,
        tunnel,
        mac,
    }
}

async fn put(ds: &Datastore, key: &str, value: String) {
    match ds.get(key).await.unwrap() {
        Some(kv) => ds.update(key, value, kv.mod_revision).await.unwrap(),
        None => ds.create(key, value).await.unwrap(),
    };
}

async fn write_host(ds: &Datastore, h: &Host) {
    put(
        ds,
        &format!("{R}/nodes/{}", h.name),
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":h.name},
               "spec":{"bgp":{"ipv4Address":format!("{}/24", h.ip)},
                       "ipv4VXLANTunnelAddr":h.tunnel,"vxlanTunnelMACAddr":h.mac}})
        .to_string(),
    )
    .await;
    put(
        ds,
        &format!(
            "/calico/ipam/v2/host/{}/ipv4/block/{}",
            h.name,
            h.block.replace('/', "-")
        ),
        r#"{"state":"confirmed","deleted":false}"#.into(),
    )
    .await;
    put(
        ds,
        &format!("{R}/workloadendpoints/default/{}-k8s-pod-eth0", h.name),
        json!({"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3",
               "metadata":{"name":format!("{}-k8s-pod-eth0", h.name),"namespace":"default"},
               "spec":{"node":h.name,"ipNetworks":[format!("{}/32", h.pod_ip)],
                       "interfaceName":"cali0123456789a"}})
        .to_string(),
    )
    .await;
}

/// confd → (vxlan manager, route reconciler) for one host.
async fn agent(
    ds: Datastore,
    h: &Host,
    remote: BTreeMap<IpNet, Vec<IpAddr>>,
) -> (Confd, Arc<Reconciler>, JoinHandle<()>) {
    let mut cfg = ConfdConfig::new(h.name);
    cfg.backoff_max = Duration::from_millis(500);
    let confd = Confd::start(ds, cfg);
    let felix = Arc::new(
        Reconciler::start(ReconcilerConfig {
            netns: Some(h.ns.path()),
            ..ReconcilerConfig::default()
        })
        .await
        .unwrap(),
    );
    let vxlan = VxlanManager::open(Some(h.ns.path())).await.unwrap();
    confd.status_watch().wait_for(|s| s.in_sync).await.unwrap();
    let mut sub = confd.subscribe();
    let me = h.name;
    let desired = felix.clone();
    let pump = tokio::spawn(async move {
        loop {
            let snap = sub.snapshot().clone();
            if let Err(e) = vxlan.apply(overlay_from_snapshot(&snap, me).as_ref()).await {
                eprintln!("vxlan apply on {me}: {e:#?}");
            }
            let inputs = calico::inputs(&snap, me, remote.clone(), false);
            desired.set_desired(desired_routes(&inputs).routes);
            if sub.recv().await.is_none() {
                return;
            }
        }
    });
    (confd, felix, pump)
}

fn wait(what: &str, mut probe: impl FnMut() -> Result<(), String>) {
    try_wait_until(WAIT, what, &mut probe).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_subnets_talk_over_vxlan_and_a_removed_node_leaves_nothing() {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("bridge"),
        Need::Bin("ping")
    );
    let router = Netns::new("vx-router").unwrap();
    router.sysctl("net.ipv4.ip_forward", "1").unwrap();
    let a = host(&router, 1, "vx-a");
    let b = host(&router, 2, "vx-b");
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    put(
        &ds,
        &format!("{R}/ippools/vxlan"),
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"vxlan"},
               "spec":{"cidr":"10.65.0.0/16","vxlanMode":"Always"}})
        .to_string(),
    )
    .await;
    write_host(&ds, &a).await;
    write_host(&ds, &b).await;
    let remote_of = |other: &Host| {
        BTreeMap::from([(
            other.block.parse::<IpNet>().unwrap(),
            vec![other.ip.parse::<IpAddr>().unwrap()],
        )])
    };
    let agent_a = agent(connect(etcd.endpoint()).await, &a, remote_of(&b)).await;
    let agent_b = agent(connect(etcd.endpoint()).await, &b, remote_of(&a)).await;

    wait("A's route to B's block via the tunnel", || {
        let r =
            a.ns.ip(&["route", "show", "10.65.1.0/26"])
                .map_err(|e| e.to_string())?;
        if r.contains("via 10.65.1.1 dev vxlan.calico") && r.contains("onlink") {
            Ok(())
        } else {
            Err(r)
        }
    });
    let neigh = a.ns.ip(&["neigh", "show", "dev", "vxlan.calico"]).unwrap();
    assert!(
        neigh.contains("10.65.1.1 lladdr 66:00:00:00:00:0b PERMANENT"),
        "{neigh}"
    );
    let fdb =
        a.ns.exec("bridge", &["fdb", "show", "dev", "vxlan.calico"])
            .unwrap();
    assert!(fdb.contains("66:00:00:00:00:0b dst 192.168.2.1"), "{fdb}");
    let link = a.ns.ip(&["-d", "link", "show", "vxlan.calico"]).unwrap();
    assert!(
        link.contains("vxlan id 4096") && link.contains("dstport 4789"),
        "{link}"
    );
    wait("B's route to A's block via the tunnel", || {
        let r =
            b.ns.ip(&["route", "show", "10.65.0.0/26"])
                .map_err(|e| e.to_string())?;
        if r.contains("vxlan.calico") {
            Ok(())
        } else {
            Err(r)
        }
    });
    wait("pod A reaches pod B", || {
        a.pod
            .ping(b.pod_ip.parse().unwrap(), 1)
            .map_err(|e| format!("{e:#}"))
    });
    b.pod.ping(a.pod_ip.parse().unwrap(), 1).unwrap();

    // Node B leaves: A drops its route, ARP and FDB entries.
    let kv = ds
        .get(&format!("{R}/nodes/{}", b.name))
        .await
        .unwrap()
        .unwrap();
    ds.delete(&kv.key, kv.mod_revision).await.unwrap();
    wait("B's overlay entries gone from A", || {
        let r =
            a.ns.ip(&["route", "show", "10.65.1.0/26"])
                .map_err(|e| e.to_string())?;
        let n =
            a.ns.ip(&["neigh", "show", "dev", "vxlan.calico"])
                .map_err(|e| e.to_string())?;
        let f =
            a.ns.exec("bridge", &["fdb", "show", "dev", "vxlan.calico"])
                .map_err(|e| e.to_string())?;
        if r.trim().is_empty() && !n.contains("10.65.1.1") && !f.contains("192.168.2.1") {
            Ok(())
        } else {
            Err(format!("route {r:?} neigh {n:?} fdb {f:?}"))
        }
    });
    drop((agent_a, agent_b));
}
