//! Start-up writes: this host's Node object (addresses and AS, keeping
//! every other field as found), and the default IPv4 pool when the
//! cluster has no pool at all (calico-node's `default-ipv4-ippool`).
//! Both are compare-and-swap writes, retried when someone else wrote
//! in between.

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use manul_datastore::etcd::Error as EtcdError;
use manul_datastore::resources::{IpPool, IpPoolSpec, Node, NodeBgpSpec, NodeSpec};
use manul_datastore::{AsNumber, Datastore, Key, ResourceKind};

/// The default pool's name (Calico's).
pub const DEFAULT_POOL: &str = "default-ipv4-ippool";

/// What this host registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Node name.
    pub name: String,
    /// IPv4 address with its subnet.
    pub ipv4: Option<IpNet>,
    /// IPv6 address with its subnet.
    pub ipv6: Option<IpNet>,
    /// AS number, if this node overrides the cluster's.
    pub as_number: Option<u32>,
}

/// Create or update the Node; whether anything was written.
pub async fn register_node(ds: &Datastore, reg: &Registration) -> Result<bool> {
    let key = Key::resource(ResourceKind::Node, &reg.name).path()?;
    for _ in 0..20 {
        let current = ds.get(&key).await?;
        let (mut node, rev) = match &current {
            Some(kv) => (
                Node::from_json(&kv.value).with_context(|| format!("malformed Node at {key}"))?,
                Some(kv.mod_revision),
            ),
            None => (Node::new(&reg.name, NodeSpec::default()), None),
        };
        let before = node.clone();
        let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
        bgp.ipv4_address = reg.ipv4.map(|n| n.to_string()).unwrap_or_default();
        bgp.ipv6_address = reg.ipv6.map(|n| n.to_string()).unwrap_or_default();
        bgp.as_number = reg.as_number.map(AsNumber);
        if rev.is_some() && node == before {
            return Ok(false);
        }
        let res = match rev {
            None => ds.create(&key, node.to_json()).await,
            Some(r) => ds.update(&key, node.to_json(), r).await,
        };
        match res {
            Ok(_) => return Ok(true),
            Err(EtcdError::Conflict { .. } | EtcdError::NotFound { .. }) => continue,
            Err(e) => return Err(e).context("writing the Node"),
        }
    }
    bail!("the Node {key} kept changing while it was being registered")
}

/// The default pool's settings.
#[derive(Debug, Clone)]
pub struct DefaultPool {
    /// CIDR.
    pub cidr: IpNet,
    /// Block size.
    pub block_size: u32,
    /// `Never`, `Always`, `CrossSubnet`.
    pub vxlan_mode: String,
    /// NAT outgoing.
    pub nat_outgoing: bool,
}

/// Create the default pool when there is no pool; whether it was created.
pub async fn ensure_default_pool(ds: &Datastore, pool: &DefaultPool) -> Result<bool> {
    let existing = ds
        .list(
            &manul_datastore::keys::prefix::kind(ResourceKind::IpPool),
            None,
        )
        .await
        .context("listing IP pools")?;
    if !existing.0.is_empty() {
        return Ok(false);
    }
    let mut spec = IpPoolSpec::new(pool.cidr.trunc());
    spec.block_size = pool.block_size;
    spec.nat_outgoing = pool.nat_outgoing;
    spec.vxlan_mode = Some(
        serde_json::from_value(serde_json::Value::String(pool.vxlan_mode.clone())).with_context(
            || {
                format!(
                    "VXLAN mode {:?}: use Never, Always or CrossSubnet",
                    pool.vxlan_mode
                )
            },
        )?,
    );
    spec.fill_defaults();
    let key = Key::resource(ResourceKind::IpPool, DEFAULT_POOL).path()?;
    match ds
        .create(&key, IpPool::new(DEFAULT_POOL, spec).to_json())
        .await
    {
        Ok(_) => Ok(true),
        // Another node created it meanwhile.
        Err(EtcdError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e).context("creating the default pool"),
    }
}
