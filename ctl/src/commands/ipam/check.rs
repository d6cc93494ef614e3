//! `manulctl ipam check [-o FILE]`: the library's leak check, with its
//! progress on stderr, the problems grouped on stdout, and the report as
//! JSON in FILE for `ipam release --from-report`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use manul_ipam::{Ipam, Problem, Progress, Report};

use crate::cli::Output;
use crate::context::Context;
use crate::error::{Failure, fail, ipam};
use crate::output::{emit, serialize};

pub const LONG_ABOUT: &str = "\
Check IPAM against itself and against the WorkloadEndpoints, everything read
at one etcd revision: addresses no WorkloadEndpoint uses (leaked), endpoint
addresses that are not allocated, addresses used twice, handle records whose
counts are wrong or missing, blocks whose bookkeeping does not add up, and
block affinities without their block, stale or left pending.

Progress goes to standard error while it reads; the problems, grouped, one
line each, and a summary go to standard output. Exit code 0 when IPAM is
clean, 7 when there are problems.

-o FILE writes the report (JSON) to FILE: it names the cluster and the
revision it was taken at, and `manulctl ipam release --from-report FILE`
applies it. Review it first. -o json and -o yaml print the report instead
of the summary. --show-all-ips lists every allocation and every use of an
address, --show-problem-ips every address with a problem, in calicoctl's
words, before the summary. Only addresses under pod handles (k8s-pod-network.*) or no
handle count as leaked; tunnel addresses never do.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam check -o report.json
  reading blocks... 12
  reading block affinities... 12
  reading handles... 301
  reading workload endpoints... 298
  checking 303 allocated addresses...
  Leaked addresses (allocated under a pod handle, no WorkloadEndpoint uses them):
    10.65.0.7   block 10.65.0.0/26, handle k8s-pod-network.2d9f..., pod default/web-3, node node-1
  ...
  Summary: 12 blocks, 12 affinities, 301 handles, 298 workload endpoints, 303 allocated
  addresses; 5 problems: 5 leaked addresses.
  Report written to report.json: review it, then run
  `manulctl ipam release --from-report report.json`.
  $ echo $?
  7

  $ manulctl ipam check -o json | jq '.problems[] | select(.kind == \"leaked\") | .ip'

  $ manulctl ipam check --show-problem-ips
    10.65.0.7 leaked; attrs Main:k8s-pod-network.2d9f... Extra:namespace=default,node=node-1,pod=web-3
  ...
  $ manulctl ipam check --show-all-ips
    10.65.0.1 allocated; attrs Main:k8s-pod-network.77ab... Extra:namespace=default,node=node-1,pod=web-1
    10.65.0.1 belongs to Workload(default/web-1)
  ...";

/// `ipam check` options (the report file is the global `-o FILE`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print every address checked, as calicoctl does: each allocation
    /// (`IP allocated; attrs Main:HANDLE Extra:k=v,...`) and each use by a
    /// WorkloadEndpoint (`IP belongs to Workload(NAMESPACE/NAME)`).
    #[arg(long)]
    pub show_all_ips: bool,
    /// Print each address with a problem, as calicoctl does (`IP leaked;
    /// attrs ...`, `IP has multiple owners.`, ...).
    #[arg(long)]
    pub show_problem_ips: bool,
}

/// Runs `ipam check`.
pub async fn run(ctx: &Context, ipam_: &Ipam, args: &Args) -> anyhow::Result<()> {
    let report = ipam_
        .check_with_progress(print_progress)
        .await
        .map_err(ipam("checking IPAM"))?;
    let format = ctx.output();
    // Lines for a person: not mixed into JSON or YAML.
    let text = matches!(format, Output::Table | Output::Wide);
    if args.show_all_ips && text {
        emit(&all_ips(&report));
    }
    if args.show_problem_ips && text {
        emit(&problem_ips(&report));
    }
    match format {
        Output::Json | Output::Yaml => {
            emit(&serialize(&serde_json::to_value(&report)?, format)?);
        }
        Output::Table | Output::Wide => emit(&describe(&report)),
    }
    if let Some(file) = ctx.output_file() {
        write_report(file, &report)?;
        if !report.is_clean() {
            emit(&format!(
                "Report written to {f}: review it, then run\n\
                 `manulctl ipam release --from-report {f}`.\n",
                f = file.display()
            ));
        } else {
            emit(&format!("Report written to {}.\n", file.display()));
        }
    }
    if report.is_clean() {
        return Ok(());
    }
    let n = report.problems.len();
    Err(fail(
        Failure::Problems,
        format!(
            "IPAM check found {n} problem{}{}",
            if n == 1 { "" } else { "s" },
            if ctx.output_file().is_none() {
                ": write a report with `manulctl ipam check -o report.json`, review it, then \
                 apply it with `manulctl ipam release --from-report report.json`"
            } else {
                ""
            }
        ),
    ))
}

