//! `manulctl ipam ...`: IP address management, answered and changed by
//! the `manul-ipam` library (this module only parses, prints and maps
//! errors to exit codes).
//!
//! - [`show`]: pool and block use, borrowed addresses, the config, one address.
//! - [`check`]: the leak check, its report file, exit code 7 on problems.
//! - [`release`]: release addresses, or apply a leak report.
//! - [`configure`]: the cluster-wide IPAM config.
//! - [`split`]: a pool split into 2^n pools.

pub mod check;
pub mod configure;
pub mod release;
pub mod show;
pub mod split;

use manul_ipam::Ipam;

use crate::cli::Command;
use crate::context::Context;

pub const LONG_ABOUT: &str = "\
IP address management, in Calico's layout (/calico/ipam/v2/...), so manulctl
and calicoctl see the same allocations.

  show       how full the pools and blocks are, borrowed addresses, the IPAM
             configuration, or who holds one address
  check      look for leaked addresses and inconsistent records; write a
             report that `release --from-report` applies
  release    release addresses, or apply a check report
  configure  strict affinity, automatic block allocation, blocks per host
  split      split a pool into 2^n equal pools";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl ipam show
  $ manulctl ipam show --show-blocks --show-borrowed
  $ manulctl ipam show --ip 10.65.0.3
  $ manulctl ipam check -o report.json        # exit code 7 when it finds problems
  $ manulctl ipam release --from-report report.json
  $ manulctl ipam release --ip 10.65.0.3
  $ manulctl ipam configure --strictaffinity=true --max-blocks-per-host 4
  $ manulctl ipam split --cidr=10.65.0.0/16 4

Run `manulctl ipam <command> --help` for each command's options and examples.";

/// `ipam` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The IPAM command.
    #[command(subcommand)]
    pub command: IpamCommand,
}

/// The `ipam` commands.
#[derive(Debug, clap::Subcommand)]
pub enum IpamCommand {
    /// How full the pools and blocks are; borrowed addresses; the config;
    /// who holds an address.
    #[command(long_about = show::LONG_ABOUT, after_help = show::AFTER_HELP)]
    Show(show::Args),
    /// Look for leaked addresses and inconsistent IPAM records.
    #[command(long_about = check::LONG_ABOUT, after_help = check::AFTER_HELP)]
    Check(check::Args),
    /// Release addresses, or apply a report of `ipam check`.
    #[command(long_about = release::LONG_ABOUT, after_help = release::AFTER_HELP)]
    Release(release::Args),
    /// Change the cluster-wide IPAM configuration.
    #[command(long_about = configure::LONG_ABOUT, after_help = configure::AFTER_HELP)]
    Configure(configure::Args),
    /// Split an IP pool into 2^n equal pools.
    #[command(long_about = split::LONG_ABOUT, after_help = split::AFTER_HELP)]
    Split(split::Args),
}

/// Whether `command` takes `-o FILE` (only `ipam check` does).
pub fn takes_output_file(command: &Command) -> bool {
    matches!(
        command,
        Command::Ipam(Args {
            command: IpamCommand::Check(_)
        })
    )
}

/// Runs an `ipam` command.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let ipam = Ipam::new(ctx.datastore().await?);
    match &args.command {
        IpamCommand::Show(a) => show::run(ctx, &ipam, a).await,
        IpamCommand::Check(a) => check::run(ctx, &ipam, a).await,
        IpamCommand::Release(a) => release::run(ctx, &ipam, a).await,
        IpamCommand::Configure(a) => configure::run(ctx, &ipam, a).await,
        IpamCommand::Split(a) => split::run(ctx, &ipam, a).await,
    }
}

/// `part` of `total` as a percentage for a table: whole percents, with
/// `<1%` and `>99%` so that neither a nearly empty nor a nearly full pool
/// reads as 0% or 100%.
pub fn percent(part: u128, total: u128) -> String {
    if total == 0 {
        return "0%".into();
    }
    if part == 0 || part == total {
        return format!("{}%", if part == 0 { 0 } else { 100 });
    }
    let p = ratio(part, total);
    if p < 1.0 {
        "<1%".into()
    } else if p > 99.0 {
        ">99%".into()
    } else {
        format!("{p:.0}%")
    }
}

/// `part` of `total` in percent, to two decimals (for JSON and YAML).
pub fn ratio(part: u128, total: u128) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Precision: f64 is exact enough for a percentage even of /48 pools.
    let p = part as f64 * 100.0 / total as f64;
    (p * 100.0).round() / 100.0
}

/// A count as a JSON number, or as a string when it does not fit in 64
/// bits (an IPv6 pool of /64 or larger): JSON readers lose precision
/// above 2^53 anyway, and serde_json refuses numbers above 2^64.
pub fn count(n: u128) -> serde_json::Value {
    match u64::try_from(n) {
        Ok(n) => n.into(),
        Err(_) => n.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 256), "0%");
        assert_eq!(percent(256, 256), "100%");
        assert_eq!(percent(5, 256), "2%");
        assert_eq!(percent(251, 256), "98%");
        assert_eq!(percent(1, 65536), "<1%");
        assert_eq!(percent(65535, 65536), ">99%");
        assert_eq!(percent(0, 0), "0%");
        assert_eq!(ratio(5, 256), 1.95);
        assert_eq!(count(1 << 64), serde_json::json!("18446744073709551616"));
        assert_eq!(count(256), serde_json::json!(256));
    }
}
