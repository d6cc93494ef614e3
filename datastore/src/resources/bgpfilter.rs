//! BGPFilter (`bgpfilters`): ordered import/export rule lists per family.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::{null_default, opt_string_enum, string_enum};

/// A BGPFilter object.
pub type BgpFilter = Resource<BgpFilterSpec>;

string_enum! {
    /// How a route's prefix is compared with the rule's CIDR.
    MatchOperator { Equal = "Equal", NotEqual = "NotEqual", In = "In", NotIn = "NotIn" }
}

string_enum! {
    /// What happens to a matching route.
    FilterAction { Accept = "Accept", Reject = "Reject" }
}

string_enum! {
    /// Where a matching route came from.
    FilterMatchSource { RemotePeers = "RemotePeers" }
}

string_enum! {
    /// Which kind of peer the rule applies to.
    FilterPeerType { Ebgp = "eBGP", Ibgp = "iBGP" }
}

/// Prefix length bounds of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefixLength {
    /// Minimum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    /// Maximum length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One rule (the same shape for the V4 and V6 lists). Newer match fields
/// (`communities`, `asPathPrefix`, `priority`, `operations`) stay in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgpFilterRule {
    /// The CIDR to match with `match_operator`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub cidr: String,
    /// Prefix length bounds.
    #[serde(
        rename = "prefixLength",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prefix_length: Option<PrefixLength>,
    /// Route source.
    #[serde(
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<FilterMatchSource>,
    /// Outgoing interface glob.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface: String,
    /// How `cidr` is compared.
    #[serde(
        rename = "matchOperator",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub match_operator: Option<MatchOperator>,
    /// Peer type.
    #[serde(
        rename = "peerType",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub peer_type: Option<FilterPeerType>,
    /// Accept or Reject (always written).
    pub action: FilterAction,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `BGPFilterSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpFilterSpec {
    /// IPv4 export rules.
    #[serde(
        rename = "exportV4",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub export_v4: Vec<BgpFilterRule>,
    /// IPv4 import rules.
    #[serde(
        rename = "importV4",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_v4: Vec<BgpFilterRule>,
    /// IPv6 export rules.
    #[serde(
        rename = "exportV6",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub export_v6: Vec<BgpFilterRule>,
    /// IPv6 import rules.
    #[serde(
        rename = "importV6",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_v6: Vec<BgpFilterRule>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for BgpFilterSpec {
    const KIND: ResourceKind = ResourceKind::BgpFilter;
}
