//! `manulctl ipam show`: pool use (and block use, borrowed addresses, the
//! IPAM config), or what is known about one address.
//!
//! JSON and YAML carry the library's field names (`in_use`, `block_host`,
//! as in the check report); counts that do not fit in 64 bits (IPv6 pools
//! of /64 and larger) are strings.

use std::net::IpAddr;

use manul_datastore::ipam::IpamConfig;
use manul_ipam::config::effective_max_blocks;
use manul_ipam::{BlockUsage, BorrowedIp, IpInfo, Ipam, PoolUsage, Utilization};
use serde_json::{Map, Value, json};

use super::{count, percent, ratio};
use crate::cli::Output;
use crate::context::Context;
use crate::error::{Failure, fail, ipam};
use crate::output::{emit, serialize, table};

pub const LONG_ABOUT: &str = "\
Show how full the IP pools are: per pool its CIDR, how many addresses it
has, how many are in use and how many are free. Each option adds a section:

  --show-blocks         a row per allocation block: its CIDR, the host it is
                        affine to, addresses in use and free, and how many
                        of them other hosts borrowed
  --show-borrowed       every address used by another host than its block's
                        (address, block, block's host, the using node, handle)
  --show-configuration  the IPAM configuration (StrictAffinity,
                        AutoAllocateBlocks, MaxBlocksPerHost)

--ip ADDR instead tells who holds one address: its handle and attributes
(pod, namespace, node...), its block and the block's host; or that it is not
assigned (exit code 0 either way). An address in no pool is exit code 3.

-o wide adds the pool's name and whether it is disabled; -o json and -o yaml
print the numbers (percentages to two decimals).";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam show
  GROUPING   CIDR           IPS TOTAL   IPS IN USE   IPS FREE
  IP Pool    10.65.0.0/24   256         5 (2%)       251 (98%)

  $ manulctl ipam show --show-blocks
  GROUPING   CIDR            HOST     IPS TOTAL   IPS IN USE   IPS FREE     BORROWED
  IP Pool    10.65.0.0/24    -        256         5 (2%)       251 (98%)    1
  Block      10.65.0.0/26    node-1   64          3 (5%)       61 (95%)     1
  Block      10.65.0.64/26   node-2   64          2 (3%)       62 (97%)     0

  $ manulctl ipam show --show-borrowed
  ...
  Borrowed addresses:
  ADDRESS     BLOCK          BLOCK HOST   USED BY   HANDLE
  10.65.0.3   10.65.0.0/26   node-1       node-2    k8s-pod-network.4f1c...

  $ manulctl ipam show --show-configuration
  $ manulctl ipam show -o json

  $ manulctl ipam show --ip 10.65.0.3
  10.65.0.3 is in use by handle k8s-pod-network.4f1c...
    namespace    default
    node         node-2
    pod          web-1
    block        10.65.0.0/26 (affine to node-1: borrowed)
    pool         10.65.0.0/24

  $ manulctl ipam show --ip 10.65.0.9
  10.65.0.9 is not assigned (block 10.65.0.0/26, affine to node-1)";

/// `ipam show` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Add a row per block.
    #[arg(long, conflicts_with = "ip")]
    pub show_blocks: bool,
    /// List addresses used by another host than their block's.
    #[arg(long, conflicts_with = "ip")]
    pub show_borrowed: bool,
    /// Print the IPAM configuration.
    #[arg(long, conflicts_with = "ip")]
    pub show_configuration: bool,
    /// Who holds this address (instead of the pool table).
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
}

/// Runs `ipam show`.
pub async fn run(ctx: &Context, ipam_: &Ipam, args: &Args) -> anyhow::Result<()> {
    if let Some(ip) = args.ip {
        return show_ip(ctx, ipam_, ip).await;
    }
    let usage = ipam_
        .utilization()
        .await
        .map_err(ipam("reading pools and blocks"))?;
    let borrowed = if args.show_borrowed {
        Some(ipam_.borrowed_ips().await.map_err(ipam("reading blocks"))?)
    } else {
        None
    };
    let config = if args.show_configuration {
        Some(
            ipam_
                .config()
                .await
                .map_err(ipam("reading the IPAM configuration"))?,
        )
    } else {
        None
    };
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            let mut v = Map::new();
            v.insert(
                "pools".into(),
                usage
                    .pools
                    .iter()
                    .map(|p| pool_json(p, args.show_blocks))
                    .collect(),
            );
            if args.show_blocks {
                v.insert(
                    "orphan_blocks".into(),
                    usage.orphan_blocks.iter().map(block_json).collect(),
                );
            }
            if let Some(b) = &borrowed {
                v.insert("borrowed".into(), serde_json::to_value(b)?);
            }
            if let Some(c) = &config {
                v.insert("configuration".into(), config_json(c));
            }
            emit(&serialize(&Value::Object(v), format)?);
        }
        format @ (Output::Table | Output::Wide) => {
            let mut out = pools_table(&usage, args.show_blocks, format == Output::Wide);
            if let Some(b) = &borrowed {
                out.push_str("\nBorrowed addresses:\n");
                out.push_str(&borrowed_table(b));
            }
            if let Some(c) = &config {
                out.push_str("\nIPAM configuration:\n");
                out.push_str(&config_table(c));
            }
            emit(&out);
        }
    }
    Ok(())
}

