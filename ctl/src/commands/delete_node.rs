//! `manulctl delete node NAME...`: removing a node the way calicoctl does
//! in etcd mode (libcalico-go `clientv3/node.go`, `nodes.Delete`), in its
//! order:
//!
//! 1. release the node's addresses in IPAM (its workloads', its tunnel
//!    addresses) and then every affinity of the host (`RemoveIPAMHost`:
//!    empty blocks are deleted, the others keep their addresses and may be
//!    claimed by any host) — see `manul_ipam::host_removal` for how the
//!    addresses are found so that a re-run never frees someone else's;
//! 2. delete its WorkloadEndpoints (`spec.node` is the node);
//! 3. delete the BGPPeers scoped to it (`spec.node` is the node);
//! 4. delete its per-node BGPConfiguration and FelixConfiguration
//!    (`node.<name>`);
//! 5. delete the Node, last, so that an interrupted run is finished by
//!    running it again. A node already gone still has whatever it left
//!    behind removed (exit code 3 only when nothing was left).
//!
//! `--dry-run` prints what would be removed and changes nothing.

use std::net::IpAddr;

use manul_datastore::keys::Key;
use manul_datastore::{Datastore, ResourceKind};
use manul_ipam::{Ipam, Released};
use serde_json::Value;

use crate::commands::delete::{Args, Target, delete_one};
use crate::context::Context;
use crate::error::{Failure, etcd, fail, ipam};
use crate::kind::display_name;
use crate::output::emit;
use crate::store::{self, Stored};

/// Everything one node leaves in etcd.
struct Plan {
    node: Option<Stored>,
    weps: Vec<Stored>,
    peers: Vec<Stored>,
    /// Per-node configurations (`node.<name>`) that exist: kind and key.
    configs: Vec<(&'static str, String)>,
    holdings: manul_ipam::HostHoldings,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.node.is_none()
            && self.weps.is_empty()
            && self.peers.is_empty()
            && self.configs.is_empty()
            && self.holdings.is_empty()
    }
}

/// `spec.node` of a stored object.
fn spec_node(s: &Stored) -> Option<&str> {
    s.raw.get("spec")?.get("node")?.as_str()
}

/// An address or CIDR field's address.
fn addr_of(v: Option<&Value>) -> Option<IpAddr> {
    let s = v?.as_str()?;
    s.split('/').next()?.parse::<IpAddr>().ok()
}

/// The Node's tunnel addresses, the fields Calico's node deletion
/// releases (VXLAN v4/v6, IPIP, WireGuard v4/v6).
fn tunnel_addresses(node: &Stored) -> Vec<IpAddr> {
    let spec = node.raw.get("spec");
    let at = |path: &[&str]| {
        let mut v = spec;
        for p in path {
            v = v.and_then(|x| x.get(p));
        }
        addr_of(v)
    };
    [
        at(&["ipv4VXLANTunnelAddr"]),
        at(&["ipv6VXLANTunnelAddr"]),
        at(&["bgp", "ipv4IPIPTunnelAddr"]),
        at(&["wireguard", "interfaceIPv4Address"]),
        at(&["wireguard", "interfaceIPv6Address"]),
    ]
    .into_iter()
    .flatten()
    .collect()
}

async fn plan(ds: &Datastore, ipam_: &Ipam, name: &str) -> anyhow::Result<Plan> {
    let key = |kind, n: &str| {
        Key::resource(kind, n)
            .path()
            .map_err(|e| fail(Failure::Invalid, format!("node name {name:?}: {e}")))
    };
    let node = store::get(ds, ResourceKind::Node, &key(ResourceKind::Node, name)?).await?;
    let (weps, _) = store::list(ds, ResourceKind::WorkloadEndpoint, None).await?;
    let weps: Vec<Stored> = weps
        .into_iter()
        .filter(|w| spec_node(w) == Some(name))
        .collect();
    let (peers, _) = store::list(ds, ResourceKind::BgpPeer, None).await?;
    let peers: Vec<Stored> = peers
        .into_iter()
        .filter(|p| spec_node(p) == Some(name))
        .collect();
    let mut named: Vec<IpAddr> = weps
        .iter()
        .filter_map(|w| w.raw.get("spec")?.get("ipNetworks")?.as_array().cloned())
        .flatten()
        .filter_map(|v| addr_of(Some(&v)))
        .collect();
    named.extend(node.iter().flat_map(tunnel_addresses));
    let conf_name = format!("node.{name}");
    let mut configs = Vec::new();
    let bgp_conf = key(ResourceKind::BgpConfiguration, &conf_name)?;
    let felix_conf =
        format!("/calico/resources/v3/projectcalico.org/felixconfigurations/{conf_name}");
    for (kind, k) in [
        ("bgpconfiguration", bgp_conf),
        ("felixconfiguration", felix_conf),
    ] {
        if ds
            .get(&k)
            .await
            .map_err(etcd(format!("reading {k}")))?
            .is_some()
        {
            configs.push((kind, k));
        }
    }
    let holdings = ipam_
        .host_holdings(name, &named)
        .await
        .map_err(ipam(format!("reading what node {name} holds in IPAM")))?;
    Ok(Plan {
        node,
        weps,
        peers,
        configs,
        holdings,
    })
}

