//! Warnings `apply` prints for objects that are valid and will be
//! written, but that manul-node will not fully honour: said before the
//! write, on standard error, so the operator knows what their nodes need.

use manul_datastore::ResourceKind;
use manul_datastore::resources::IpipMode;

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
        ResourceKind::FelixConfiguration => Some(
            "does not read FelixConfiguration yet: its fields do not change manul's felix \
             (see issue 17)",
        ),
        _ => None,
    }
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
