//! Shared set-up for the IPAM integration tests: a client on a real etcd,
//! pools, nodes and WorkloadEndpoints written as Calico writes them.

#![allow(dead_code)]

use std::time::Duration;

use ipnet::IpNet;
use manul_datastore::etcd::{Datastore, EtcdConfig};
use manul_datastore::ipam::IpamConfig;
use manul_datastore::resources::{IpPool, IpPoolSpec, WorkloadEndpoint, WorkloadEndpointSpec};
use manul_datastore::{Key, ResourceKind};
use manul_ipam::Ipam;
use manul_tests::Etcd;

pub async fn connect(etcd: &Etcd) -> Datastore {
    let mut c = EtcdConfig::new([etcd.endpoint()]);
    c.dial_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(10);
    Datastore::connect(&c).await.expect("connect to etcd")
}

pub async fn ipam(etcd: &Etcd) -> Ipam {
    Ipam::new(connect(etcd).await)
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Write a pool as `calicoctl create` would.
pub async fn add_pool(
    ds: &Datastore,
    name: &str,
    cidr: &str,
    block_size: u32,
    edit: impl FnOnce(&mut IpPoolSpec),
) {
    let mut spec = IpPoolSpec::new(net(cidr));
    spec.block_size = block_size;
    spec.fill_defaults();
    edit(&mut spec);
    let pool = IpPool::new(name, spec);
    let key = Key::resource(ResourceKind::IpPool, name).path().unwrap();
    ds.create(&key, pool.to_json()).await.expect("create pool");
}

pub async fn set_config(ipam: &Ipam, strict: bool, max_blocks: u32) {
    ipam.set_config(&IpamConfig {
        strict_affinity: Some(strict),
        auto_allocate_blocks: Some(true),
        max_blocks_per_host: Some(max_blocks),
        extra: Default::default(),
    })
    .await
    .expect("set IPAM config");
}

/// Write a WorkloadEndpoint using `ips` on `node`.
pub async fn add_wep(ds: &Datastore, name: &str, node: &str, ips: &[std::net::IpAddr]) {
    let spec = WorkloadEndpointSpec {
        orchestrator: "k8s".into(),
        node: node.into(),
        pod: name.into(),
        endpoint: "eth0".into(),
        ip_networks: ips.iter().map(|ip| IpNet::from(*ip)).collect(),
        ..Default::default()
    };
    let mut wep = WorkloadEndpoint::new(name, spec);
    wep.metadata.namespace = "default".into();
    let key = Key::namespaced(ResourceKind::WorkloadEndpoint, "default", name)
        .path()
        .unwrap();
    ds.create(&key, wep.to_json())
        .await
        .expect("create WorkloadEndpoint");
}
