//! `manulctl delete KIND NAME...` and `manulctl delete -f FILE`: guarded
//! deletes.
//!
//! Each delete is guarded by the revision just read (or by the file's
//! `metadata.resourceVersion`), so an object rewritten in between is
//! re-read rather than deleted blindly; a file's objects must each exist
//! (or `--ignore-not-found`). Missing objects do not stop the others from
//! being deleted; they are reported at the end with exit code 3.

use std::path::PathBuf;

use manul_datastore::etcd::Error;
use manul_datastore::keys::Key;
use manul_datastore::{Datastore, ResourceKind};

use crate::context::Context;
use crate::error::{Failure, etcd_error, fail};
use crate::kind::{self, display_name};
use crate::manifest;
use crate::output::emit;
use crate::store;

/// Deletes of one key before giving up on a key that keeps changing.
const MAX_ATTEMPTS: usize = 5;

pub const LONG_ABOUT: &str = "\
Delete objects by kind and name, or the objects in YAML/JSON files (the same
files `apply` takes; only kind, metadata.name and metadata.namespace matter,
and metadata.resourceVersion when set: then the object is deleted only if it
has not changed since).

Objects that do not exist are reported at the end (exit code 3) after the
others are deleted; --ignore-not-found makes that a success.

`delete node NAME` removes the node as calicoctl does in etcd mode: it
releases the node's addresses in IPAM (its workloads', its tunnel
addresses) and its block affinities (an empty block is deleted; a block
still holding addresses is kept, with no affinity, for any host to claim),
deletes its WorkloadEndpoints, the BGPPeers whose spec.node is the node and
its per-node BGPConfiguration/FelixConfiguration (node.NAME), then the Node,
printing each thing removed. --dry-run prints what would be removed and
changes nothing. The Node goes last, so an interrupted run is finished by
running it again; a node already deleted (for instance by an older manulctl)
still has what it left behind removed. Stop the node's agent first.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl delete bgppeer tor-1
  bgppeer.projectcalico.org/tor-1 deleted

  $ manulctl delete ippools pool-a pool-b
  ippool.projectcalico.org/pool-a deleted
  ippool.projectcalico.org/pool-b deleted

  $ manulctl delete -f pools.yaml
  $ manulctl delete wep -n prod node1-k8s-web-eth0
  $ manulctl delete ippool gone --ignore-not-found    # exit code 0 even if absent
  $ manulctl delete node host3 --dry-run             # what removing host3 would remove
  $ manulctl delete node host3";

/// `delete` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind (any case, plural or short name), followed by names.
    #[arg(value_name = "KIND", required_unless_present = "files")]
    pub kind: Option<String>,
    /// Names of the objects to delete.
    #[arg(value_name = "NAME", requires = "kind")]
    pub names: Vec<String>,
    /// Delete the objects in this file (`-` for standard input). Repeat for more.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with = "kind"
    )]
    pub files: Vec<PathBuf>,
    /// Namespace of namespaced kinds (WorkloadEndpoint, NetworkPolicy, NetworkSet).
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Succeed when an object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// `delete node` only: print what would be removed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One object to delete.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) kind: ResourceKind,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) expected: Option<i64>,
}

impl Target {
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {:?} in namespace {ns:?}", self.kind, self.name),
            None => format!("{} {:?}", self.kind, self.name),
        }
    }
}

fn targets_from_args(args: &Args, kind_arg: &str) -> anyhow::Result<Vec<Target>> {
    let kind = kind::parse(kind_arg)?;
    if args.names.is_empty() {
        return Err(fail(
            Failure::General,
            format!(
                "name the {kind} objects to delete: manulctl delete {} NAME...",
                kind.plural()
            ),
        ));
    }
    let namespace = kind.namespaced().then(|| args.namespace.clone());
    args.names
        .iter()
        .map(|name| {
            let key = match &namespace {
                Some(ns) => Key::namespaced(kind, ns.as_str(), name.as_str()),
                None => Key::resource(kind, name.as_str()),
            };
            let key = key
                .path()
                .map_err(|e| fail(Failure::Invalid, format!("{kind} name {name:?}: {e}")))?;
            Ok(Target {
                kind,
                namespace: namespace.clone(),
                name: name.clone(),
                key,
                expected: None,
            })
        })
        .collect()
}