/// calicoctl's `formatAttrs`: `Main:HANDLE Extra:k=v,...` (sorted).
fn attr_string(handle: Option<&str>, attrs: &BTreeMap<String, String>) -> String {
    let extra: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "Main:{} Extra:{}",
        handle.unwrap_or("<none>"),
        extra.join(",")
    )
}

/// `--show-all-ips`: calicoctl's lines, allocations first, then uses.
fn all_ips(r: &Report) -> String {
    let mut out = String::new();
    for c in r.checked.iter().filter(|c| c.allocated) {
        out.push_str(&format!(
            "  {} allocated; attrs {}\n",
            c.ip,
            attr_string(c.handle.as_deref(), &c.attributes)
        ));
    }
    for c in &r.checked {
        for u in &c.users {
            out.push_str(&format!("  {} belongs to Workload({u})\n", c.ip));
        }
    }
    out
}

/// `--show-problem-ips`: calicoctl's line for each address or handle
/// with a problem; the other problems in manul's own form.
fn problem_ips(r: &Report) -> String {
    let mut out = String::new();
    for p in &r.problems {
        let l = match p {
            Problem::Leaked {
                ip,
                handle,
                attributes,
                ..
            } => format!(
                "{ip} leaked; attrs {}",
                attr_string(handle.as_deref(), attributes)
            ),
            Problem::UsedTwice { ip, .. } => format!("{ip} has multiple owners."),
            Problem::NotAllocated { ip, endpoint, .. } => format!(
                "{ip} in use by {endpoint} and in active IPAM pool but has no IPAM allocation."
            ),
            Problem::MissingHandle { handle, .. } => {
                format!("{handle} is in use in a block but doesn't exist.")
            }
            other => line(other),
        };
        out.push_str(&format!("  {l}\n"));
    }
    out
}

fn print_progress(p: Progress) {
    let mut err = std::io::stderr().lock();
    let _ = match p {
        Progress::Reading(what) => write!(err, "reading {what}... "),
        Progress::Read(_, n) => writeln!(err, "{n}"),
        Progress::Checking { allocated } => {
            writeln!(err, "checking {allocated} allocated addresses...")
        }
    };
    let _ = err.flush();
}

fn write_report(file: &Path, report: &Report) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(file, text).map_err(|e| {
        fail(
            Failure::General,
            format!("cannot write the report to {}: {e}", file.display()),
        )
    })
}

/// A noun, singular and plural.
type Words = (&'static str, &'static str);

