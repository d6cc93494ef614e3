//! Validation of resources, with errors that name the object and field.
//!
//! Each `validate_*` function returns every problem it finds, not just the
//! first. The rules are Calico's: masked pool CIDRs, block size ranges,
//! encapsulation modes, non-overlapping pools, AS numbers, BGPPeer field
//! exclusions, peer addresses, community values, selector syntax and
//! BGPFilter rules.

mod bgp;
mod community;
mod felix;
mod filter;
mod peer_ip;
mod policy;
mod pool;
mod rule;
mod sets;

use std::fmt;

pub use bgp::{validate_bgp_configuration, validate_bgp_peer, validate_node};
pub use community::{CommunityValue, parse_community};
pub use filter::validate_bgp_filter;
pub use peer_ip::{PeerAddr, parse_peer_ip};
pub use pool::{overlapping_pools, validate_ip_pool};
pub use rule::{ACTIONS, PROTOCOLS, is_label, is_name};

use crate::asn::AsNumber;
use crate::keys::ResourceKind;
use crate::resources::RawResource;
use crate::selector::{Selector, SelectorError};

/// One problem with one field of one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {problem}")]
pub struct ValidationError {
    /// The object, e.g. `IPPool "default-ipv4"`.
    pub object: String,
    /// The field path, e.g. `spec.blockSize`.
    pub field: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A CIDR with host bits set.
    #[error("{cidr} has host bits set; the network is {masked}")]
    NotMasked {
        /// As given.
        cidr: String,
        /// With the host bits cleared.
        masked: String,
    },
    /// Block size outside the family's range.
    #[error("block size {size} is out of range: IPv{family} allows {min} to {max}")]
    BlockSizeRange {
        /// The size given.
        size: u32,
        /// 4 or 6.
        family: u8,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The pool is smaller than one block.
    #[error("pool /{pool_len} cannot hold one /{block_size} block; use blockSize >= {pool_len}")]
    PoolSmallerThanBlock {
        /// The pool's prefix length.
        pool_len: u8,
        /// The block size.
        block_size: u32,
    },
    /// IPIP on an IPv6 pool.
    #[error("IPIP is not supported on IPv6 pools; set ipipMode to Never")]
    IpipOnIpv6,
    /// Both encapsulations enabled.
    #[error("ipipMode {ipip} and vxlanMode {vxlan} cannot both be enabled; set one to Never")]
    BothEncapsulations {
        /// The IPIP mode.
        ipip: String,
        /// The VXLAN mode.
        vxlan: String,
    },
    /// A value outside an enumeration.
    #[error("unknown value {value:?}; expected one of {expected}")]
    UnknownValue {
        /// The value given.
        value: String,
        /// The allowed values, comma-separated.
        expected: String,
    },
    /// Two pools share addresses.
    #[error("{cidr} overlaps IPPool {other:?} ({other_cidr})")]
    Overlap {
        /// This pool's CIDR.
        cidr: String,
        /// The other pool's name.
        other: String,
        /// The other pool's CIDR.
        other_cidr: String,
    },
    /// AS number 0.
    #[error("AS number 0 is not valid; use 1 to 4294967295")]
    AsNumberZero,
    /// Two fields that may not both be set.
    #[error("cannot be set together with {other}")]
    Exclusive {
        /// The other field.
        other: &'static str,
    },
    /// Not a valid address, CIDR, port or duration.
    #[error("{value:?} is not {expected}")]
    Malformed {
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A bad community value.
    #[error("{0}")]
    Community(String),
    /// A community name that is not defined in `spec.communities`.
    #[error("{0:?} is neither a community value nor a name defined in spec.communities")]
    UnknownCommunity(String),
    /// A selector that does not parse.
    #[error("{0}")]
    Selector(SelectorError),
    /// A field that must be set.
    #[error("must be set")]
    Required,
    /// A value manul cannot honour (it would be dropped, or do nothing).
    #[error("{0}")]
    Unsupported(String),
    /// One of Calico's rules, stated.
    #[error("{0}")]
    Rule(String),
}

/// Checks an object of a kind manul stores as raw JSON (see
/// [`ResourceKind::modelled`]) by that kind's rules: its name (and
/// namespace), then its spec. Modelled kinds have their own `validate_*`;
/// given one, only the name is checked.
pub fn validate_raw(kind: ResourceKind, r: &RawResource) -> Result<(), ValidationErrors> {
    let mut report = Report::new(kind.kind(), &r.metadata.name);
    let namespace = kind.namespaced().then_some(r.metadata.namespace.as_str());
    report.names(&r.metadata.name, namespace);
    let spec = &r.spec;
    match kind {
        ResourceKind::NetworkPolicy => policy::network_policy(&mut report, spec),
        ResourceKind::GlobalNetworkPolicy => policy::global_network_policy(&mut report, spec),
        ResourceKind::Profile => policy::profile(&mut report, spec),
        ResourceKind::NetworkSet | ResourceKind::GlobalNetworkSet => {
            sets::network_set(&mut report, spec)
        }
        ResourceKind::HostEndpoint => sets::host_endpoint(&mut report, spec),
        ResourceKind::FelixConfiguration => felix::felix_configuration(&mut report, spec),
        ResourceKind::IpReservation => ip_reservation(&mut report, spec),
        ResourceKind::IpPool
        | ResourceKind::BgpConfiguration
        | ResourceKind::BgpPeer
        | ResourceKind::BgpFilter
        | ResourceKind::Node
        | ResourceKind::WorkloadEndpoint => {}
    }
    report.finish()
}

/// An IPReservation's spec, by the typed check IPAM's reader shares
/// ([`crate::resources::validate_ip_reservation`]).
fn ip_reservation(report: &mut Report, spec: &serde_json::Map<String, serde_json::Value>) {
    use crate::resources::{IpReservation, IpReservationSpec, validate_ip_reservation};
    match serde_json::from_value::<IpReservationSpec>(serde_json::Value::Object(spec.clone())) {
        Ok(spec) => {
            let mut r = IpReservation::new("", Vec::new());
            r.spec = spec;
            if let Err(errors) = validate_ip_reservation(&r) {
                for e in errors {
                    report.push(e.field, e.problem);
                }
            }
        }
        Err(e) => report.push(
            "spec.reservedCIDRs",
            Problem::Malformed {
                value: e.to_string(),
                expected: "a list of IP addresses and CIDRs",
            },
        ),
    }
}

/// Every problem found in one or more objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl ValidationErrors {
    /// Whether any problem with `field` was found.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Collects problems for one object.
struct Report {
    object: String,
    errors: ValidationErrors,
}

impl Report {
    fn new(kind: &str, name: &str) -> Self {
        Report {
            object: format!("{kind} {name:?}"),
            errors: ValidationErrors::default(),
        }
    }

    fn push(&mut self, field: impl Into<String>, problem: Problem) {
        self.errors.0.push(ValidationError {
            object: self.object.clone(),
            field: field.into(),
            problem,
        });
    }

    fn as_number(&mut self, field: &str, asn: Option<AsNumber>) {
        if asn == Some(AsNumber(0)) {
            self.push(field, Problem::AsNumberZero);
        }
    }

    fn selector(&mut self, field: &str, s: &str) {
        if let Err(e) = Selector::parse(s) {
            self.push(field, Problem::Selector(e));
        }
    }

    fn known<T: AsRef<str>>(&mut self, field: &str, value: &str, is_known: bool, known: &[T]) {
        if !is_known {
            let expected = known
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", ");
            self.push(
                field,
                Problem::UnknownValue {
                    value: value.to_owned(),
                    expected,
                },
            );
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        self.errors.into_result()
    }
}
