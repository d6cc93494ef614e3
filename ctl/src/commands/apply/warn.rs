//! Warnings `apply` prints for objects that are valid and will be
//! written, but that manul-node will not fully honour: said before the
//! write, on standard error, so the operator knows what their nodes need.

use manul_datastore::resources::IpipMode;

use super::plan::Item;
use crate::object::Object;

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
            _ => None,
        })
        .collect()
}
