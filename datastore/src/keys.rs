//! The etcd key layout, in one place, both directions.
//!
//! | what | key |
//! |---|---|
//! | resource | `/calico/resources/v3/projectcalico.org/<plural>/<name>` |
//! | namespaced resource | `/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>` |
//! | block | `/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26` |
//! | block affinity | `/calico/ipam/v2/host/<node>/ipv4/block/10.0.0.0-26` |
//! | handle | `/calico/ipam/v2/handle/<handle_id>` |
//! | IPAM config | `/calico/ipam/v2/config` |
//!
//! In block and affinity keys the CIDR's `/` becomes `-` (IPv6 keeps its
//! `:`), and the family segment (`ipv4`/`ipv6`) must match the CIDR. Block
//! CIDRs in keys must be masked and in canonical form, so a parsed key
//! always prints back to the same string. Name segments may not be empty or
//! contain `/`. Prefix helpers end in `/`, so a host's prefix never matches
//! another host whose name starts the same.

use std::fmt;

use ipnet::IpNet;

/// Root of all v3 resources.
pub const RESOURCES_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Root of all IPAM records.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
const BLOCKS_PREFIX: &str = "/calico/ipam/v2/assignment/";
const HOSTS_PREFIX: &str = "/calico/ipam/v2/host/";
const HANDLES_PREFIX: &str = "/calico/ipam/v2/handle/";
/// The IPAM config key.
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// The resource kinds manul knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `IPPool`.
    IpPool,
    /// `BGPConfiguration`.
    BgpConfiguration,
    /// `BGPPeer`.
    BgpPeer,
    /// `BGPFilter`.
    BgpFilter,
    /// `Node`.
    Node,
    /// `WorkloadEndpoint` (namespaced).
    WorkloadEndpoint,
    /// `NetworkPolicy` (namespaced; stored, not enforced by manul).
    NetworkPolicy,
    /// `GlobalNetworkPolicy` (stored, not enforced by manul).
    GlobalNetworkPolicy,
    /// `NetworkSet` (namespaced; stored, not used by manul).
    NetworkSet,
    /// `GlobalNetworkSet` (stored, not used by manul).
    GlobalNetworkSet,
    /// `HostEndpoint` (stored, not used by manul).
    HostEndpoint,
    /// `Profile` (stored, not used by manul).
    Profile,
    /// `FelixConfiguration` (`default` or `node.<name>`).
    FelixConfiguration,
    /// `IPReservation` (read by IPAM as
    /// [`crate::resources::IpReservation`]).
    IpReservation,
}

impl ResourceKind {
    /// Every kind.
    pub const ALL: [ResourceKind; 14] = [
        ResourceKind::IpPool,
        ResourceKind::BgpConfiguration,
        ResourceKind::BgpPeer,
        ResourceKind::BgpFilter,
        ResourceKind::Node,
        ResourceKind::WorkloadEndpoint,
        ResourceKind::NetworkPolicy,
        ResourceKind::GlobalNetworkPolicy,
        ResourceKind::NetworkSet,
        ResourceKind::GlobalNetworkSet,
        ResourceKind::HostEndpoint,
        ResourceKind::Profile,
        ResourceKind::FelixConfiguration,
        ResourceKind::IpReservation,
    ];

