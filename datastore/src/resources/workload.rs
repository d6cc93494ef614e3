//! WorkloadEndpoint (`workloadendpoints`, namespaced): one pod interface.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::null_default;

/// A WorkloadEndpoint object.
pub type WorkloadEndpoint = Resource<WorkloadEndpointSpec>;

/// `WorkloadEndpointSpec`. `ipNATs`, `ports`, `allowSpoofedSourcePrefixes`
/// and later additions stay in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEndpointSpec {
    /// e.g. `k8s`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub orchestrator: String,
    /// The workload's name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub workload: String,
    /// The node the workload runs on.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// The container ID.
    #[serde(
        rename = "containerID",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// The pod name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub pod: String,
    /// The endpoint (interface) name, e.g. `eth0`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub endpoint: String,
    /// The pod's service account.
    #[serde(
        rename = "serviceAccountName",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub service_account_name: String,
    /// Addresses, e.g. `10.65.0.3/32`.
    #[serde(
        rename = "ipNetworks",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_networks: Vec<IpNet>,
    /// Gateway for IPv4 traffic from the workload.
    #[serde(
        rename = "ipv4Gateway",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_gateway: String,
    /// Gateway for IPv6 traffic from the workload.
    #[serde(
        rename = "ipv6Gateway",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_gateway: String,
    /// Profiles applied to the endpoint.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub profiles: Vec<String>,
    /// Host-side interface (`cali` + 11 hex characters).
    #[serde(
        rename = "interfaceName",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_name: String,
    /// The workload interface's MAC.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for WorkloadEndpointSpec {
    const KIND: ResourceKind = ResourceKind::WorkloadEndpoint;
}