fn pool_json(p: &PoolUsage, blocks: bool) -> Value {
    let mut v = json!({
        "name": p.name,
        "cidr": p.cidr.to_string(),
        "disabled": p.disabled,
        "total": count(p.total),
        "in_use": count(p.in_use),
        "free": count(p.free),
        "in_use_percent": ratio(p.in_use, p.total),
        "free_percent": ratio(p.free, p.total),
        "borrowed": p.blocks.iter().map(|b| b.borrowed).sum::<u64>(),
    });
    if blocks {
        v["blocks"] = p.blocks.iter().map(block_json).collect();
    }
    v
}

fn block_json(b: &BlockUsage) -> Value {
    json!({
        "cidr": b.cidr.to_string(),
        "host": b.host,
        "total": b.total,
        "in_use": b.in_use,
        "free": b.free,
        "in_use_percent": ratio(b.in_use.into(), b.total.into()),
        "free_percent": ratio(b.free.into(), b.total.into()),
        "borrowed": b.borrowed,
    })
}

fn config_json(c: &IpamConfig) -> Value {
    json!({
        "strict_affinity": c.strict_affinity(),
        "auto_allocate_blocks": c.auto_allocate_blocks(),
        "maxBlocksPerHost": c.max_blocks_per_host.unwrap_or(0),
        "effective_max_blocks_per_host": effective_max_blocks(c),
    })
}

/// The pool table (and block rows).
fn pools_table(u: &Utilization, blocks: bool, wide: bool) -> String {
    let mut headers = vec!["GROUPING", "CIDR"];
    if blocks {
        headers.push("HOST");
    }
    headers.extend(["IPS TOTAL", "IPS IN USE", "IPS FREE"]);
    if blocks {
        headers.push("BORROWED");
    }
    if wide {
        headers.extend(["POOL", "DISABLED"]);
    }
    let mut rows = Vec::new();
    let block_row = |grouping: &str, b: &BlockUsage, pool: Option<&PoolUsage>| {
        let mut row = vec![
            grouping.to_owned(),
            b.cidr.to_string(),
            b.host.clone().unwrap_or_default(),
            b.total.to_string(),
            used(b.in_use.into(), b.total.into()),
            used(b.free.into(), b.total.into()),
            b.borrowed.to_string(),
        ];
        if wide {
            row.push(pool.map(|p| p.name.clone()).unwrap_or_default());
            row.push(pool.map(|p| p.disabled.to_string()).unwrap_or_default());
        }
        row
    };
    for p in &u.pools {
        let mut row = vec!["IP Pool".to_owned(), p.cidr.to_string()];
        if blocks {
            row.push(String::new());
        }
        row.extend([
            p.total.to_string(),
            used(p.in_use, p.total),
            used(p.free, p.total),
        ]);
        if blocks {
            row.push(p.blocks.iter().map(|b| b.borrowed).sum::<u64>().to_string());
        }
        if wide {
            row.extend([p.name.clone(), p.disabled.to_string()]);
        }
        rows.push(row);
        if blocks {
            let mut bs: Vec<&BlockUsage> = p.blocks.iter().collect();
            bs.sort_by_key(|b| b.cidr);
            rows.extend(bs.into_iter().map(|b| block_row("Block", b, Some(p))));
        }
    }
    if blocks {
        rows.extend(
            u.orphan_blocks
                .iter()
                .map(|b| block_row("Block (no pool)", b, None)),
        );
    }
    if rows.is_empty() {
        return "No IP pools: create one with `manulctl apply -f pool.yaml`.\n".into();
    }
    table::render(&headers, &rows)
}

