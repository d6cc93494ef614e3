//! `manulctl ipam configure`: change the cluster-wide IPAM config; the
//! library validates it (Calico's rules) and writes it.

use manul_ipam::Ipam;

use super::show::config_table;
use crate::cli::Output;
use crate::context::Context;
use crate::error::ipam;
use crate::output::{emit, serialize};

pub const LONG_ABOUT: &str = "\
Change the cluster-wide IPAM configuration (/calico/ipam/v2/config, the
object calicoctl writes). Settings not given keep their value; the result is
checked with Calico's rules before it is written, and printed.

  --strictaffinity        never borrow addresses from another host's block
  --auto-allocate-blocks  claim new blocks when a host's are full
  --max-blocks-per-host   blocks one host may hold per address family; 0
                          means not set (20 apply). Above 0 requires strict
                          affinity.

Strict affinity and automatic block allocation cannot both be off (no address
could be assigned). A refused combination is exit code 2 and writes nothing.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam configure --strictaffinity=true --max-blocks-per-host 4
  IPAM configuration updated:
  PROPERTY             VALUE
  StrictAffinity       true
  AutoAllocateBlocks   true
  MaxBlocksPerHost     4

  $ manulctl ipam configure --strictaffinity=false
  error: invalid IPAM config: maxBlocksPerHost requires strict_affinity to be enabled
  $ manulctl ipam configure --strictaffinity=false --max-blocks-per-host 0";

/// `ipam configure` options.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("settings").required(true).multiple(true))]
pub struct Args {
    /// Never borrow from other hosts' blocks: true or false.
    #[arg(
        long = "strictaffinity",
        visible_alias = "strict-affinity",
        value_name = "BOOL",
        group = "settings"
    )]
    pub strict_affinity: Option<bool>,
    /// Claim new blocks automatically: true or false.
    #[arg(long, value_name = "BOOL", group = "settings")]
    pub auto_allocate_blocks: Option<bool>,
    /// Blocks per host and family (0: not set, 20 apply).
    #[arg(long, value_name = "N", group = "settings")]
    pub max_blocks_per_host: Option<u32>,
}

/// Runs `ipam configure`.
pub async fn run(ctx: &Context, ipam_: &Ipam, args: &Args) -> anyhow::Result<()> {
    let mut cfg = ipam_
        .config()
        .await
        .map_err(ipam("reading the IPAM configuration"))?;
    if let Some(v) = args.strict_affinity {
        cfg.strict_affinity = Some(v);
    }
    if let Some(v) = args.auto_allocate_blocks {
        cfg.auto_allocate_blocks = Some(v);
    }
    if let Some(v) = args.max_blocks_per_host {
        cfg.max_blocks_per_host = Some(v);
    }
    ipam_
        .set_config(&cfg)
        .await
        .map_err(ipam("writing the IPAM configuration"))?;
    let stored = ipam_
        .config()
        .await
        .map_err(ipam("reading the IPAM configuration back"))?;
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            emit(&serialize(&serde_json::to_value(&stored)?, format)?);
        }
        Output::Table | Output::Wide => emit(&format!(
            "IPAM configuration updated:\n{}",
            config_table(&stored)
        )),
    }
    Ok(())
}
