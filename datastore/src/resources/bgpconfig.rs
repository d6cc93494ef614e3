//! BGPConfiguration (`bgpconfigurations`): the global (`default`) and
//! per-node (`node.<nodename>`) BGP settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bgppeer::BgpPassword;
use crate::asn::{AsNumber, DEFAULT_AS_NUMBER};
use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::{is_zero, null_default, opt_string_enum, string_enum};

/// A BGPConfiguration object.
pub type BgpConfiguration = Resource<BgpConfigurationSpec>;

/// The name of the global BGPConfiguration.
pub const GLOBAL_NAME: &str = "default";

string_enum! {
    /// `bindMode`: which address the BGP listener binds.
    BindMode { None = "None", NodeIp = "NodeIP" }
}

/// A `{cidr}` entry of the service address lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceIpBlock {
    /// The range.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub cidr: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A named community value (`aa:nn` or `aa:nn:mm`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Community {
    /// The name prefix advertisements may refer to.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The community value.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub value: String,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Communities to attach to routes within one CIDR.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefixAdvertisement {
    /// The range.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub cidr: String,
    /// Community names (from `communities`) or literal values.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub communities: Vec<String>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `BGPConfigurationSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpConfigurationSpec {
    /// Log level (Debug, Info, Warning, Error, Fatal).
    #[serde(
        rename = "logSeverityScreen",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub log_severity_screen: String,
    /// Full iBGP mesh between nodes; absent means true.
    #[serde(
        rename = "nodeToNodeMeshEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// Default AS of nodes; absent means 64512 (not filled in on read).
    #[serde(rename = "asNumber", default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// LoadBalancer ranges to advertise.
    #[serde(
        rename = "serviceLoadBalancerIPs",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<ServiceIpBlock>,
    /// External IP ranges to advertise.
    #[serde(
        rename = "serviceExternalIPs",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<ServiceIpBlock>,
    /// Cluster IP ranges to advertise.
    #[serde(
        rename = "serviceClusterIPs",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<ServiceIpBlock>,
    /// Named community values.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub communities: Vec<Community>,
    /// Per-prefix communities.
    #[serde(
        rename = "prefixAdvertisements",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// BGP listen port; 0 (absent) means 179.
    #[serde(
        rename = "listenPort",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub listen_port: u16,
    /// Password of mesh sessions.
    #[serde(
        rename = "nodeMeshPassword",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_mesh_password: Option<BgpPassword>,
    /// Graceful-restart time of mesh sessions (Go duration, e.g. `"2m0s"`).
    #[serde(
        rename = "nodeMeshMaxRestartTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_mesh_max_restart_time: Option<String>,
    /// Listener bind mode; absent means None.
    #[serde(
        rename = "bindMode",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub bind_mode: Option<BindMode>,
    /// Interfaces whose routes are not exported.
    #[serde(
        rename = "ignoredInterfaces",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ignored_interfaces: Vec<String>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for BgpConfigurationSpec {
    const KIND: ResourceKind = ResourceKind::BgpConfiguration;
}

impl BgpConfigurationSpec {
    /// Whether the node-to-node mesh is on (default true).
    pub fn node_to_node_mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    /// The AS number, or Calico's default 64512.
    pub fn as_number_or_default(&self) -> AsNumber {
        self.as_number.unwrap_or(DEFAULT_AS_NUMBER)
    }

    /// The listen port (default 179).
    pub fn listen_port(&self) -> u16 {
        if self.listen_port == 0 {
            179
        } else {
            self.listen_port
        }
    }

    /// The bind mode (default None).
    pub fn bind_mode(&self) -> BindMode {
        self.bind_mode.clone().unwrap_or(BindMode::None)
    }
}

/// The name of the per-node BGPConfiguration of `node`.
pub fn node_config_name(node: &str) -> String {
    format!("node.{node}")
}