fn used(part: u128, total: u128) -> String {
    format!("{part} ({})", percent(part, total))
}

fn borrowed_table(b: &[BorrowedIp]) -> String {
    if b.is_empty() {
        return "No borrowed addresses.\n".into();
    }
    let rows: Vec<Vec<String>> = b
        .iter()
        .map(|b| {
            vec![
                b.ip.to_string(),
                b.block.to_string(),
                b.block_host.clone().unwrap_or_else(|| "(none)".into()),
                b.node.clone(),
                b.handle.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &["ADDRESS", "BLOCK", "BLOCK HOST", "USED BY", "HANDLE"],
        &rows,
    )
}

/// The config as PROPERTY / VALUE rows (calicoctl's names).
pub fn config_table(c: &IpamConfig) -> String {
    let max = match c.max_blocks_per_host() {
        Some(n) => n.to_string(),
        None => format!("0 (not set: {} apply)", effective_max_blocks(c)),
    };
    table::render(
        &["PROPERTY", "VALUE"],
        &[
            vec!["StrictAffinity".into(), c.strict_affinity().to_string()],
            vec![
                "AutoAllocateBlocks".into(),
                c.auto_allocate_blocks().to_string(),
            ],
            vec!["MaxBlocksPerHost".into(), max],
        ],
    )
}

/// `--ip`: who holds it.
async fn show_ip(ctx: &Context, ipam_: &Ipam, ip: IpAddr) -> anyhow::Result<()> {
    let info = ipam_
        .ip_info(ip)
        .await
        .map_err(ipam(format!("looking up {ip}")))?;
    if info.pool.is_none() && info.block.is_none() {
        return Err(fail(
            Failure::NotFound,
            format!("{ip} is not in any IP pool: list the pools with `manulctl get ippools`"),
        ));
    }
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            emit(&serialize(&serde_json::to_value(&info)?, format)?);
        }
        Output::Table | Output::Wide => emit(&describe(ip, &info)),
    }
    Ok(())
}

/// The human answer for one address.
fn describe(ip: IpAddr, info: &IpInfo) -> String {
    let block = match (&info.block, &info.block_host) {
        (Some(b), Some(h)) => format!("{b} (affine to {h})"),
        (Some(b), None) => format!("{b} (affine to no host)"),
        (None, _) => String::new(),
    };
    if !info.assigned {
        let place = if info.block.is_some() {
            format!("block {block}")
        } else {
            "its block is not claimed by any host yet".into()
        };
        return format!("{ip} is not assigned ({place})\n");
    }
    let mut out = match &info.handle {
        Some(h) => format!("{ip} is in use by handle {h}\n"),
        None => format!("{ip} is in use (no handle recorded)\n"),
    };
    let mut rows: Vec<(String, String)> = info
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let block = match (&info.block, &info.block_host, info.borrowed) {
        (Some(b), Some(h), true) => format!("{b} (affine to {h}: borrowed)"),
        _ => block,
    };
    rows.push(("block".into(), block));
    rows.push((
        "pool".into(),
        info.pool
            .map(|p| p.to_string())
            .unwrap_or_else(|| "(none: the pool was deleted)".into()),
    ));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        out.push_str(&format!("  {k:width$}   {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assigned_borrowed_address() {
        let info = IpInfo {
            ip: Some("10.65.0.3".parse().unwrap()),
            pool: Some("10.65.0.0/24".parse().unwrap()),
            block: Some("10.65.0.0/26".parse().unwrap()),
            block_host: Some("node-1".into()),
            assigned: true,
            handle: Some("k8s-pod-network.x".into()),
            attributes: [("node".into(), "node-2".into()), ("pod".into(), "p".into())].into(),
            sequence_number: Some(3),
            borrowed: true,
        };
        assert_eq!(
            describe("10.65.0.3".parse().unwrap(), &info),
            "10.65.0.3 is in use by handle k8s-pod-network.x\n\
             \x20 node    node-2\n\
             \x20 pod     p\n\
             \x20 block   10.65.0.0/26 (affine to node-1: borrowed)\n\
             \x20 pool    10.65.0.0/24\n"
        );
        let free = IpInfo {
            assigned: false,
            block: None,
            ..info
        };
        assert_eq!(
            describe("10.65.0.200".parse().unwrap(), &free),
            "10.65.0.200 is not assigned (its block is not claimed by any host yet)\n"
        );
    }
}