/// Group order, title, and the words for the summary.
fn group(p: &Problem) -> (u8, &'static str, Words) {
    match p {
        Problem::Leaked { .. } => (
            0,
            "Leaked addresses (allocated under a pod handle, no WorkloadEndpoint uses them)",
            ("leaked address", "leaked addresses"),
        ),
        Problem::NotAllocated { .. } => (
            1,
            "WorkloadEndpoint addresses that are not allocated",
            (
                "unallocated endpoint address",
                "unallocated endpoint addresses",
            ),
        ),
        Problem::UsedTwice { .. } => (
            2,
            "Addresses used by more than one WorkloadEndpoint",
            ("address used twice", "addresses used twice"),
        ),
        Problem::HandleMismatch { .. } => (
            3,
            "Handles whose counts differ from the blocks",
            ("handle mismatch", "handle mismatches"),
        ),
        Problem::MissingHandle { .. } => (
            4,
            "Handles holding addresses without a handle record",
            ("missing handle", "missing handles"),
        ),
        Problem::BadBlock { .. } => (5, "Blocks that do not add up", ("bad block", "bad blocks")),
        Problem::AffinityWithoutBlock { .. } => (
            6,
            "Affinities whose block does not exist",
            ("affinity without block", "affinities without block"),
        ),
        Problem::StaleAffinity { .. } => (
            7,
            "Affinities whose block belongs to another host",
            ("stale affinity", "stale affinities"),
        ),
        Problem::UnconfirmedAffinity { .. } => (
            8,
            "Affinities left pending",
            ("unconfirmed affinity", "unconfirmed affinities"),
        ),
        Problem::BlockWithoutAffinity { .. } => (
            9,
            "Blocks without their host's affinity",
            ("block without affinity", "blocks without affinity"),
        ),
        Problem::Malformed { .. } => (
            10,
            "Values that do not decode",
            ("malformed value", "malformed values"),
        ),
    }
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "nothing".into();
    }
    m.iter()
        .map(|(b, n)| format!("{n} in {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One problem, one line.
fn line(p: &Problem) -> String {
    match p {
        Problem::Leaked {
            ip,
            block,
            handle,
            attributes,
            ..
        } => {
            let mut s = format!(
                "{ip}   block {block}, handle {}",
                handle.as_deref().unwrap_or("(none)")
            );
            if let Some(pod) = attributes.get("pod") {
                match attributes.get("namespace") {
                    Some(ns) => s.push_str(&format!(", pod {ns}/{pod}")),
                    None => s.push_str(&format!(", pod {pod}")),
                }
            }
            if let Some(node) = attributes.get("node") {
                s.push_str(&format!(", node {node}"));
            }
            s
        }
        Problem::NotAllocated { ip, endpoint, node } => {
            format!("{ip}   used by {endpoint} on {node}, not allocated")
        }
        Problem::UsedTwice { ip, endpoints } => format!("{ip}   used by {}", endpoints.join(", ")),
        Problem::HandleMismatch {
            handle,
            recorded,
            actual,
            ..
        } => format!(
            "{handle}   records {}, blocks hold {}",
            counts(recorded),
            counts(actual)
        ),
        Problem::MissingHandle { handle, actual } => {
            format!("{handle}   blocks hold {}", counts(actual))
        }
        Problem::BadBlock { block, problems } => format!("{block}   {}", problems.join("; ")),
        Problem::AffinityWithoutBlock {
            host, block, state, ..
        } => format!("{host}/{block}   ({state})"),
        Problem::StaleAffinity {
            host,
            block,
            block_host,
            ..
        } => format!(
            "{host}/{block}   the block is affine to {}",
            block_host.as_deref().unwrap_or("no host")
        ),
        Problem::UnconfirmedAffinity {
            host, block, state, ..
        } => format!("{host}/{block}   ({state})"),
        Problem::BlockWithoutAffinity { block, host } => {
            format!("{block}   affine to {host}, no affinity record")
        }
        Problem::Malformed { key, error } => format!("{key}   {error}"),
    }
}

fn plural(n: usize, (one, many): Words) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The problems, grouped, and the summary.
fn describe(r: &Report) -> String {
    let mut groups: BTreeMap<u8, (&str, Words, Vec<String>)> = BTreeMap::new();
    for p in &r.problems {
        let (order, title, word) = group(p);
        groups
            .entry(order)
            .or_insert((title, word, Vec::new()))
            .2
            .push(line(p));
    }
    let mut out = String::new();
    for (title, _, lines) in groups.values() {
        out.push_str(&format!("{title}:\n"));
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    let s = &r.summary;
    out.push_str(&format!(
        "Summary: {}, {}, {}, {}, {} at revision {}; ",
        plural(s.blocks, ("block", "blocks")),
        plural(s.affinities, ("affinity", "affinities")),
        plural(s.handles, ("handle", "handles")),
        plural(
            s.workload_endpoints,
            ("workload endpoint", "workload endpoints")
        ),
        plural(s.allocated, ("allocated address", "allocated addresses")),
        r.revision
    ));
    if r.is_clean() {
        out.push_str("no problems.\n");
    } else {
        let parts: Vec<String> = groups
            .values()
            .map(|(_, word, lines)| plural(lines.len(), *word))
            .collect();
        out.push_str(&format!(
            "{}: {}.\n",
            plural(r.problems.len(), ("problem", "problems")),
            parts.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_ipam::ClusterIdentity;
    use manul_ipam::check::Summary;

    #[test]
    fn groups_and_summary() {
        let report = Report {
            cluster: ClusterIdentity::default(),
            revision: 42,
            summary: Summary {
                blocks: 1,
                affinities: 1,
                handles: 2,
                workload_endpoints: 1,
                allocated: 3,
            },
            problems: vec![
                Problem::Leaked {
                    ip: "10.65.0.2".parse().unwrap(),
                    block: "10.65.0.0/26".parse().unwrap(),
                    handle: Some("k8s-pod-network.b".into()),
                    sequence_number: Some(1),
                    attributes: [
                        ("namespace".into(), "default".into()),
                        ("pod".into(), "p2".into()),
                        ("node".into(), "n1".into()),
                    ]
                    .into(),
                },
                Problem::MissingHandle {
                    handle: "k8s-pod-network.c".into(),
                    actual: [("10.65.0.0/26".into(), 1)].into(),
                },
            ],
            checked: Vec::new(),
        };
        assert_eq!(
            describe(&report),
            "Leaked addresses (allocated under a pod handle, no WorkloadEndpoint uses them):\n\
             \x20 10.65.0.2   block 10.65.0.0/26, handle k8s-pod-network.b, pod default/p2, node n1\n\
             Handles holding addresses without a handle record:\n\
             \x20 k8s-pod-network.c   blocks hold 1 in 10.65.0.0/26\n\
             Summary: 1 block, 1 affinity, 2 handles, 1 workload endpoint, 3 allocated addresses \
             at revision 42; 2 problems: 1 leaked address, 1 missing handle.\n"
        );
    }
}
