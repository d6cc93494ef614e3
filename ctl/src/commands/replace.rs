//! `manulctl replace -f FILE`: replace objects that must exist, honouring
//! `metadata.resourceVersion`.

use std::path::PathBuf;

use crate::commands::apply::strict::{self, Mode};
use crate::context::Context;

pub const LONG_ABOUT: &str = "\
Replace the objects in one or more YAML or JSON files (`-` reads standard
input) with the files' versions, as `calicoctl replace` does: fields the file
leaves out are removed; uid and creation time are kept. Every object is
checked first; if any does not exist, nothing is written (exit code 3).

With metadata.resourceVersion set (as `manulctl get -o yaml` prints it: the
etcd revision of the object's last write), the object is replaced only if it
is still at that revision; a stale one is refused with exit code 4 and
nothing is written. Without it, the write is guarded by the revision read.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl get gnp default.deny-blue -o yaml > gnp.yaml    # edit gnp.yaml
  $ manulctl replace -f gnp.yaml
  globalnetworkpolicy.projectcalico.org/default.deny-blue replaced

  $ manulctl replace -f gnp.yaml     # resourceVersion is stale now: exit code 4
  error: nothing was applied: 1 problem
    gnp.yaml, document 1: GlobalNetworkPolicy \"default.deny-blue\": metadata.resourceVersion is 41 but the stored object is at 57: ...

  $ manulctl replace -f new.yaml     # not stored: exit code 3";

/// `replace` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File to read (YAML or JSON; `-` for standard input). Repeat for more.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Namespace of namespaced objects (WorkloadEndpoint, NetworkPolicy,
    /// NetworkSet) that set none.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
}

/// Runs `replace`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    strict::run(ctx, &args.files, &args.namespace, Mode::Replace).await
}
