//! ADD, DEL and CHECK.
//!
//! - ADD: assign (IPAM handle `k8s-pod-network.<containerID>`, attributes
//!   `namespace`, `pod`, `node`), wire the veth ([`crate::netlink`]), write
//!   the WorkloadEndpoint. Anything that fails after the assignment undoes
//!   what was done (veth removed, addresses released), so a failed ADD
//!   leaves nothing. A repeated ADD for the same container first removes
//!   what an earlier attempt left.
//! - DEL: remove the pod's interface (inside `CNI_NETNS` when it still
//!   exists, else the host end if the WorkloadEndpoint is this
//!   container's), release the handle, delete the WorkloadEndpoint if it is
//!   this container's. Every step tolerates "already gone": DEL is
//!   idempotent.
//! - CHECK: the WorkloadEndpoint is this container's, the host end exists,
//!   the pod's interface holds exactly the endpoint's addresses and has the
//!   default route.

use std::collections::BTreeMap;
use std::net::IpAddr;

use manul_datastore::Datastore;
use manul_datastore::ipam::attr;
use manul_ipam::{AutoAssignArgs, Ipam};
use serde_json::Value;

use crate::conf::NetConf;
use crate::env::CniEnv;
use crate::error::{CHECK_FAILED, CniError, Result, datastore};
use crate::netlink;
use crate::result;
use crate::workload::Workload;

async fn connect(conf: &NetConf) -> Result<Datastore> {
    let c = conf.etcd(|n| std::env::var(n).ok())?;
    Datastore::connect(&c)
        .await
        .map_err(|e| datastore(&e, "connecting to etcd"))
}

/// ADD; the result to print.
pub async fn add(conf: &NetConf, env: &CniEnv) -> Result<Value> {
    let (v4, v6) = (conf.assign_v4()?, conf.assign_v6()?);
    if !v4 && !v6 {
        return Err(CniError::new(
            crate::error::INVALID_CONFIG,
            "ipam: neither assign_ipv4 nor assign_ipv6 is true",
        ));
    }
    let netns = env.netns.clone().expect("ADD requires CNI_NETNS");
    let mtu = conf.pod_mtu()?;
    let wl = Workload::new(env, &conf.node_name()?);
    let ds = connect(conf).await?;
    let ipam = Ipam::new(ds.clone());
    let host = netlink::connect(None).await?;
    // An earlier attempt may have left a veth or addresses behind.
    netlink::remove(&host, &wl.host_veth).await?;
    ipam.release_by_handle(&wl.handle).await?;

    let mut attrs = BTreeMap::new();
    attrs.insert(attr::NODE.to_string(), wl.node.clone());
    if wl.orchestrator == "k8s" {
        attrs.insert(attr::NAMESPACE.to_string(), wl.namespace.clone());
        attrs.insert(attr::POD.to_string(), wl.pod.clone());
    }
    let ips = ipam
        .auto_assign(&AutoAssignArgs {
            handle_id: wl.handle.clone(),
            num_v4: usize::from(v4),
            num_v6: usize::from(v6),
            host: wl.node.clone(),
            attrs,
            pools: conf.pools(),
            intended_use: None,
        })
        .await?;
    let nets: Vec<ipnet::IpNet> = ips.iter().map(|ip| ipnet::IpNet::from(*ip)).collect();
    let undo = async |e: CniError| -> CniError {
        let _ = netlink::remove(&host, &wl.host_veth).await;
        if let Err(r) = ipam.release_by_handle(&wl.handle).await {
            return e.details(format!("and releasing {} failed: {r}", wl.handle));
        }
        e
    };
    let wired = match netlink::setup(&host, &netns, &wl.host_veth, &wl.ifname, mtu, &nets).await {
        Ok(w) => w,
        Err(e) => return Err(undo(e).await),
    };
    if let Err(e) = wl.write(&ds, &wl.endpoint(&ips, &wired.pod_mac)).await {
        return Err(undo(e).await);
    }
    Ok(result::add(
        &conf.cni_version,
        &wl.host_veth,
        &wl.ifname,
        &wired.pod_mac,
        &netns.to_string_lossy(),
        &ips,
    ))
}

/// DEL.
pub async fn del(conf: &NetConf, env: &CniEnv) -> Result<()> {
    let wl = Workload::new(env, &conf.node_name()?);
    let ds = connect(conf).await?;
    let ipam = Ipam::new(ds.clone());
    let mine = match wl.read(&ds).await? {
        Some((wep, _)) => {
            wep.spec.container_id.is_empty() || wep.spec.container_id == wl.container_id
        }
        None => true,
    };
    let mut removed = false;
    if let Some(ns) = env.netns.as_deref().filter(|p| p.exists()) {
        let pod = netlink::connect(Some(ns)).await?;
        removed = netlink::remove(&pod, &wl.ifname).await?;
    }
    if !removed && mine {
        let host = netlink::connect(None).await?;
        netlink::remove(&host, &wl.host_veth).await?;
    }
    ipam.release_by_handle(&wl.handle).await?;
    wl.delete(&ds).await?;
    Ok(())
}

/// CHECK.
pub async fn check(conf: &NetConf, env: &CniEnv) -> Result<()> {
    let fail = |m: String| Err(CniError::new(CHECK_FAILED, m));
    let netns = env.netns.clone().expect("CHECK requires CNI_NETNS");
    let wl = Workload::new(env, &conf.node_name()?);
    let ds = connect(conf).await?;
    let Some((wep, _)) = wl.read(&ds).await? else {
        return fail(format!("no WorkloadEndpoint {}", wl.key()?));
    };
    if wep.spec.container_id != wl.container_id {
        return fail(format!(
            "WorkloadEndpoint {} belongs to container {:?}",
            wl.wep_name, wep.spec.container_id
        ));
    }
    let host = netlink::connect(None).await?;
    if netlink::link(&host, &wl.host_veth).await?.is_none() {
        return fail(format!("host interface {} is missing", wl.host_veth));
    }
    let Some(view) = netlink::inspect(&netns, &wl.ifname).await? else {
        return fail(format!("{} is missing in {}", wl.ifname, netns.display()));
    };
    let mut want: Vec<IpAddr> = wep.spec.ip_networks.iter().map(|n| n.addr()).collect();
    let mut have: Vec<IpAddr> = view.addrs.clone();
    have.retain(|a| !matches!(a, IpAddr::V6(v6) if v6.segments()[0] == 0xfe80));
    want.sort();
    have.sort();
    if want != have {
        return fail(format!(
            "{} holds {have:?}, the WorkloadEndpoint says {want:?}",
            wl.ifname
        ));
    }
    if want.iter().any(IpAddr::is_ipv4) && !view.default_v4 {
        return fail(format!(
            "no default route via {} on {}",
            netlink::GATEWAY_V4,
            wl.ifname
        ));
    }
    Ok(())
}
