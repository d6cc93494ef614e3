//! The KIND argument of `get` and `delete`: a kind name in any case, its
//! plural, or one of calicoctl's short names.

use manul_datastore::ResourceKind;

use crate::error::{Failure, fail};

/// Short names calicoctl accepts, besides the kind and its plural.
const ALIASES: &[(&str, ResourceKind)] = &[
    ("ipp", ResourceKind::IpPool),
    ("ipps", ResourceKind::IpPool),
    ("pool", ResourceKind::IpPool),
    ("pools", ResourceKind::IpPool),
    ("bgpconfig", ResourceKind::BgpConfiguration),
    ("bgpconfigs", ResourceKind::BgpConfiguration),
    ("bgpp", ResourceKind::BgpPeer),
    ("bgpps", ResourceKind::BgpPeer),
    ("bp", ResourceKind::BgpPeer),
    ("bps", ResourceKind::BgpPeer),
    ("no", ResourceKind::Node),
    ("wep", ResourceKind::WorkloadEndpoint),
    ("weps", ResourceKind::WorkloadEndpoint),
    ("np", ResourceKind::NetworkPolicy),
    ("netpol", ResourceKind::NetworkPolicy),
    ("netpols", ResourceKind::NetworkPolicy),
    ("policy", ResourceKind::NetworkPolicy),
    ("policies", ResourceKind::NetworkPolicy),
    ("pol", ResourceKind::NetworkPolicy),
    ("pols", ResourceKind::NetworkPolicy),
    ("gnp", ResourceKind::GlobalNetworkPolicy),
    ("gnps", ResourceKind::GlobalNetworkPolicy),
    ("globalpolicy", ResourceKind::GlobalNetworkPolicy),
    ("globalpolicies", ResourceKind::GlobalNetworkPolicy),
    ("netset", ResourceKind::NetworkSet),
    ("netsets", ResourceKind::NetworkSet),
    ("gns", ResourceKind::GlobalNetworkSet),
    ("globalnetset", ResourceKind::GlobalNetworkSet),
    ("globalnetsets", ResourceKind::GlobalNetworkSet),
    ("hep", ResourceKind::HostEndpoint),
    ("heps", ResourceKind::HostEndpoint),
    ("pro", ResourceKind::Profile),
    ("pros", ResourceKind::Profile),
    ("felixconfig", ResourceKind::FelixConfiguration),
    ("felixconfigs", ResourceKind::FelixConfiguration),
];

/// The kind `arg` names, ignoring case; `None` when it names none.
pub fn lookup(arg: &str) -> Option<ResourceKind> {
    let arg = arg.to_ascii_lowercase();
    let arg = arg
        .strip_suffix(".projectcalico.org")
        .unwrap_or(arg.as_str());
    ResourceKind::ALL
        .into_iter()
        .find(|k| {
            let kind = k.kind().to_ascii_lowercase();
            arg == kind || arg == k.plural() || arg == format!("{kind}s")
        })
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(alias, _)| *alias == arg)
                .map(|(_, k)| *k)
        })
}

/// Every kind with its plural, for messages and help.
pub fn known_kinds() -> String {
    ResourceKind::ALL
        .iter()
        .map(|k| format!("{} ({})", k.kind(), k.plural()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`lookup`], or an invalid-input error listing the kinds.
pub fn parse(arg: &str) -> anyhow::Result<ResourceKind> {
    lookup(arg).ok_or_else(|| {
        fail(
            Failure::Invalid,
            format!(
                "unknown resource kind {arg:?}: use one of {} (case does not matter)",
                known_kinds()
            ),
        )
    })
}

/// `ippool.projectcalico.org/NAME`, how apply and delete name an object.
pub fn display_name(kind: ResourceKind, namespace: Option<&str>, name: &str) -> String {
    let base = format!(
        "{}.projectcalico.org/{name}",
        kind.kind().to_ascii_lowercase()
    );
    match namespace {
        Some(ns) => format!("{base} (namespace {ns})"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kinds_plurals_and_short_names_in_any_case() {
        for (arg, kind) in [
            ("ippool", ResourceKind::IpPool),
            ("IPPool", ResourceKind::IpPool),
            ("ippools", ResourceKind::IpPool),
            ("IPPools", ResourceKind::IpPool),
            ("ippool.projectcalico.org", ResourceKind::IpPool),
            ("bgppeers", ResourceKind::BgpPeer),
            ("BGPPeer", ResourceKind::BgpPeer),
            ("bgpconfig", ResourceKind::BgpConfiguration),
            ("bgpconfigurations", ResourceKind::BgpConfiguration),
            ("BGPFilter", ResourceKind::BgpFilter),
            ("nodes", ResourceKind::Node),
            ("wep", ResourceKind::WorkloadEndpoint),
            ("WorkloadEndpoints", ResourceKind::WorkloadEndpoint),
        ] {
            assert_eq!(lookup(arg), Some(kind), "{arg}");
        }
        for (arg, kind) in [
            ("networkpolicy", ResourceKind::NetworkPolicy),
            ("NetworkPolicies", ResourceKind::NetworkPolicy),
            ("gnp", ResourceKind::GlobalNetworkPolicy),
            ("globalnetworkpolicies", ResourceKind::GlobalNetworkPolicy),
            ("networksets", ResourceKind::NetworkSet),
            ("GlobalNetworkSet", ResourceKind::GlobalNetworkSet),
            ("hep", ResourceKind::HostEndpoint),
            ("profiles", ResourceKind::Profile),
            ("felixconfiguration", ResourceKind::FelixConfiguration),
            ("felixconfig", ResourceKind::FelixConfiguration),
        ] {
            assert_eq!(lookup(arg), Some(kind), "{arg}");
        }
        assert_eq!(lookup("kubecontrollersconfiguration"), None);
        let err = parse("pods").unwrap_err();
        assert!(err.to_string().contains("IPPool (ippools)"), "{err}");
    }
}
