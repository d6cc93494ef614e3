//! The command line: global options (how to reach etcd, the output
//! format) and the subcommands, each defined in its own module under
//! [`crate::commands`].
//!
//! To add a command group (e.g. `ipam`): write `commands/ipam/mod.rs` with
//! an `Args` type (a `clap::Args` holding a `Subcommand` enum) and an
//! `async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()>`, add a
//! variant to [`Command`] and one arm to `commands::run`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use manul_datastore::etcd::config::DEFAULT_ENDPOINT;

use crate::commands::{apply, completion, create, delete, get, ipam, label, node, patch, replace};
use crate::error::EXIT_CODES_HELP;

const ABOUT: &str = "Manage manul's (and Calico's) configuration in etcd.";

const LONG_ABOUT: &str = "\
Manage manul's configuration: IP pools, BGP peers, BGP configuration, BGP
filters and nodes, and the rest of Calico's kinds (policies, network sets,
host endpoints, profiles, FelixConfiguration), stored in etcd in Calico's layout
(/calico/resources/v3/projectcalico.org/...), so manulctl and calicoctl read
and write the same objects. `manulctl ipam` shows, checks and repairs IP
address management (/calico/ipam/v2/...).

Objects are Kubernetes-style YAML or JSON (apiVersion: projectcalico.org/v3,
kind, metadata, spec), the same files calicoctl takes.";

const AFTER_HELP: &str = "\
Examples:
  # Create or update everything in a file (all checked before anything is written)
  $ manulctl apply -f pools.yaml
  ippool.projectcalico.org/pool-a created
  bgppeer.projectcalico.org/tor-1 configured

  # List pools as a table, or one pool as YAML
  $ manulctl get ippools
  $ manulctl get ippool pool-a -o yaml

  # Delete a peer
  $ manulctl delete bgppeer tor-1

  # Create (fails if it exists), replace (fails if absent or stale), patch, label
  $ manulctl create -f policy.yaml
  $ manulctl replace -f policy.yaml
  $ manulctl patch ippool pool-a -p '{\"spec\":{\"natOutgoing\":false}}'
  $ manulctl label node node1 rack=r1 --overwrite
  $ manulctl label node node1 rack-

  # How full the pools are; find and release leaked addresses
  $ manulctl ipam show --show-blocks
  $ manulctl ipam check -o report.json
  $ manulctl ipam release --from-report report.json

  # Talk to another etcd (or set ETCD_ENDPOINTS)
  $ manulctl --etcd-endpoints https://10.0.0.1:2379 --etcd-ca-cert-file ca.pem get nodes

  # Shell completion
  $ source <(manulctl completion bash)

Kinds: IPPool (ippools), BGPConfiguration (bgpconfigurations), BGPPeer (bgppeers),
BGPFilter (bgpfilters), Node (nodes), WorkloadEndpoint (workloadendpoints, namespaced),
NetworkPolicy (networkpolicies, namespaced), GlobalNetworkPolicy (globalnetworkpolicies),
NetworkSet (networksets, namespaced), GlobalNetworkSet (globalnetworksets), HostEndpoint
(hostendpoints), Profile (profiles), FelixConfiguration (felixconfigurations),
IPReservation (ipreservations: addresses IPAM never assigns automatically).
Case does not matter; plurals and calicoctl's short names (ipp, bgpp, wep, np, gnp, hep,
felixconfig...) work. Policies, sets, host endpoints and profiles are stored and validated
as Calico does, for calicoctl and Calico's agents; manul-node does not enforce policy.

Run `manulctl <command> --help` for each command's options and examples.
";

/// `manulctl`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "manulctl",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = format!("{AFTER_HELP}\n{EXIT_CODES_HELP}"),
    propagate_version = true,
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach etcd, and how to print. Each etcd option also reads the
/// environment variable calico-node and calicoctl use.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// etcd client URLs, comma-separated.
    #[arg(
        long,
        global = true,
        env = "ETCD_ENDPOINTS",
        value_name = "URLS",
        default_value = DEFAULT_ENDPOINT,
        help_heading = "etcd"
    )]
    pub etcd_endpoints: String,
    /// PEM file of the CA that signed etcd's certificates (turns TLS on).
    #[arg(
        long,
        global = true,
        env = "ETCD_CA_CERT_FILE",
        value_name = "FILE",
        help_heading = "etcd"
    )]
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate (with --etcd-key-file).
    #[arg(
        long,
        global = true,
        env = "ETCD_CERT_FILE",
        value_name = "FILE",
        help_heading = "etcd"
    )]
    pub etcd_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's key (with --etcd-cert-file).
    #[arg(
        long,
        global = true,
        env = "ETCD_KEY_FILE",
        value_name = "FILE",
        help_heading = "etcd"
    )]
    pub etcd_key_file: Option<PathBuf>,
    /// etcd user name (with --etcd-password).
    #[arg(
        long,
        global = true,
        env = "ETCD_USERNAME",
        value_name = "USER",
        help_heading = "etcd"
    )]
    pub etcd_username: Option<String>,
    /// etcd password (prefer the variable: flags show in `ps`).
    #[arg(
        long,
        global = true,
        env = "ETCD_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        help_heading = "etcd"
    )]
    pub etcd_password: Option<String>,
    /// How long each etcd request may take, e.g. 10s, 500ms, 1m.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration,
        help_heading = "etcd"
    )]
    pub request_timeout: Duration,
    /// Output format: table, wide (more columns), json or yaml. `ipam
    /// check` also takes a FILE to write its report to (a file named like
    /// a format: ./json).
    #[arg(
        short = 'o',
        long,
        global = true,
        value_name = "FORMAT",
        value_parser = OutputParser,
        default_value = "table"
    )]
    pub output: OutputArg,
}

