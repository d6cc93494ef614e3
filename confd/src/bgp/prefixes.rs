//! What this node advertises (pure), as Calico does: each confirmed block
//! affine to it, and a host route (/32, /128) for each address it uses
//! from another node's block — but nothing from a pool that is `disabled`
//! or has `disableBGPExport`, and nothing outside every pool (Calico's
//! export filter accepts only prefixes inside a pool). Pending or
//! pending-deletion affinities are not advertised.
//!
//! **Service address ranges**, as Calico's confd does them
//! (`updateGlobalRoutes`, the `/staticroutes` its BIRD templates export):
//! every CIDR in the *global* BGPConfiguration's `serviceClusterIPs`,
//! `serviceExternalIPs` and `serviceLoadBalancerIPs` (a node's own
//! BGPConfiguration does not carry them in Calico) is advertised by every
//! node, to every peer, mesh included, in or out of any pool — except by
//! a node labelled `node.kubernetes.io/exclude-from-external-load-balancers:
//! "true"`, which advertises none. No node programs a kernel route for
//! them, received or its own: Calico's `/rejectcidrs` keep them out of
//! BIRD's kernel protocol ([`service_ranges`] is what felix drops).
//!
//! Communities come from `prefixAdvertisements` (this node's
//! BGPConfiguration when it has any, else the global one): each entry
//! whose CIDR contains the prefix adds its communities, given as a name
//! from `communities` or as a literal `aa:nn` / `aa:nn:mm`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::resources::{BgpConfigurationSpec, IpPoolSpec};

use super::globals::configs;
use super::view::{Community, PrefixOrigin, PrefixView};
use crate::snapshot::Snapshot;

/// The pool `prefix` falls in (the most specific), if any.
pub fn pool_of<'a>(pools: &[&'a IpPoolSpec], prefix: &IpNet) -> Option<&'a IpPoolSpec> {
    pools
        .iter()
        .filter(|p| p.cidr.contains(prefix))
        .max_by_key(|p| p.cidr.prefix_len())
        .copied()
}

/// Whether a prefix in `pool` may be advertised.
pub fn exportable(pool: Option<&IpPoolSpec>) -> bool {
    pool.is_some_and(|p| !p.disabled && !p.disable_bgp_export)
}

fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// Communities for `prefix` from the effective config.
fn communities_for(
    config: &[Option<&BgpConfigurationSpec>; 2],
    prefix: &IpNet,
    problems: &mut Vec<String>,
) -> Vec<Community> {
    let adverts = config
        .iter()
        .flatten()
        .map(|c| &c.prefix_advertisements)
        .find(|a| !a.is_empty());
    let Some(adverts) = adverts else {
        return Vec::new();
    };
    let names: Vec<_> = config
        .iter()
        .flatten()
        .flat_map(|c| c.communities.iter())
        .collect();
    let mut out = Vec::new();
    for adv in adverts {
        let Ok(cidr) = adv.cidr.parse::<IpNet>() else {
            problems.push(format!("prefixAdvertisements: bad cidr {:?}", adv.cidr));
            continue;
        };
        if !cidr.contains(prefix) {
            continue;
        }
        for c in &adv.communities {
            let value = names
                .iter()
                .find(|n| n.name == *c)
                .map(|n| n.value.as_str())
                .unwrap_or(c);
            match Community::parse(value) {
                Some(v) if !out.contains(&v) => out.push(v),
                Some(_) => {}
                None => problems.push(format!(
                    "prefixAdvertisements {}: bad community {c:?}",
                    adv.cidr
                )),
            }
        }
    }
    out
}

/// The label that keeps a node from advertising the Service ranges
/// (Calico's `ExcludeServiceAdvertisement`).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The Service address ranges of the global BGPConfiguration, in the
/// order given, without repeats; an unparsable CIDR is left out (and a
/// problem, when `problems` is given).
pub fn service_ranges(snap: &Snapshot, mut problems: Option<&mut Vec<String>>) -> Vec<IpNet> {
    let Some(global) = snap.global_bgp_config() else {
        return Vec::new();
    };
    let spec = &global.spec;
    let lists = [
        ("serviceClusterIPs", &spec.service_cluster_ips),
        ("serviceExternalIPs", &spec.service_external_ips),
        ("serviceLoadBalancerIPs", &spec.service_load_balancer_ips),
    ];
    let mut out = Vec::new();
    for (field, list) in lists {
        for b in list {
            match b.cidr.parse::<IpNet>() {
                Ok(net) => {
                    let net = net.trunc();
                    if !out.contains(&net) {
                        out.push(net);
                    }
                }
                Err(_) => {
                    if let Some(p) = problems.as_deref_mut() {
                        p.push(format!("{field}: bad cidr {:?}; not advertised", b.cidr));
                    }
                }
            }
        }
    }
    out
}

/// The prefixes node `me` advertises.
pub fn derive_prefixes(
    snap: &Snapshot,
    me: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<IpNet, PrefixView> {
    let pools: Vec<&IpPoolSpec> = snap.pools().map(|(_, p)| &p.spec).collect();
    let config = configs(snap, me);
    let mut out = BTreeMap::new();
    let blocks = snap.confirmed_blocks().map(|b| (b, PrefixOrigin::Block));
    let borrowed = snap.borrowed(me).flat_map(|(_, addrs)| {
        addrs
            .into_iter()
            .map(|a| (host_prefix(a), PrefixOrigin::Borrowed))
    });
    let excluded = snap
        .node(me)
        .and_then(|n| n.metadata.labels.get(EXCLUDE_LABEL))
        .is_some_and(|v| v == "true");
    let services = service_ranges(snap, Some(problems));
    let services = services
        .into_iter()
        .filter(|_| !excluded)
        .map(|s| (s, PrefixOrigin::Service));
    for (prefix, origin) in blocks.chain(borrowed).chain(services) {
        if origin != PrefixOrigin::Service && !exportable(pool_of(&pools, &prefix)) {
            continue;
        }
        let communities = communities_for(&config, &prefix, problems);
        out.entry(prefix).or_insert(PrefixView {
            origin,
            communities,
        });
    }
    out
}