fn targets_from_files(args: &Args) -> anyhow::Result<Vec<Target>> {
    let (parsed, problems) = manifest::read_files(&args.files, &args.namespace);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("\n  {p}")).collect();
        return Err(fail(
            Failure::Invalid,
            format!(
                "nothing was deleted: the input has problems:{}",
                list.concat()
            ),
        ));
    }
    let mut out = Vec::new();
    for p in parsed {
        let o = p.object;
        let rv = &o.meta().resource_version;
        let expected = match rv.parse::<i64>() {
            _ if rv.is_empty() => None,
            Ok(r) if r > 0 => Some(r),
            _ => {
                return Err(fail(
                    Failure::Invalid,
                    format!(
                        "{}: metadata.resourceVersion {rv:?} is not a revision: remove it",
                        p.source
                    ),
                ));
            }
        };
        let key = o
            .key()
            .path()
            .map_err(|e| fail(Failure::Invalid, format!("{}: {e}", p.source)))?;
        out.push(Target {
            kind: o.kind(),
            namespace: o.namespace().map(str::to_owned),
            name: o.name().to_owned(),
            key,
            expected,
        });
    }
    Ok(out)
}

/// Deletes one object; `Ok(false)` when it does not exist.
pub(crate) async fn delete_one(ds: &Datastore, t: &Target) -> anyhow::Result<bool> {
    let what = t.describe();
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = store::get(ds, t.kind, &t.key).await? else {
            return Ok(false);
        };
        let guard = match t.expected {
            Some(expected) if expected != current.mod_revision => {
                return Err(fail(
                    Failure::Conflict,
                    format!(
                        "{what}: metadata.resourceVersion is {expected} but the stored object \
                         is at {}: it changed since it was read; get it again, or remove \
                         resourceVersion to delete it anyway",
                        current.mod_revision
                    ),
                ));
            }
            _ => current.mod_revision,
        };
        match ds.delete(&t.key, guard).await {
            Ok(_) => return Ok(true),
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(Error::Conflict { .. }) if t.expected.is_none() => continue,
            Err(e) => return Err(etcd_error(e, &format!("deleting {what}"))),
        }
    }
    Err(fail(
        Failure::Conflict,
        format!("{what} kept changing while it was deleted ({MAX_ATTEMPTS} attempts): try again"),
    ))
}

/// Runs `delete`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    if let Some(kind_arg) = &args.kind {
        if kind::parse(kind_arg)? == ResourceKind::Node {
            return super::delete_node::run(ctx, args).await;
        }
    }
    if args.dry_run {
        return Err(fail(
            Failure::General,
            "--dry-run is for `delete node NAME...` only",
        ));
    }
    let targets = match &args.kind {
        Some(kind_arg) => targets_from_args(args, kind_arg)?,
        None => targets_from_files(args)?,
    };
    if targets.is_empty() {
        return Err(fail(
            Failure::Invalid,
            "the input holds no objects to delete",
        ));
    }
    let ds = ctx.datastore().await?;
    let mut missing = Vec::new();
    for t in &targets {
        if delete_one(&ds, t).await? {
            emit(&format!(
                "{} deleted\n",
                display_name(t.kind, t.namespace.as_deref(), &t.name)
            ));
        } else {
            missing.push(format!("{} not found", t.describe()));
        }
    }
    missing_is_an_error(&missing, args.ignore_not_found)
}

/// Exit code 3 naming what was not found, unless `--ignore-not-found`.
pub(crate) fn missing_is_an_error(
    missing: &[String],
    ignore_not_found: bool,
) -> anyhow::Result<()> {
    if missing.is_empty() || ignore_not_found {
        return Ok(());
    }
    Err(fail(
        Failure::NotFound,
        format!(
            "{} (use --ignore-not-found to accept that)",
            missing.join("; ")
        ),
    ))
}
