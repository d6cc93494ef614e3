//! `manulctl ipam release`: release addresses (`--ip`), or apply a report
//! of `ipam check` (`--from-report`), both through the library.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use manul_ipam::{Ipam, Released, RepairOptions, RepairOutcome, Report};
use serde_json::{Value, json};

use crate::cli::Output;
use crate::context::Context;
use crate::error::{Failure, fail, ipam};
use crate::output::{emit, serialize};

pub const LONG_ABOUT: &str = "\
Release IP addresses, or apply a report of `manulctl ipam check`.

--ip ADDR (repeatable) releases each address whoever holds it, and says what
was released and what was not assigned (exit code 0 either way). It does not
touch WorkloadEndpoints: releasing an address a pod still uses lets it be
assigned twice. Use it for addresses you know are leaked.

--from-report FILE applies a report written by `manulctl ipam check -o FILE`:
it releases the leaked addresses still held as the report saw them (same
handle, same allocation sequence number: an address reassigned since is left
alone), corrects handle counts and fixes affinities, each only if the record
is unchanged since the report. It refuses (exit code 2) a report taken on
another cluster, and one whose revision is ahead of the datastore's (etcd
restored from an older backup); --force overrides only the second refusal.
A report older than the data is fine: every fix is guarded.

--from-report repeated (A, then B, taken some time apart) applies only what
every report found, identically: an address is released only if each report
saw it leaked with the same holder and allocation sequence number (Calico's
rule), so a pod whose address was assigned just before one check and whose
WorkloadEndpoint appeared just after it is never released.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam release --ip 10.65.0.3 --ip 10.65.0.9
  released 10.65.0.3 (handle k8s-pod-network.4f1c...)
  10.65.0.9 was not assigned

  $ manulctl ipam check -o report.json
  $ manulctl ipam release --from-report report.json
  released 10.65.0.2 (leaked)
  released 10.65.0.7 (leaked)
  Released 2 leaked addresses; fixed 0 handles and 0 affinities; 0 skipped.

  # two checks some minutes apart: release only what both found leaked
  $ manulctl ipam check -o a.json; sleep 300; manulctl ipam check -o b.json
  $ manulctl ipam release --from-report a.json --from-report b.json

  # etcd was restored from a backup taken before the report
  $ manulctl ipam release --from-report report.json --force";

/// `ipam release` options.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["ip", "from_report"]))]
pub struct Args {
    /// An address to release, whoever holds it (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// A report written by `manulctl ipam check -o FILE`; repeat it to
    /// apply only what every report found (Calico's rule).
    #[arg(long, value_name = "FILE", conflicts_with = "ip")]
    pub from_report: Vec<PathBuf>,
    /// Apply a report whose revision is ahead of the datastore's (never one
    /// from another cluster).
    #[arg(long, requires = "from_report", conflicts_with = "ip")]
    pub force: bool,
}

/// Runs `ipam release`.
pub async fn run(ctx: &Context, ipam_: &Ipam, args: &Args) -> anyhow::Result<()> {
    if args.from_report.is_empty() {
        release_ips(ctx, ipam_, &args.ip).await
    } else {
        from_reports(ctx, ipam_, &args.from_report, args.force).await
    }
}

async fn release_ips(ctx: &Context, ipam_: &Ipam, ips: &[IpAddr]) -> anyhow::Result<()> {
    let wanted: Vec<(IpAddr, Option<u64>)> = ips.iter().map(|ip| (*ip, None)).collect();
    let results = ipam_
        .release_ips(&wanted)
        .await
        .map_err(ipam("releasing addresses"))?;
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            let v: Vec<Value> = results
                .iter()
                .map(|(ip, r)| match r {
                    Released::Freed { handle } => {
                        json!({"ip": ip, "released": true, "handle": handle})
                    }
                    _ => json!({"ip": ip, "released": false}),
                })
                .collect();
            emit(&serialize(&Value::Array(v), format)?);
        }
        Output::Table | Output::Wide => {
            let mut out = String::new();
            for (ip, r) in &results {
                out.push_str(&match r {
                    Released::Freed {
                        handle: Some(handle),
                    } => format!("released {ip} (handle {handle})\n"),
                    Released::Freed { handle: None } => format!("released {ip} (no handle)\n"),
                    // Not asked for a sequence number: cannot be reused.
                    Released::NotAssigned | Released::Reused => {
                        format!("{ip} was not assigned\n")
                    }
                });
            }
            emit(&out);
        }
    }
    Ok(())
}

fn read_report(file: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        let failure = if e.kind() == std::io::ErrorKind::NotFound {
            Failure::NotFound
        } else {
            Failure::General
        };
        fail(failure, format!("cannot read {}: {e}", file.display()))
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        fail(
            Failure::Invalid,
            format!(
                "{} is not a report of `manulctl ipam check -o FILE`: {} at {}",
                file.display(),
                e.inner(),
                e.path()
            ),
        )
    })
}

async fn from_reports(
    ctx: &Context,
    ipam_: &Ipam,
    files: &[PathBuf],
    force: bool,
) -> anyhow::Result<()> {
    let reports = files
        .iter()
        .map(|f| read_report(f))
        .collect::<anyhow::Result<Vec<Report>>>()?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let outcome = ipam_
        .release_from_reports_with(&reports, RepairOptions { allow_ahead: force })
        .await
        .map_err(ipam(format!("applying {}", names.join(" and "))))?;
    match ctx.output() {
        format @ (Output::Json | Output::Yaml) => {
            emit(&serialize(&serde_json::to_value(&outcome)?, format)?);
        }
        Output::Table | Output::Wide => emit(&describe(&outcome)),
    }
    Ok(())
}

fn describe(o: &RepairOutcome) -> String {
    let mut out = String::new();
    for ip in &o.released {
        out.push_str(&format!("released {ip} (leaked)\n"));
    }
    for ip in &o.reused {
        out.push_str(&format!("left {ip} alone: reassigned since the report\n"));
    }
    for ip in &o.already_free {
        out.push_str(&format!("{ip} was already free\n"));
    }
    for h in &o.handles_fixed {
        out.push_str(&format!("fixed handle {h}\n"));
    }
    for a in &o.affinities_fixed {
        out.push_str(&format!("fixed affinity {a}\n"));
    }
    for s in &o.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    let n = o.released.len();
    out.push_str(&format!(
        "Released {n} leaked address{}; fixed {} handle{} and {} affinit{}; {} skipped.\n",
        if n == 1 { "" } else { "es" },
        o.handles_fixed.len(),
        if o.handles_fixed.len() == 1 { "" } else { "s" },
        o.affinities_fixed.len(),
        if o.affinities_fixed.len() == 1 {
            "y"
        } else {
            "ies"
        },
        o.skipped.len()
    ));
    out
}