    /// The `kind` field value.
    pub fn kind(self) -> &'static str {
        match self {
            ResourceKind::IpPool => "IPPool",
            ResourceKind::BgpConfiguration => "BGPConfiguration",
            ResourceKind::BgpPeer => "BGPPeer",
            ResourceKind::BgpFilter => "BGPFilter",
            ResourceKind::Node => "Node",
            ResourceKind::WorkloadEndpoint => "WorkloadEndpoint",
            ResourceKind::NetworkPolicy => "NetworkPolicy",
            ResourceKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            ResourceKind::NetworkSet => "NetworkSet",
            ResourceKind::GlobalNetworkSet => "GlobalNetworkSet",
            ResourceKind::HostEndpoint => "HostEndpoint",
            ResourceKind::Profile => "Profile",
            ResourceKind::FelixConfiguration => "FelixConfiguration",
            ResourceKind::IpReservation => "IPReservation",
        }
    }

    /// The key segment (lower-case plural).
    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::IpPool => "ippools",
            ResourceKind::BgpConfiguration => "bgpconfigurations",
            ResourceKind::BgpPeer => "bgppeers",
            ResourceKind::BgpFilter => "bgpfilters",
            ResourceKind::Node => "nodes",
            ResourceKind::WorkloadEndpoint => "workloadendpoints",
            ResourceKind::NetworkPolicy => "networkpolicies",
            ResourceKind::GlobalNetworkPolicy => "globalnetworkpolicies",
            ResourceKind::NetworkSet => "networksets",
            ResourceKind::GlobalNetworkSet => "globalnetworksets",
            ResourceKind::HostEndpoint => "hostendpoints",
            ResourceKind::Profile => "profiles",
            ResourceKind::FelixConfiguration => "felixconfigurations",
            ResourceKind::IpReservation => "ipreservations",
        }
    }

    /// Whether keys of this kind carry a namespace.
    pub fn namespaced(self) -> bool {
        matches!(
            self,
            ResourceKind::WorkloadEndpoint | ResourceKind::NetworkPolicy | ResourceKind::NetworkSet
        )
    }

    /// Whether manul models this kind field by field; the others are
    /// stored as raw JSON ([`crate::resources::RawResource`]) and checked
    /// by [`crate::validate::validate_raw`].
    pub fn modelled(self) -> bool {
        matches!(
            self,
            ResourceKind::IpPool
                | ResourceKind::BgpConfiguration
                | ResourceKind::BgpPeer
                | ResourceKind::BgpFilter
                | ResourceKind::Node
                | ResourceKind::WorkloadEndpoint
        )
    }

    /// The kind whose plural is `plural`.
    pub fn from_plural(plural: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// The kind whose `kind` field is `kind`.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// What a key identifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A v3 resource.
    Resource {
        /// Its kind.
        kind: ResourceKind,
        /// Its namespace (namespaced kinds only).
        namespace: Option<String>,
        /// Its name.
        name: String,
    },
    /// An allocation block.
    Block {
        /// The block's range.
        cidr: IpNet,
    },
    /// A node's affinity to a block.
    BlockAffinity {
        /// The node.
        host: String,
        /// The block's range.
        cidr: IpNet,
    },
    /// An IPAM handle.
    Handle {
        /// The handle ID.
        id: String,
    },
    /// The IPAM config.
    IpamConfig,
}

