//! `manulctl ipam split NUMBER --cidr CIDR | --name NAME`: a pool split
//! into 2^n equal pools, as `calicoctl ipam split` (see
//! `manul_ipam::split`).

use manul_ipam::Ipam;
use manul_ipam::split::PoolRef;

use crate::context::Context;
use crate::error::ipam;
use crate::output::emit;

pub const LONG_ABOUT: &str = "\
Split an IP pool, named by its CIDR or its name, into NUMBER equal pools
(NUMBER a power of 2), as `calicoctl ipam split` does: the pool is disabled,
the pools split-NAME-0 ... split-NAME-(NUMBER-1) are created as copies of it
(every spec field, labels, annotations; enabled) with the child ranges, and
the pool is deleted. Blocks already claimed stay valid: each lies in one of
the new pools, which may not be smaller than a block.

Refused while any address of the pool is assigned (calicoctl requires the
datastore to be locked instead; manul has no datastore lock), when NUMBER is
not a power of 2, and when the pool is too small for NUMBER parts. An
interrupted split is finished by running it again.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam split --cidr=172.0.0.0/8 2
  IP Pool pool-a was successfully split into 2 smaller pools.
  Created split-pool-a-0 with CIDR 172.0.0.0/9.
  Created split-pool-a-1 with CIDR 172.128.0.0/9.

  $ manulctl ipam split --name=default-ipv4-ippool 4";

/// `ipam split` options.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("pool").required(true).args(["cidr", "name"]))]
pub struct Args {
    /// How many pools to split it into (a power of 2).
    #[arg(value_name = "NUMBER")]
    pub number: u32,
    /// CIDR of the IP pool to split.
    #[arg(long, value_name = "CIDR", conflicts_with = "name")]
    pub cidr: Option<String>,
    /// Name of the IP pool to split.
    #[arg(long, value_name = "POOL_NAME")]
    pub name: Option<String>,
}

/// Runs `ipam split`.
pub async fn run(_ctx: &Context, ipam_: &Ipam, args: &Args) -> anyhow::Result<()> {
    let which = match (&args.cidr, &args.name) {
        (Some(c), _) => PoolRef::cidr(c).map_err(ipam("reading --cidr"))?,
        (None, Some(n)) => PoolRef::Name(n.clone()),
        (None, None) => unreachable!("clap requires --cidr or --name"),
    };
    let out = ipam_
        .split_pool(&which, args.number)
        .await
        .map_err(ipam("splitting the IP pool"))?;
    let mut text = format!(
        "IP Pool {} was successfully split into {} smaller pools.\n",
        out.pool,
        out.created.len()
    );
    for (name, cidr) in &out.created {
        text.push_str(&format!("Created {name} with CIDR {cidr}.\n"));
    }
    emit(&text);
    Ok(())
}
