//! GC and STATUS (CNI spec 1.1.0).
//!
//! - GC: the runtime lists the attachments it still has on this node
//!   (`cni.dev/valid-attachments`, `{containerID, ifname}`); everything
//!   this plugin holds for any other attachment *on this node* goes: the
//!   WorkloadEndpoints of this node whose (container, interface) is not
//!   listed (deleted, guarded by revision, with their host veth when it is
//!   still there), and the IPAM handles `k8s-pod-network.<containerID>` with
//!   addresses attributed to this node whose container is not listed
//!   (released). Which ones is decided by [`stale`] (pure); a node never
//!   touches another node's endpoints or handles. Errors are collected so
//!   one failure does not stop the rest; the first is returned.
//! - STATUS: succeeds when ADD could be served now: etcd answers and an
//!   enabled pool exists for each family the configuration assigns
//!   (within its `ipv4_pools` / `ipv6_pools` when set); otherwise error 50
//!   (not available) saying why.

use std::collections::BTreeSet;

use manul_datastore::ipam::AllocationBlock;
use manul_datastore::ipam::attr;
use manul_datastore::keys::prefix;
use manul_datastore::resources::WorkloadEndpoint;
use manul_datastore::{Datastore, ResourceKind};
use manul_ipam::Ipam;

use crate::conf::{Attachment, NetConf};
use crate::error::{CniError, NOT_AVAILABLE, Result, datastore};
use crate::names;
use crate::netlink;

/// A WorkloadEndpoint of this node as GC sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its etcd key.
    pub key: String,
    /// Its revision (the delete is guarded by it).
    pub revision: i64,
    /// `spec.containerID`.
    pub container_id: String,
    /// `spec.endpoint` (the pod-side interface).
    pub ifname: String,
    /// `spec.interfaceName` (the host-side veth).
    pub host_veth: String,
}

/// What GC removes: endpoints (by index into the input) and handles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    /// Endpoints whose attachment is not valid.
    pub endpoints: Vec<usize>,
    /// Handles whose container has no valid attachment.
    pub handles: BTreeSet<String>,
}

/// Decide what goes (pure): `endpoints` of this node, `handles` holding
/// addresses attributed to this node.
pub fn stale(valid: &[Attachment], endpoints: &[Endpoint], handles: &BTreeSet<String>) -> Garbage {
    let attached: BTreeSet<(&str, &str)> = valid
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();
    let containers: BTreeSet<String> = valid
        .iter()
        .map(|a| names::handle_id(&a.container_id))
        .collect();
    Garbage {
        endpoints: endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| !attached.contains(&(e.container_id.as_str(), e.ifname.as_str())))
            .map(|(i, _)| i)
            .collect(),
        handles: handles
            .iter()
            .filter(|h| h.starts_with(&names::handle_id("")) && !containers.contains(*h))
            .cloned()
            .collect(),
    }
}

/// This node's WorkloadEndpoints.
async fn endpoints(ds: &Datastore, node: &str) -> Result<Vec<Endpoint>> {
    let (kvs, _) = ds
        .list(&prefix::kind(ResourceKind::WorkloadEndpoint), None)
        .await
        .map_err(|e| datastore(&e, "listing WorkloadEndpoints"))?;
    Ok(kvs
        .iter()
        .filter_map(|kv| kv.decode::<WorkloadEndpoint>().ok())
        .filter(|v| v.value.spec.node == node)
        .map(|v| Endpoint {
            key: v.key,
            revision: v.mod_revision,
            container_id: v.value.spec.container_id,
            ifname: v.value.spec.endpoint,
            host_veth: v.value.spec.interface_name,
        })
        .collect())
}

/// Handles of allocations attributed to `node`, in any block (borrowed
/// addresses live in other nodes' blocks).
async fn handles(ds: &Datastore, node: &str) -> Result<BTreeSet<String>> {
    let (kvs, _) = ds
        .list(&prefix::all_blocks(), None)
        .await
        .map_err(|e| datastore(&e, "listing IPAM blocks"))?;
    let mut out = BTreeSet::new();
    for kv in &kvs {
        let Ok(block) = kv.decode::<AllocationBlock>() else {
            continue; // malformed: the leak check reports it
        };
        let b = block.value;
        for i in b.allocations.iter().flatten() {
            let Some(a) = b.attributes.get(*i as usize) else {
                continue;
            };
            if a.secondary.get(attr::NODE).map(String::as_str) == Some(node)
                && let Some(h) = &a.handle_id
            {
                out.insert(h.clone());
            }
        }
    }
    Ok(out)
}

