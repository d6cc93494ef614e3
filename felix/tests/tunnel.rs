//! The VXLAN tunnel address against a real etcd: assigned from the VXLAN
//! pool under Calico's handle, recorded on the Node with a VTEP MAC, kept
//! on later calls, released when no VXLAN pool is left.

#[path = "../../confd/tests/common/mod.rs"]
mod common;

use std::net::IpAddr;

use common::connect;
use manul_datastore::resources::Node;
use manul_felix::tunnel::ensure_vxlan_tunnel;
use manul_ipam::Ipam;
use manul_tests::{Etcd, Need, require};
use serde_json::json;

const R: &str = "/calico/resources/v3/projectcalico.org";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_address_from_the_vxlan_pool_recorded_on_the_node() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let ds = connect(etcd.endpoint()).await;
    let pool_key = format!("{R}/ippools/vx");
    let pool = |mode: &str| {
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"vx"},
               "spec":{"cidr":"10.70.0.0/16","vxlanMode":mode}})
        .to_string()
    };
    ds.create(&pool_key, pool("Always")).await.unwrap();
    let node_key = format!("{R}/nodes/n1");
    ds.create(
        &node_key,
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"n1"},
               "spec":{"bgp":{"ipv4Address":"192.168.1.1/24"}}})
        .to_string(),
    )
    .await
    .unwrap();
    let ipam = Ipam::new(ds.clone());

    let (addr, mac) = ensure_vxlan_tunnel(&ipam, "n1")
        .await
        .unwrap()
        .expect("a VXLAN pool");
    assert!(
        "10.70.0.0/16"
            .parse::<ipnet::IpNet>()
            .unwrap()
            .contains(&IpAddr::V4(addr))
    );
    assert_eq!(mac[0] & 0x03, 0x02, "locally administered unicast");
    let node = Node::from_json(&ds.get(&node_key).await.unwrap().unwrap().value).unwrap();
    assert_eq!(node.spec.ipv4_vxlan_tunnel_addr, addr.to_string());
    assert_eq!(node.spec.vxlan_tunnel_mac_addr.len(), 17);
    assert!(node.spec.bgp.is_some(), "the rest of the Node is kept");
    assert!(
        ds.get("/calico/ipam/v2/handle/vxlan-tunnel-addr-n1")
            .await
            .unwrap()
            .is_some()
    );

    // Again: nothing changes, nothing is written.
    let rev = ds.get(&node_key).await.unwrap().unwrap().mod_revision;
    assert_eq!(
        ensure_vxlan_tunnel(&ipam, "n1").await.unwrap(),
        Some((addr, mac))
    );
    assert_eq!(ds.get(&node_key).await.unwrap().unwrap().mod_revision, rev);

    // No VXLAN pool left: released and cleared.
    let kv = ds.get(&pool_key).await.unwrap().unwrap();
    ds.update(&pool_key, pool("Never"), kv.mod_revision)
        .await
        .unwrap();
    assert_eq!(ensure_vxlan_tunnel(&ipam, "n1").await.unwrap(), None);
    let node = Node::from_json(&ds.get(&node_key).await.unwrap().unwrap().value).unwrap();
    assert!(
        node.spec.ipv4_vxlan_tunnel_addr.is_empty() && node.spec.vxlan_tunnel_mac_addr.is_empty()
    );
    assert!(
        ds.get("/calico/ipam/v2/handle/vxlan-tunnel-addr-n1")
            .await
            .unwrap()
            .is_none()
    );
}