/// A key that does not fit the layout, or an identity that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not under any known root, or the wrong number of segments.
    #[error("key {key:?} is not in Calico's layout: {reason}")]
    Layout {
        /// The key.
        key: String,
        /// What did not fit.
        reason: &'static str,
    },
    /// A resource plural manul does not know.
    #[error("key {key:?}: unknown resource type {plural:?}")]
    UnknownKind {
        /// The key.
        key: String,
        /// The plural segment.
        plural: String,
    },
    /// The CIDR segment is not a CIDR, not masked, not canonical, or of the
    /// other family than the key says.
    #[error("key {key:?}: bad block CIDR {segment:?}: {reason}")]
    Cidr {
        /// The key.
        key: String,
        /// The CIDR segment as in the key.
        segment: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A name segment that is empty or contains `/`.
    #[error("{what} {value:?} cannot be a key segment: it is empty or contains '/'")]
    Segment {
        /// Which segment (name, namespace, host, handle ID).
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A namespace given for a cluster-wide kind or missing for a namespaced one.
    #[error("{kind} key: {reason}")]
    Namespace {
        /// The kind.
        kind: ResourceKind,
        /// What is wrong.
        reason: &'static str,
    },
}

fn family(cidr: &IpNet) -> &'static str {
    match cidr {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// The key segment of a block CIDR: `10.0.0.0-26`, `fd00::-122`.
pub fn cidr_segment(cidr: &IpNet) -> String {
    format!("{}-{}", cidr.network(), cidr.prefix_len())
}

fn check_segment(what: &'static str, value: &str) -> Result<(), KeyError> {
    if value.is_empty() || value.contains('/') {
        return Err(KeyError::Segment {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn parse_cidr_segment(key: &str, fam: &str, seg: &str) -> Result<IpNet, KeyError> {
    let err = |reason| KeyError::Cidr {
        key: key.to_owned(),
        segment: seg.to_owned(),
        reason,
    };
    let (addr, len) = seg
        .rsplit_once('-')
        .ok_or_else(|| err("no '-' before the prefix length"))?;
    let cidr: IpNet = format!("{addr}/{len}")
        .parse()
        .map_err(|_| err("not a CIDR"))?;
    if family(&cidr) != fam {
        return Err(err("address family does not match the key"));
    }
    if cidr.trunc() != cidr {
        return Err(err("host bits are set"));
    }
    if cidr_segment(&cidr) != seg {
        return Err(err("not in canonical form"));
    }
    Ok(cidr)
}

impl Key {
    /// A cluster-wide resource's key identity.
    pub fn resource(kind: ResourceKind, name: impl Into<String>) -> Key {
        Key::Resource {
            kind,
            namespace: None,
            name: name.into(),
        }
    }

    /// A namespaced resource's key identity.
    pub fn namespaced(
        kind: ResourceKind,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Key {
        Key::Resource {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// The etcd key, checked: segments non-empty without `/`, namespace iff
    /// the kind is namespaced.
    pub fn path(&self) -> Result<String, KeyError> {
        match self {
            Key::Resource {
                kind,
                namespace,
                name,
            } => {
                check_segment("name", name)?;
                match (kind.namespaced(), namespace) {
                    (true, Some(ns)) => {
                        check_segment("namespace", ns)?;
                        Ok(format!("{RESOURCES_PREFIX}{}/{ns}/{name}", kind.plural()))
                    }
                    (false, None) => Ok(format!("{RESOURCES_PREFIX}{}/{name}", kind.plural())),
                    (true, None) => Err(KeyError::Namespace {
                        kind: *kind,
                        reason: "the kind is namespaced but no namespace was given",
                    }),
                    (false, Some(_)) => Err(KeyError::Namespace {
                        kind: *kind,
                        reason: "the kind is cluster-wide but a namespace was given",
                    }),
                }
            }
            Key::Block { cidr } => Ok(format!(
                "{BLOCKS_PREFIX}{}/block/{}",
                family(cidr),
                cidr_segment(&cidr.trunc())
            )),
            Key::BlockAffinity { host, cidr } => {
                check_segment("host", host)?;
                Ok(format!(
                    "{HOSTS_PREFIX}{host}/{}/block/{}",
                    family(cidr),
                    cidr_segment(&cidr.trunc())
                ))
            }
            Key::Handle { id } => {
                check_segment("handle ID", id)?;
                Ok(format!("{HANDLES_PREFIX}{id}"))
            }
            Key::IpamConfig => Ok(IPAM_CONFIG_KEY.to_owned()),
        }
    }

    /// What `key` identifies.
    pub fn parse(key: &str) -> Result<Key, KeyError> {
        let layout = |reason| KeyError::Layout {
            key: key.to_owned(),
            reason,
        };
        if key == IPAM_CONFIG_KEY {
            return Ok(Key::IpamConfig);
        }
        if let Some(rest) = key.strip_prefix(RESOURCES_PREFIX) {
            let parts: Vec<&str> = rest.split('/').collect();
            let plural = parts.first().copied().unwrap_or_default();
            let kind = ResourceKind::from_plural(plural).ok_or_else(|| KeyError::UnknownKind {
                key: key.to_owned(),
                plural: plural.to_owned(),
            })?;
            let parsed = match (kind.namespaced(), parts.as_slice()) {
                (true, [_, ns, name]) => Key::namespaced(kind, *ns, *name),
                (false, [_, name]) => Key::resource(kind, *name),
                (true, _) => return Err(layout("expected <plural>/<namespace>/<name>")),
                (false, _) => return Err(layout("expected <plural>/<name>")),
            };
            parsed
                .path()
                .map_err(|_| layout("empty name or namespace"))?;
            return Ok(parsed);
        }
        if let Some(rest) = key.strip_prefix(BLOCKS_PREFIX) {
            return match rest.split('/').collect::<Vec<_>>().as_slice() {
                [fam @ ("ipv4" | "ipv6"), "block", seg] => Ok(Key::Block {
                    cidr: parse_cidr_segment(key, fam, seg)?,
                }),
                _ => Err(layout("expected assignment/ipv4|ipv6/block/<cidr>")),
            };
        }
        if let Some(rest) = key.strip_prefix(HOSTS_PREFIX) {
            return match rest.split('/').collect::<Vec<_>>().as_slice() {
                [host, fam @ ("ipv4" | "ipv6"), "block", seg] if !host.is_empty() => {
                    Ok(Key::BlockAffinity {
                        host: (*host).to_owned(),
                        cidr: parse_cidr_segment(key, fam, seg)?,
                    })
                }
                _ => Err(layout("expected host/<node>/ipv4|ipv6/block/<cidr>")),
            };
        }
        if let Some(id) = key.strip_prefix(HANDLES_PREFIX) {
            if id.is_empty() || id.contains('/') {
                return Err(layout("expected handle/<id>"));
            }
            return Ok(Key::Handle { id: id.to_owned() });
        }
        Err(layout(
            "not under /calico/resources/v3/projectcalico.org/ or /calico/ipam/v2/",
        ))
    }
}

/// Prefixes for listing and watching ranges of keys. Each ends in `/`.
pub mod prefix {
    use super::{BLOCKS_PREFIX, HANDLES_PREFIX, HOSTS_PREFIX, RESOURCES_PREFIX, ResourceKind};

    /// Every v3 resource.
    pub fn all_resources() -> String {
        RESOURCES_PREFIX.to_owned()
    }

    /// Every object of a kind (all namespaces, for namespaced kinds).
    pub fn kind(kind: ResourceKind) -> String {
        format!("{RESOURCES_PREFIX}{}/", kind.plural())
    }

    /// Every object of a namespaced kind in one namespace.
    pub fn kind_in_namespace(kind: ResourceKind, namespace: &str) -> String {
        format!("{RESOURCES_PREFIX}{}/{namespace}/", kind.plural())
    }

    /// Every block, both families.
    pub fn all_blocks() -> String {
        BLOCKS_PREFIX.to_owned()
    }

    /// Every block of one family (`v6` false: IPv4).
    pub fn blocks(v6: bool) -> String {
        format!("{BLOCKS_PREFIX}ipv{}/block/", if v6 { 6 } else { 4 })
    }

    /// Every affinity of every node.
    pub fn all_affinities() -> String {
        HOSTS_PREFIX.to_owned()
    }

    /// Every affinity of one node.
    pub fn host_affinities(host: &str) -> String {
        format!("{HOSTS_PREFIX}{host}/")
    }

    /// Every handle.
    pub fn all_handles() -> String {
        HANDLES_PREFIX.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(key: &str, want: Key) {
        let got = Key::parse(key).unwrap();
        assert_eq!(got, want);
        assert_eq!(got.path().unwrap(), key);
    }

    #[test]
    fn round_trips() {
        let v4: IpNet = "10.0.0.0/26".parse().unwrap();
        let v6: IpNet = "fd00:10:244::/122".parse().unwrap();
        rt(
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
            Key::Block { cidr: v4 },
        );
        rt(
            "/calico/ipam/v2/assignment/ipv6/block/fd00:10:244::-122",
            Key::Block { cidr: v6 },
        );
        rt(
            "/calico/ipam/v2/host/node-1/ipv4/block/10.0.0.0-26",
            Key::BlockAffinity {
                host: "node-1".into(),
                cidr: v4,
            },
        );
        rt(
            "/calico/ipam/v2/host/node-1/ipv6/block/fd00:10:244::-122",
            Key::BlockAffinity {
                host: "node-1".into(),
                cidr: v6,
            },
        );
        rt(
            "/calico/ipam/v2/handle/k8s-pod-network.abc123",
            Key::Handle {
                id: "k8s-pod-network.abc123".into(),
            },
        );
        rt("/calico/ipam/v2/config", Key::IpamConfig);
        for kind in ResourceKind::ALL {
            if kind.namespaced() {
                rt(
                    &format!(
                        "/calico/resources/v3/projectcalico.org/{}/ns1/obj.1",
                        kind.plural()
                    ),
                    Key::namespaced(kind, "ns1", "obj.1"),
                );
            } else {
                rt(
                    &format!(
                        "/calico/resources/v3/projectcalico.org/{}/obj.1",
                        kind.plural()
                    ),
                    Key::resource(kind, "obj.1"),
                );
            }
        }
    }

    #[test]
    fn rejects_bad_keys() {
        let bad = [
            "",
            "/calico",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.1-26",
            "/calico/ipam/v2/assignment/ipv6/block/10.0.0.0-26",
            "/calico/ipam/v2/assignment/ipv4/block/fd00::-122",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-33",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0",
            "/calico/ipam/v2/assignment/ipv6/block/fd00:0::-122",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26/x",
            "/calico/ipam/v2/host//ipv4/block/10.0.0.0-26",
            "/calico/ipam/v2/host/n/ipv4/10.0.0.0-26",
            "/calico/ipam/v2/handle/",
            "/calico/ipam/v2/handle/a/b",
            "/calico/resources/v3/projectcalico.org/ippools/",
            "/calico/resources/v3/projectcalico.org/ippools/a/b",
            "/calico/resources/v3/projectcalico.org/workloadendpoints/ns",
            "/calico/resources/v3/projectcalico.org/kubecontrollersconfigurations/default",
        ];
        for k in bad {
            assert!(Key::parse(k).is_err(), "{k}");
        }
    }

    #[test]
    fn refuses_bad_identities() {
        assert!(Key::resource(ResourceKind::IpPool, "a/b").path().is_err());
        assert!(Key::resource(ResourceKind::IpPool, "").path().is_err());
        assert!(
            Key::resource(ResourceKind::WorkloadEndpoint, "x")
                .path()
                .is_err()
        );
        assert!(
            Key::namespaced(ResourceKind::Node, "ns", "x")
                .path()
                .is_err()
        );
        assert!(Key::Handle { id: "a/b".into() }.path().is_err());
        let cidr = "10.0.0.0/26".parse().unwrap();
        assert!(
            Key::BlockAffinity {
                host: String::new(),
                cidr
            }
            .path()
            .is_err()
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            prefix::host_affinities("node1"),
            "/calico/ipam/v2/host/node1/"
        );
        assert_eq!(
            prefix::blocks(false),
            "/calico/ipam/v2/assignment/ipv4/block/"
        );
        assert_eq!(
            prefix::blocks(true),
            "/calico/ipam/v2/assignment/ipv6/block/"
        );
        assert_eq!(prefix::all_blocks(), "/calico/ipam/v2/assignment/");
        assert_eq!(prefix::all_handles(), "/calico/ipam/v2/handle/");
        assert_eq!(
            prefix::kind(ResourceKind::IpPool),
            "/calico/resources/v3/projectcalico.org/ippools/"
        );
        assert_eq!(
            prefix::kind_in_namespace(ResourceKind::WorkloadEndpoint, "default"),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/"
        );
        let aff = Key::BlockAffinity {
            host: "node1".into(),
            cidr: "10.0.0.0/26".parse().unwrap(),
        };
        assert!(
            aff.path()
                .unwrap()
                .starts_with(&prefix::host_affinities("node1"))
        );
        assert!(
            !aff.path()
                .unwrap()
                .starts_with(&prefix::host_affinities("node"))
        );
        let blk = Key::Block {
            cidr: "fd00::/122".parse().unwrap(),
        };
        assert!(blk.path().unwrap().starts_with(&prefix::blocks(true)));
    }
}
