//! IPPool (`ippools`): a range pods and tunnels take addresses from.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::ResourceKind;
use crate::meta::{Resource, ResourceSpec};
use crate::serde_util::{is_false, is_zero, null_default, opt_string_enum, string_enum};

/// An IPPool object.
pub type IpPool = Resource<IpPoolSpec>;

/// The node selector a pool has when none is set.
pub const DEFAULT_NODE_SELECTOR: &str = "all()";

string_enum! {
    /// `ipipMode`: when to encapsulate in IP-in-IP.
    IpipMode { Never = "Never", Always = "Always", CrossSubnet = "CrossSubnet" }
}

string_enum! {
    /// `vxlanMode`: when to encapsulate in VXLAN.
    VxlanMode { Never = "Never", Always = "Always", CrossSubnet = "CrossSubnet" }
}

string_enum! {
    /// One of `allowedUses`.
    AllowedUse { Workload = "Workload", Tunnel = "Tunnel", LoadBalancer = "LoadBalancer" }
}

string_enum! {
    /// `assignmentMode`: whether IPAM picks from this pool on its own.
    AssignmentMode { Automatic = "Automatic", Manual = "Manual" }
}

/// `IPPoolSpec`. Deprecated v1 fields (`ipip`, `nat-outgoing`) and fields
/// added by later Calico versions stay in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpPoolSpec {
    /// The pool's range; must be masked (validation checks).
    pub cidr: IpNet,
    /// VXLAN mode; absent means Never.
    #[serde(
        rename = "vxlanMode",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_mode: Option<VxlanMode>,
    /// IPIP mode; absent means Never.
    #[serde(
        rename = "ipipMode",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipip_mode: Option<IpipMode>,
    /// Masquerade traffic leaving the pool.
    #[serde(
        rename = "natOutgoing",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub nat_outgoing: bool,
    /// No new allocations from this pool.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disabled: bool,
    /// Do not advertise this pool's routes over BGP.
    #[serde(
        rename = "disableBGPExport",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disable_bgp_export: bool,
    /// Block prefix length; 0 (absent) means the default, see
    /// [`IpPoolSpec::block_size`].
    #[serde(
        rename = "blockSize",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub block_size: u32,
    /// Which nodes may use the pool; empty means `all()`.
    #[serde(
        rename = "nodeSelector",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node_selector: String,
    /// Which namespaces may use the pool; empty means any.
    #[serde(
        rename = "namespaceSelector",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace_selector: String,
    /// What the pool is for; empty means Workload and Tunnel.
    #[serde(
        rename = "allowedUses",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_uses: Vec<AllowedUse>,
    /// Automatic or manual assignment; absent means Automatic.
    #[serde(
        rename = "assignmentMode",
        default,
        deserialize_with = "opt_string_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub assignment_mode: Option<AssignmentMode>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceSpec for IpPoolSpec {
    const KIND: ResourceKind = ResourceKind::IpPool;
}

impl IpPoolSpec {
    /// A pool of this range with nothing else set.
    pub fn new(cidr: IpNet) -> Self {
        IpPoolSpec {
            cidr,
            vxlan_mode: None,
            ipip_mode: None,
            nat_outgoing: false,
            disabled: false,
            disable_bgp_export: false,
            block_size: 0,
            node_selector: String::new(),
            namespace_selector: String::new(),
            allowed_uses: Vec::new(),
            assignment_mode: None,
            extra: Map::new(),
        }
    }

    /// The default block size for this pool's family: 26 (IPv4), 122 (IPv6).
    pub fn default_block_size(&self) -> u32 {
        match self.cidr {
            IpNet::V4(_) => 26,
            IpNet::V6(_) => 122,
        }
    }

    /// The effective block size.
    pub fn block_size(&self) -> u32 {
        if self.block_size == 0 {
            self.default_block_size()
        } else {
            self.block_size
        }
    }

    /// The effective node selector (`all()` when empty).
    pub fn node_selector(&self) -> &str {
        if self.node_selector.is_empty() {
            DEFAULT_NODE_SELECTOR
        } else {
            &self.node_selector
        }
    }

    /// The effective IPIP mode.
    pub fn ipip_mode(&self) -> IpipMode {
        self.ipip_mode.clone().unwrap_or(IpipMode::Never)
    }

    /// The effective VXLAN mode.
    pub fn vxlan_mode(&self) -> VxlanMode {
        self.vxlan_mode.clone().unwrap_or(VxlanMode::Never)
    }

    /// The effective allowed uses (`[Workload, Tunnel]` when empty).
    pub fn allowed_uses(&self) -> Vec<AllowedUse> {
        if self.allowed_uses.is_empty() {
            vec![AllowedUse::Workload, AllowedUse::Tunnel]
        } else {
            self.allowed_uses.clone()
        }
    }

    /// Whether the pool may be used for `use_`.
    pub fn allows(&self, use_: &AllowedUse) -> bool {
        self.allowed_uses().contains(use_)
    }

    /// The effective assignment mode.
    pub fn assignment_mode(&self) -> AssignmentMode {
        self.assignment_mode
            .clone()
            .unwrap_or(AssignmentMode::Automatic)
    }

    /// Writes the defaults into the object, as Calico's client does when a
    /// pool is created: block size, node selector, both modes, allowed uses
    /// and assignment mode.
    pub fn fill_defaults(&mut self) {
        self.block_size = self.block_size();
        self.node_selector = self.node_selector().to_owned();
        self.ipip_mode = Some(self.ipip_mode());
        self.vxlan_mode = Some(self.vxlan_mode());
        self.allowed_uses = self.allowed_uses();
        self.assignment_mode = Some(self.assignment_mode());
    }
}
