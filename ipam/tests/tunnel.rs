//! A node's VXLAN tunnel addresses against a real etcd, as calico-node's
//! `allocateip` keeps them: assigned from the VXLAN pools of each family
//! under Calico's handles and attributes, recorded on the Node with a
//! VTEP MAC (Calico's, derived from the node name), kept on later calls,
//! replaced when the Node's address is a pod's, released and cleared when
//! no VXLAN pool applies any more.

mod common;

use common::*;
use manul_datastore::resources::{Node, VxlanMode, calico_vtep_mac, format_mac};
use manul_datastore::{Key, ResourceKind};
use manul_ipam::AutoAssignArgs;
use manul_ipam::tunnel::{Tunnel, ensure_vxlan_tunnels};
use manul_tests::{Etcd, Need, require};
use serde_json::json;

async fn node(ds: &manul_datastore::Datastore, key: &str) -> (Node, i64) {
    let kv = ds.get(key).await.unwrap().unwrap();
    (Node::from_json(&kv.value).unwrap(), kv.mod_revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_addresses_follow_the_vxlan_pools() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(&etcd).await;
    let ipam = manul_ipam::Ipam::new(ds.clone());
    add_pool(&ds, "vx", "10.70.0.0/16", 26, |s| {
        s.vxlan_mode = Some(VxlanMode::Always)
    })
    .await;
    add_pool(&ds, "vx6", "fd00:70::/64", 122, |s| {
        s.vxlan_mode = Some(VxlanMode::CrossSubnet)
    })
    .await;
    let node_key = Key::resource(ResourceKind::Node, "n1").path().unwrap();
    ds.create(
        &node_key,
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n1"},
               "spec":{"bgp":{"ipv4Address":"192.168.1.1/24"}}})
        .to_string(),
    )
    .await
    .unwrap();

    let t = ensure_vxlan_tunnels(&ipam, "n1").await.unwrap();
    let (v4, v6) = (t.v4.expect("IPv4 tunnel"), t.v6.expect("IPv6 tunnel"));
    assert!(net("10.70.0.0/16").contains(&v4.address));
    assert!(net("fd00:70::/64").contains(&v6.address));
    assert_eq!(v4.mac, calico_vtep_mac("n1", false));
    assert_eq!(v6.mac, calico_vtep_mac("n1", true));
    let (n, rev) = node(&ds, &node_key).await;
    assert_eq!(n.spec.ipv4_vxlan_tunnel_addr, v4.address.to_string());
    assert_eq!(n.spec.vxlan_tunnel_mac_addr, format_mac(&v4.mac));
    assert_eq!(n.spec.ipv6_vxlan_tunnel_addr, v6.address.to_string());
    assert_eq!(n.spec.vxlan_tunnel_mac_addr_v6, format_mac(&v6.mac));
    assert!(n.spec.bgp.is_some(), "the rest of the Node is kept");
    let info = ipam.ip_info(v4.address).await.unwrap();
    assert_eq!(info.handle.as_deref(), Some("vxlan-tunnel-addr-n1"));
    assert_eq!(info.attributes["type"], "vxlanTunnelAddress");
    assert_eq!(info.attributes["node"], "n1");
    let info = ipam.ip_info(v6.address).await.unwrap();
    assert_eq!(info.handle.as_deref(), Some("vxlan-v6-tunnel-addr-n1"));
    assert_eq!(info.attributes["type"], "vxlanV6TunnelAddress");

    // Again: nothing changes, nothing is written.
    assert_eq!(ensure_vxlan_tunnels(&ipam, "n1").await.unwrap(), t);
    assert_eq!(node(&ds, &node_key).await.1, rev);

    // A MAC set on the Node is kept.
    let (mut n, rev) = node(&ds, &node_key).await;
    n.spec.vxlan_tunnel_mac_addr = "66:00:00:00:00:01".into();
    ds.update(&node_key, n.to_json(), rev).await.unwrap();
    let t2 = ensure_vxlan_tunnels(&ipam, "n1").await.unwrap();
    assert_eq!(
        t2.v4,
        Some(Tunnel {
            address: v4.address,
            mac: [0x66, 0, 0, 0, 0, 1]
        })
    );

    // The Node names a pod's address (edited by hand): a new one is
    // assigned and the pod's is left alone.
    let pod = ipam
        .auto_assign(&AutoAssignArgs {
            handle_id: "k8s-pod-network.pod1".into(),
            num_v4: 1,
            host: "n1".into(),
            pools: vec![net("10.70.0.0/16")],
            ..AutoAssignArgs::default()
        })
        .await
        .unwrap()[0];
    let (mut n, rev) = node(&ds, &node_key).await;
    n.spec.ipv4_vxlan_tunnel_addr = pod.to_string();
    ds.update(&node_key, n.to_json(), rev).await.unwrap();
    let t3 = ensure_vxlan_tunnels(&ipam, "n1").await.unwrap();
    let new = t3.v4.unwrap().address;
    assert_ne!(new, pod);
    let pod_info = ipam.ip_info(pod).await.unwrap();
    assert_eq!(
        pod_info.handle.as_deref(),
        Some("k8s-pod-network.pod1"),
        "the pod keeps its address"
    );
    // The handle holds exactly the new address (the old one was released).
    let mut held = Vec::new();
    for ip in [v4.address, new] {
        let h = ipam.ip_info(ip).await.unwrap().handle;
        if h.as_deref() == Some("vxlan-tunnel-addr-n1") {
            held.push(ip);
        }
    }
    assert_eq!(held, vec![new]);

    // No VXLAN pool left: released and cleared, both families.
    for (name, cidr, mode) in [
        ("vx", "10.70.0.0/16", VxlanMode::Never),
        ("vx6", "fd00:70::/64", VxlanMode::Never),
    ] {
        let key = Key::resource(ResourceKind::IpPool, name).path().unwrap();
        let kv = ds.get(&key).await.unwrap().unwrap();
        let mut p = manul_datastore::resources::IpPool::from_json(&kv.value).unwrap();
        assert_eq!(p.spec.cidr, net(cidr));
        p.spec.vxlan_mode = Some(mode);
        ds.update(&key, p.to_json(), kv.mod_revision).await.unwrap();
    }
    let t4 = ensure_vxlan_tunnels(&ipam, "n1").await.unwrap();
    assert_eq!((t4.v4, t4.v6), (None, None));
    let (n, _) = node(&ds, &node_key).await;
    assert!(n.spec.ipv4_vxlan_tunnel_addr.is_empty() && n.spec.vxlan_tunnel_mac_addr.is_empty());
    assert!(n.spec.ipv6_vxlan_tunnel_addr.is_empty() && n.spec.vxlan_tunnel_mac_addr_v6.is_empty());
    for h in ["vxlan-tunnel-addr-n1", "vxlan-v6-tunnel-addr-n1"] {
        assert!(
            ds.get(&format!("/calico/ipam/v2/handle/{h}"))
                .await
                .unwrap()
                .is_none(),
            "{h} left"
        );
    }
    assert!(!ipam.ip_info(new).await.unwrap().assigned);
}
