//! `manulctl create -f FILE`: create objects that must not exist yet.

use std::path::PathBuf;

use crate::commands::apply::strict::{self, Mode};
use crate::context::Context;

pub const LONG_ABOUT: &str = "\
Create the objects in one or more YAML or JSON files (`-` reads standard
input), as `calicoctl create` does. Every object is checked first (the same
checks as apply); if any already exists, nothing is created and the run
exits with code 4, unless --skip-exists passes over the existing ones.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl create -f policy.yaml
  networkpolicy.projectcalico.org/default.allow-dns (namespace prod) created

  $ manulctl create -f policy.yaml              # again: exit code 4
  error: nothing was created:
    policy.yaml, document 1: NetworkPolicy \"prod/default.allow-dns\" already exists
  Use `manulctl replace` or `apply` to change them, or --skip-exists to pass over them.

  $ manulctl create -f policy.yaml --skip-exists
  networkpolicy.projectcalico.org/default.allow-dns (namespace prod) skipped (exists)";

/// `create` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File to read (YAML or JSON; `-` for standard input). Repeat for more.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Namespace of namespaced objects (WorkloadEndpoint, NetworkPolicy,
    /// NetworkSet) that set none.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Pass over objects that already exist (and succeed), as calicoctl's
    /// --skip-exists.
    #[arg(long)]
    pub skip_exists: bool,
}

/// Runs `create`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let mode = Mode::Create {
        skip_exists: args.skip_exists,
    };
    strict::run(ctx, &args.files, &args.namespace, mode).await
}