async fn connect(conf: &NetConf) -> Result<Datastore> {
    let c = conf.etcd(|n| std::env::var(n).ok())?;
    Datastore::connect(&c)
        .await
        .map_err(|e| datastore(&e, "connecting to etcd"))
}

/// GC.
pub async fn gc(conf: &NetConf) -> Result<()> {
    let node = conf.node_name()?;
    let ds = connect(conf).await?;
    let eps = endpoints(&ds, &node).await?;
    let hs = handles(&ds, &node).await?;
    let garbage = stale(&conf.valid_attachments, &eps, &hs);
    let mut first_error: Option<CniError> = None;
    let host = netlink::connect(None).await?;
    for i in garbage.endpoints {
        let e = &eps[i];
        if !e.host_veth.is_empty()
            && let Err(err) = netlink::remove(&host, &e.host_veth).await
        {
            first_error.get_or_insert(err);
        }
        match ds.delete(&e.key, e.revision).await {
            Ok(_) | Err(manul_datastore::etcd::Error::NotFound { .. }) => {}
            // Changed meanwhile: a new ADD wrote it; leave it.
            Err(manul_datastore::etcd::Error::Conflict { .. }) => {}
            Err(err) => {
                first_error.get_or_insert(datastore(&err, &format!("deleting {}", e.key)));
            }
        }
    }
    let ipam = Ipam::new(ds);
    for h in &garbage.handles {
        if let Err(err) = ipam.release_by_handle(h).await {
            first_error.get_or_insert(err.into());
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// STATUS.
pub async fn status(conf: &NetConf) -> Result<()> {
    let unavailable = |m: String| CniError::new(NOT_AVAILABLE, m);
    let c = conf.etcd(|n| std::env::var(n).ok())?;
    let ds = Datastore::connect(&c)
        .await
        .map_err(|e| unavailable(format!("etcd is not reachable: {e}")))?;
    let pools = Ipam::new(ds)
        .pools()
        .await
        .map_err(|e| unavailable(format!("reading the IP pools: {e}")))?;
    let wanted = conf.pools();
    for (on, v6) in [(conf.assign_v4()?, false), (conf.assign_v6()?, true)] {
        if !on {
            continue;
        }
        let usable = pools.iter().any(|p| {
            p.cidr.addr().is_ipv6() == v6
                && !p.resource.spec.disabled
                && (wanted.is_empty() || wanted.contains(&p.cidr))
        });
        if !usable {
            return Err(unavailable(format!(
                "no enabled IPv{} pool{}",
                if v6 { 6 } else { 4 },
                if wanted.is_empty() {
                    String::new()
                } else {
                    format!(" among {wanted:?}")
                }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(cid: &str, ifname: &str) -> Endpoint {
        Endpoint {
            key: format!("k/{cid}"),
            revision: 1,
            container_id: cid.into(),
            ifname: ifname.into(),
            host_veth: String::new(),
        }
    }

    #[test]
    fn only_what_no_valid_attachment_holds_goes() {
        let valid = vec![Attachment {
            container_id: "a".into(),
            ifname: "eth0".into(),
        }];
        let eps = vec![ep("a", "eth0"), ep("a", "eth1"), ep("b", "eth0")];
        let hs: BTreeSet<String> = [
            "k8s-pod-network.a",
            "k8s-pod-network.b",
            "ipip-tunnel-addr-host-a",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let g = stale(&valid, &eps, &hs);
        assert_eq!(g.endpoints, vec![1, 2]);
        // Only pod handles; a tunnel address is not the plugin's.
        assert_eq!(
            g.handles.into_iter().collect::<Vec<_>>(),
            vec!["k8s-pod-network.b".to_string()]
        );
        // Nothing valid: everything of the plugin's goes.
        let g = stale(&[], &eps, &hs);
        assert_eq!(g.endpoints.len(), 3);
        assert_eq!(g.handles.len(), 2);
    }
}
