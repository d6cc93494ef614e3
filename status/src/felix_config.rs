//! The FelixConfiguration in effect for this node (`node.<name>` over
//! `default`, field by field) and what the agent does with each field.

use serde::{Deserialize, Serialize};

/// The FelixConfiguration fields manul-node acts on (live); any other field
/// set is reported as not supported. Shared with `manulctl apply`'s
/// warning.
pub const HONOURED_FIELDS: &[&str] = &[
    "logSeverityScreen",
    "routeRefreshInterval",
    "vxlanMTU",
    "vxlanMTUV6",
];

/// Which fields of the effective FelixConfiguration manul-node acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FelixConfigurationStatus {
    /// Fields whose value is in force now (live, without a restart).
    #[serde(default)]
    pub applied: Vec<String>,
    /// Fields manul-node honours but an environment variable or option
    /// of the agent sets, which wins (as in Calico).
    #[serde(default)]
    pub overridden: Vec<String>,
    /// Fields set that manul-node does not act on.
    #[serde(default)]
    pub not_supported: Vec<String>,
    /// Fields manul-node honours whose value it refused, with why.
    #[serde(default)]
    pub invalid: Vec<String>,
}
