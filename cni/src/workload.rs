//! Who the container is, and its WorkloadEndpoint in etcd (Calico's key
//! `/calico/resources/v3/projectcalico.org/workloadendpoints/<ns>/<name>`
//! and JSON).

use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::etcd::Error as EtcdError;
use manul_datastore::resources::{WorkloadEndpoint, WorkloadEndpointSpec};
use manul_datastore::{Datastore, Key, ResourceKind};

use crate::env::CniEnv;
use crate::error::{CniError, DATASTORE_FAILURE, Result, datastore};
use crate::names;

/// The workload one CNI call is about.
#[derive(Debug, Clone)]
pub struct Workload {
    /// This host's node name.
    pub node: String,
    /// `k8s`, or `cni` without pod arguments.
    pub orchestrator: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name (the container ID without pod arguments).
    pub pod: String,
    /// The container ID.
    pub container_id: String,
    /// The pod-side interface name.
    pub ifname: String,
    /// The host-side veth.
    pub host_veth: String,
    /// The IPAM handle.
    pub handle: String,
    /// The WorkloadEndpoint's name.
    pub wep_name: String,
}

impl Workload {
    /// The workload of a call on `node`.
    pub fn new(env: &CniEnv, node: &str) -> Self {
        let (orchestrator, namespace, pod) = match &env.pod_name {
            Some(pod) => (
                "k8s",
                env.pod_namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                pod.clone(),
            ),
            None => ("cni", "default".to_string(), env.container_id.clone()),
        };
        Workload {
            node: node.to_string(),
            orchestrator: orchestrator.into(),
            host_veth: names::veth_name(&namespace, &pod),
            handle: names::handle_id(&env.container_id),
            wep_name: names::wep_name(node, orchestrator, &pod, &env.ifname),
            namespace,
            pod,
            container_id: env.container_id.clone(),
            ifname: env.ifname.clone(),
        }
    }

    /// The WorkloadEndpoint's etcd key.
    pub fn key(&self) -> Result<String> {
        Key::namespaced(
            ResourceKind::WorkloadEndpoint,
            &self.namespace,
            &self.wep_name,
        )
        .path()
        .map_err(|e| {
            CniError::new(
                crate::error::INVALID_ENV,
                format!("no WorkloadEndpoint key for this pod: {e}"),
            )
        })
    }

    /// The object ADD writes.
    pub fn endpoint(&self, ips: &[IpAddr], mac: &str) -> WorkloadEndpoint {
        let spec = WorkloadEndpointSpec {
            orchestrator: self.orchestrator.clone(),
            workload: if self.orchestrator == "k8s" {
                String::new()
            } else {
                self.container_id.clone()
            },
            node: self.node.clone(),
            container_id: self.container_id.clone(),
            pod: if self.orchestrator == "k8s" {
                self.pod.clone()
            } else {
                String::new()
            },
            endpoint: self.ifname.clone(),
            ip_networks: ips.iter().map(|ip| IpNet::from(*ip)).collect(),
            profiles: vec![format!("kns.{}", self.namespace)],
            interface_name: self.host_veth.clone(),
            mac: mac.to_string(),
            ..Default::default()
        };
        let mut wep = WorkloadEndpoint::new(&self.wep_name, spec);
        wep.metadata.namespace = self.namespace.clone();
        wep.metadata.labels.extend([
            (
                "projectcalico.org/namespace".to_string(),
                self.namespace.clone(),
            ),
            (
                "projectcalico.org/orchestrator".to_string(),
                self.orchestrator.clone(),
            ),
        ]);
        wep
    }

    /// The stored WorkloadEndpoint and its revision, if any.
    pub async fn read(&self, ds: &Datastore) -> Result<Option<(WorkloadEndpoint, i64)>> {
        let key = self.key()?;
        let Some(kv) = ds
            .get(&key)
            .await
            .map_err(|e| datastore(&e, "reading the WorkloadEndpoint"))?
        else {
            return Ok(None);
        };
        let wep = WorkloadEndpoint::from_json(&kv.value).map_err(|e| {
            CniError::new(DATASTORE_FAILURE, format!("malformed value at {key}: {e}"))
        })?;
        Ok(Some((wep, kv.mod_revision)))
    }

    /// Write (create or replace) the WorkloadEndpoint.
    pub async fn write(&self, ds: &Datastore, wep: &WorkloadEndpoint) -> Result<()> {
        let key = self.key()?;
        for _ in 0..10 {
            let res = match self.read(ds).await? {
                None => ds.create(&key, wep.to_json()).await,
                Some((_, rev)) => ds.update(&key, wep.to_json(), rev).await,
            };
            match res {
                Ok(_) => return Ok(()),
                Err(EtcdError::Conflict { .. } | EtcdError::NotFound { .. }) => continue,
                Err(e) => return Err(datastore(&e, "writing the WorkloadEndpoint")),
            }
        }
        Err(CniError::new(
            crate::error::TRY_AGAIN_LATER,
            format!("writing {key}: it kept changing under us"),
        ))
    }

    /// Delete the WorkloadEndpoint if it is this container's (a newer
    /// sandbox of the same pod keeps its own); whether one was deleted.
    pub async fn delete(&self, ds: &Datastore) -> Result<bool> {
        let key = self.key()?;
        for _ in 0..10 {
            let Some((wep, rev)) = self.read(ds).await? else {
                return Ok(false);
            };
            if !wep.spec.container_id.is_empty() && wep.spec.container_id != self.container_id {
                return Ok(false);
            }
            match ds.delete(&key, rev).await {
                Ok(_) => return Ok(true),
                Err(EtcdError::Conflict { .. }) => continue,
                Err(EtcdError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(datastore(&e, "deleting the WorkloadEndpoint")),
            }
        }
        Err(CniError::new(
            crate::error::TRY_AGAIN_LATER,
            format!("deleting {key}: it kept changing under us"),
        ))
    }
}
