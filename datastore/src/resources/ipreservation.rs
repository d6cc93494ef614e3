//! IPReservation (`ipreservations`): addresses Calico IPAM never assigns
//! automatically (libcalico-go `api/pkg/apis/projectcalico/v3/ipreservation.go`).
//!
//! Key `/calico/resources/v3/projectcalico.org/ipreservations/<name>`;
//! JSON `{"kind":"IPReservation","apiVersion":"projectcalico.org/v3",
//! "metadata":{"name":...},"spec":{"reservedCIDRs":["192.168.2.3",
//! "10.0.2.0/24"]}}`. Calico validates each entry with `cidrs`
//! (`cnet.ParseCIDROrIP`): an address or a CIDR, either family. An
//! address reserves itself (/32, /128); a CIDR with host bits set is
//! accepted as Calico accepts it and reserves its network (Go's
//! `net.ParseCIDR` masks it), as [`IpReservationSpec::reserved`] gives it.
//! The stored text is never rewritten. Reservations apply to automatic
//! assignment only, not to an address asked for by name (Calico's docs:
//! "should not use when automatically assigning new IP addresses").

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::meta::ObjectMeta;
use crate::serde_util::null_default;
use crate::validate::{Problem, ValidationError};

/// The `kind` value.
pub const KIND: &str = "IPReservation";

/// The etcd prefix of every IPReservation.
pub const PREFIX: &str = "/calico/resources/v3/projectcalico.org/ipreservations/";

/// The etcd key of IPReservation `name`.
pub fn ip_reservation_key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// An IPReservation object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpReservation {
    /// `IPReservation`.
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// `projectcalico.org/v3`.
    #[serde(rename = "apiVersion", default, deserialize_with = "null_default")]
    pub api_version: String,
    /// Name, labels and the rest.
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    /// The reserved ranges.
    #[serde(default, deserialize_with = "null_default")]
    pub spec: IpReservationSpec,
    /// Top-level fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `IPReservationSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpReservationSpec {
    /// Addresses and CIDRs IPAM excludes from automatic assignment, as
    /// written.
    #[serde(
        rename = "reservedCIDRs",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reserved_cidrs: Vec<String>,
    /// Fields added by later Calico versions, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `reservedCIDRs` entry as Calico reads it (`ParseCIDROrIP`): its
/// network, host bits cleared; `None` when it is neither.
pub fn parse_reserved(s: &str) -> Option<IpNet> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

impl IpReservationSpec {
    /// The reserved networks; entries that do not parse are skipped (the
    /// object's validation refuses them).
    pub fn reserved(&self) -> Vec<IpNet> {
        self.reserved_cidrs
            .iter()
            .filter_map(|s| parse_reserved(s))
            .collect()
    }
}

impl IpReservation {
    /// A reservation of these entries.
    pub fn new(name: &str, reserved_cidrs: Vec<String>) -> Self {
        IpReservation {
            kind: KIND.into(),
            api_version: crate::API_VERSION.into(),
            metadata: ObjectMeta {
                name: name.into(),
                ..Default::default()
            },
            spec: IpReservationSpec {
                reserved_cidrs,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    /// The JSON stored in etcd.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Calico's validation of an IPReservation: every `spec.reservedCIDRs`
/// entry an address or a CIDR (the field and index named).
pub fn validate_ip_reservation(r: &IpReservation) -> Result<(), Vec<ValidationError>> {
    let object = format!("{KIND} {:?}", r.metadata.name);
    let errors: Vec<ValidationError> = r
        .spec
        .reserved_cidrs
        .iter()
        .enumerate()
        .filter(|(_, s)| parse_reserved(s).is_none())
        .map(|(i, s)| ValidationError {
            object: object.clone(),
            field: format!("spec.reservedCIDRs[{i}]"),
            problem: Problem::Malformed {
                value: s.clone(),
                expected: "an IP address or a CIDR",
            },
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calicos_json_and_keeps_unknown_fields() {
        let json = r#"{"kind":"IPReservation","apiVersion":"projectcalico.org/v3","metadata":{"name":"r1","creationTimestamp":null},"spec":{"reservedCIDRs":["192.168.2.3","10.0.2.3/32","cafe:f00d::/123"],"later":1}}"#;
        let r: IpReservation = serde_json::from_str(json).unwrap();
        assert_eq!(r.metadata.name, "r1");
        assert_eq!(
            r.spec.reserved(),
            ["192.168.2.3/32", "10.0.2.3/32", "cafe:f00d::/123"]
                .map(|s| s.parse::<IpNet>().unwrap())
        );
        let back: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(back["spec"]["later"], 1);
        assert_eq!(back["spec"]["reservedCIDRs"][2], "cafe:f00d::/123");
        assert!(validate_ip_reservation(&r).is_ok());
        let empty: IpReservation = serde_json::from_str(
            r#"{"kind":"IPReservation","metadata":{"name":"e"},"spec":{"reservedCIDRs":null}}"#,
        )
        .unwrap();
        assert!(empty.spec.reserved().is_empty());
    }

    #[test]
    fn an_unmasked_cidr_reserves_its_network_and_garbage_is_refused_by_field() {
        assert_eq!(
            parse_reserved("10.0.0.5/24"),
            Some("10.0.0.0/24".parse().unwrap())
        );
        let r = IpReservation::new(
            "bad",
            vec!["10.0.0.1".into(), "10.0.0.0/33".into(), "nonsense".into()],
        );
        let errs = validate_ip_reservation(&r).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.reservedCIDRs[1]", "spec.reservedCIDRs[2]"]);
        assert_eq!(
            errs[1].to_string(),
            "IPReservation \"bad\": spec.reservedCIDRs[2]: \"nonsense\" is not an IP address or a CIDR"
        );
    }
}