/// What `-o` names: a format, or (`ipam check` only) a report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputArg {
    /// An output format.
    Format(Output),
    /// A file to write to.
    File(PathBuf),
}

/// Parses `-o`: a format name (any case), else a file name. Help and shell
/// completion offer the format names; commands other than `ipam check`
/// refuse a file name (see `commands::run`).
#[derive(Debug, Clone, Copy)]
pub struct OutputParser;

impl TypedValueParser for OutputParser {
    type Value = OutputArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<OutputArg, clap::Error> {
        if let Some(format) = value.to_str().and_then(|s| Output::from_str(s, true).ok()) {
            return Ok(OutputArg::Format(format));
        }
        if value.is_empty() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                "-o/--output needs a value: table, wide, json or yaml\n",
            )
            .with_cmd(cmd));
        }
        Ok(OutputArg::File(PathBuf::from(value)))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            Output::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// Aligned columns, more of them.
    Wide,
    /// JSON: one object, or a List of them.
    Json,
    /// YAML: one object, or a List of them.
    Yaml,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from YAML/JSON files.
    #[command(
        long_about = apply::LONG_ABOUT,
        after_help = apply::AFTER_HELP
    )]
    Apply(apply::Args),
    /// Create objects from YAML/JSON files; refused if any exists.
    #[command(
        long_about = create::LONG_ABOUT,
        after_help = create::AFTER_HELP
    )]
    Create(create::Args),
    /// Replace stored objects from YAML/JSON files, honouring resourceVersion.
    #[command(
        long_about = replace::LONG_ABOUT,
        after_help = replace::AFTER_HELP
    )]
    Replace(replace::Args),
    /// Change a stored object with a JSON merge patch (RFC 7386).
    #[command(
        long_about = patch::LONG_ABOUT,
        after_help = patch::AFTER_HELP
    )]
    Patch(patch::Args),
    /// Set or remove labels of a stored object.
    #[command(
        long_about = label::LONG_ABOUT,
        after_help = label::AFTER_HELP
    )]
    Label(label::Args),
    /// Show objects of one kind, as a table, JSON or YAML.
    #[command(
        long_about = get::LONG_ABOUT,
        after_help = get::AFTER_HELP
    )]
    Get(get::Args),
    /// Delete objects by kind and name, or those in files.
    #[command(
        long_about = delete::LONG_ABOUT,
        after_help = delete::AFTER_HELP
    )]
    Delete(delete::Args),
    /// IP address management: show use, check for leaks, release, configure.
    #[command(
        long_about = ipam::LONG_ABOUT,
        after_help = ipam::AFTER_HELP
    )]
    Ipam(ipam::Args),
    /// The local manul-node agent: BGP peers, routes, sync state.
    #[command(
        long_about = node::LONG_ABOUT,
        after_help = node::AFTER_HELP
    )]
    Node(node::Args),
    /// Print a shell completion script.
    #[command(
        long_about = completion::LONG_ABOUT,
        after_help = completion::AFTER_HELP
    )]
    Completion(completion::Args),
}

/// Parses `10s`, `500ms`, `2m`, or plain seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 10s, 500ms or 1m"))?;
    if !value.is_finite() || value <= 0.0 || value * scale > 3600.0 {
        return Err(format!("{s:?}: use a duration above 0 and at most 1h"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_is_a_format_or_a_file() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["manulctl"].iter().chain(args).copied().collect::<Vec<_>>())
                .map(|c| c.global.output)
        };
        assert_eq!(
            parse(&["get", "ippools"]).unwrap(),
            OutputArg::Format(Output::Table)
        );
        assert_eq!(
            parse(&["get", "ippools", "-o", "JSON"]).unwrap(),
            OutputArg::Format(Output::Json)
        );
        assert_eq!(
            parse(&["ipam", "check", "-o", "report.json"]).unwrap(),
            OutputArg::File("report.json".into())
        );
        assert!(parse(&["ipam", "check", "-o", ""]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