fn target(kind: ResourceKind, s: &Stored) -> anyhow::Result<Target> {
    let key = s
        .object
        .key()
        .path()
        .map_err(|e| fail(Failure::Invalid, e.to_string()))?;
    Ok(Target {
        kind,
        namespace: s.object.namespace().map(str::to_owned),
        name: s.object.name().to_owned(),
        key,
        expected: None,
    })
}

/// Removes (or with `dry_run` describes) one node; `Ok(false)` when
/// nothing of it was left.
async fn remove(ds: &Datastore, ipam_: &Ipam, name: &str, dry_run: bool) -> anyhow::Result<bool> {
    let p = plan(ds, ipam_, name).await?;
    if p.is_empty() {
        return Ok(false);
    }
    let would = if dry_run { "would release" } else { "released" };
    if dry_run {
        for a in &p.holdings.addresses {
            emit(&format!(
                "{would} {} (block {}, handle {})\n",
                a.ip,
                a.block,
                a.handle.as_deref().unwrap_or("none")
            ));
        }
        for b in &p.holdings.affinities {
            emit(&format!(
                "{would} the affinity of {name} to block {b} (the block is deleted if empty, \
                 else kept with its addresses for any host to claim)\n"
            ));
        }
    } else {
        let done = ipam_
            .remove_host(name, &p.holdings)
            .await
            .map_err(ipam(format!("releasing what node {name} holds in IPAM")))?;
        for (a, (ip, outcome)) in p.holdings.addresses.iter().zip(&done.addresses) {
            match outcome {
                Released::Freed { .. } => emit(&format!(
                    "released {ip} (block {}, handle {})\n",
                    a.block,
                    a.handle.as_deref().unwrap_or("none")
                )),
                Released::NotAssigned => {}
                Released::Reused => emit(&format!(
                    "kept {ip}: it was assigned again while {name} was being removed\n"
                )),
            }
        }
        for b in &done.blocks.released {
            emit(&format!(
                "released the affinity of {name} to block {b}; the block was empty and is deleted\n"
            ));
        }
        for b in &done.blocks.unaffined {
            emit(&format!(
                "released the affinity of {name} to block {b}; the block still holds \
                 addresses and is kept for any host to claim\n"
            ));
        }
        for b in &done.blocks.stale {
            emit(&format!(
                "deleted the stale affinity of {name} to block {b} (the block is another host's)\n"
            ));
        }
    }
    let mut objects = Vec::new();
    for w in &p.weps {
        objects.push(target(ResourceKind::WorkloadEndpoint, w)?);
    }
    for peer in &p.peers {
        objects.push(target(ResourceKind::BgpPeer, peer)?);
    }
    for (kind, key) in &p.configs {
        let rsplit = key.rsplit('/').next().unwrap_or_default();
        if dry_run {
            emit(&format!(
                "{kind}.projectcalico.org/{rsplit} would be deleted\n"
            ));
        } else {
            if let Some(kv) = ds.get(key).await.map_err(etcd(format!("reading {key}")))? {
                match ds.delete(key, kv.mod_revision).await {
                    Ok(_) => emit(&format!("{kind}.projectcalico.org/{rsplit} deleted\n")),
                    Err(manul_datastore::etcd::Error::NotFound { .. }) => {}
                    Err(e) => return Err(etcd(format!("deleting {key}"))(e)),
                }
            }
        }
    }
    if let Some(n) = &p.node {
        objects.push(target(ResourceKind::Node, n)?);
    }
    for t in &objects {
        let shown = display_name(t.kind, t.namespace.as_deref(), &t.name);
        if dry_run {
            emit(&format!("{shown} would be deleted\n"));
        } else if delete_one(ds, t).await? {
            emit(&format!("{shown} deleted\n"));
        }
    }
    if p.node.is_none() {
        eprintln!("node {name:?} was already gone; removed what it had left behind");
    }
    Ok(true)
}

/// Runs `delete node NAME...`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    if args.names.is_empty() {
        return Err(fail(
            Failure::General,
            "name the nodes to delete: manulctl delete node NAME...",
        ));
    }
    let ds = ctx.datastore().await?;
    let ipam_ = Ipam::new(ds.clone());
    let mut missing = Vec::new();
    for name in &args.names {
        if !remove(&ds, &ipam_, name, args.dry_run).await? {
            missing.push(format!("Node {name:?} not found"));
        }
    }
    super::delete::missing_is_an_error(&missing, args.ignore_not_found)
}
