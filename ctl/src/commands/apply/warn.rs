//! Warnings `apply` prints for objects that are valid and will be
//! written, but that manul-node will not fully honour: said before the
//! write, on standard error, so the operator knows what their nodes need.

use manul_datastore::ResourceKind;
use manul_datastore::resources::{IpipMode, RawResource};
use manul_status::HONOURED_FIELDS;

use super::plan::Item;
use crate::object::Object;

/// What manul-node does not do with a kind it stores but does not act on.
fn not_acted_on(kind: ResourceKind) -> Option<&'static str> {
    match kind {
        ResourceKind::NetworkPolicy
        | ResourceKind::GlobalNetworkPolicy
        | ResourceKind::NetworkSet
        | ResourceKind::GlobalNetworkSet
        | ResourceKind::Profile => Some(
            "does not enforce network policy: nodes running it do not apply these rules \
             (run calico-node, or another policy engine, where policy must be enforced)",
        ),
        ResourceKind::HostEndpoint => {
            Some("does not protect host interfaces: no policy is applied to this endpoint")
        }
        _ => None,
    }
}

/// The FelixConfiguration fields set that manul-node does not act on, if
/// any (it honours [`HONOURED_FIELDS`] live and lists the rest as not
/// supported on its `/status`).
fn felix_fields(r: &RawResource) -> Option<String> {
    let ignored: Vec<&str> = r
        .spec
        .iter()
        .filter(|(f, v)| !v.is_null() && !HONOURED_FIELDS.contains(&f.as_str()))
        .map(|(f, _)| f.as_str())
        .collect();
    (!ignored.is_empty()).then(|| {
        format!(
            "warning: FelixConfiguration {:?}: manul-node does not act on {}; it honours \
             only {} (listed as not supported under felix_configuration in `manulctl node \
             status`).",
            r.metadata.name,
            ignored.join(", "),
            HONOURED_FIELDS.join(", "),
        )
    })
}

/// One line per object that manul-node will not fully honour.
pub fn warnings(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match &item.desired {
            Object::IpPool(p) => {
                let mode = p.spec.ipip_mode();
                (mode != IpipMode::Never).then(|| {
                    format!(
                        "warning: IPPool {:?}: ipipMode {mode}: manul-node does not build IPIP \
                         tunnels; nodes running it leave this pool's remote routes out (and \
                         say so in `manulctl node status`). Nodes that carry this pool need \
                         calico-node with the kernel's ipip module; with manul-node use \
                         vxlanMode {mode} and ipipMode Never instead.",
                        p.metadata.name
                    )
                })
            }
            Object::Raw(ResourceKind::FelixConfiguration, r) => felix_fields(r),
            Object::Raw(kind, r) => not_acted_on(*kind).map(|what| {
                format!(
                    "warning: {kind} {:?}: stored for calicoctl and Calico's own agents; \
                     manul-node {what}.",
                    r.metadata.name
                )
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn felix(spec: &str) -> RawResource {
        let json = format!(
            r#"{{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{{"name":"default"}},"spec":{spec}}}"#
        );
        manul_datastore::resources::decode_raw(ResourceKind::FelixConfiguration, json.as_bytes())
            .unwrap()
    }

    #[test]
    fn felix_configuration_warns_naming_the_fields_not_acted_on() {
        let w = felix_fields(&felix(
            r#"{"logSeverityScreen":"Debug","chainInsertMode":"Append","bpfEnabled":true}"#,
        ))
        .unwrap();
        assert!(
            w.contains("does not act on bpfEnabled, chainInsertMode;"),
            "{w}"
        );
        assert!(
            w.contains(
                "honours only logSeverityScreen, routeRefreshInterval, vxlanMTU, vxlanMTUV6"
            ),
            "{w}"
        );
        assert_eq!(
            felix_fields(&felix(r#"{"logSeverityScreen":"Debug","vxlanMTU":1400}"#)),
            None
        );
    }
}
