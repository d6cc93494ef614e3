//! `manulctl apply -f FILE`: create or update objects, all or nothing at
//! the checking stage.
//!
//! Phase one ([`plan`]) parses and checks every object and reads what is
//! stored; any problem stops the run before a single write, listing every
//! problem with its file and document. Phase two writes each object that
//! differs: a create guarded by "absent", or an update guarded by the
//! revision read; when someone else wrote in between, the object is read
//! and decided again (up to [`MAX_ATTEMPTS`] times). Each object is
//! reported as `created`, `configured` or `unchanged`.

pub mod plan;
pub mod strict;
pub mod warn;

use std::path::PathBuf;

use manul_datastore::Datastore;
use manul_datastore::etcd::Error;

use self::plan::{Action, Item, Problems, Refusal, Step, decide};
use crate::context::Context;
use crate::error::{Failure, etcd_error, fail};
use crate::kind::display_name;
use crate::manifest::{self, Problem};
use crate::output::emit;
use crate::store;

/// Writes of one object before giving up on a key that keeps changing.
pub const MAX_ATTEMPTS: usize = 5;

pub const LONG_ABOUT: &str = "\
Create or update the objects in one or more YAML or JSON files (`-` reads
standard input). A file may hold several documents separated by `---`, or a
List as `manulctl get -o yaml` prints it.

Everything is checked before anything is written: each object's fields (the
datastore's validation rules), pools overlapping each other or pools already
in etcd, fields that cannot change (an IPPool's cidr and blockSize), and
duplicates. If anything is wrong, nothing is written and every problem is
listed with its file and document number.

An object that exists is replaced by the file's version (fields the file
leaves out are removed), keeping its uid and creation time. With
metadata.resourceVersion set (as `get` prints it), the update only happens
if the object has not changed since; otherwise the run stops with exit code 4.";

pub const AFTER_HELP: &str = "\
Examples:
  $ cat pools.yaml
  apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    name: pool-a
  spec:
    cidr: 10.65.0.0/16
    ipipMode: Never
    natOutgoing: true
  ---
  apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata:
    name: tor-1
  spec:
    peerIP: 192.0.2.1
    asNumber: 65001

  $ manulctl apply -f pools.yaml
  ippool.projectcalico.org/pool-a created
  bgppeer.projectcalico.org/tor-1 created

  $ manulctl apply -f pools.yaml          # again: nothing to do
  ippool.projectcalico.org/pool-a unchanged
  bgppeer.projectcalico.org/tor-1 unchanged

  $ manulctl apply -f bad.yaml            # nothing is written; exit code 2
  error: nothing was applied: 2 problems
    bad.yaml, document 1: IPPool \"p\": spec.cidr: 10.0.0.1/16 has host bits set; the network is 10.0.0.0/16
    bad.yaml, document 2: BGPPeer \"x\": spec.peerSelector: cannot be set together with spec.peerIP

  $ manulctl get ippool pool-a -o yaml | sed 's/natOutgoing: true/natOutgoing: false/' | manulctl apply -f -
  ippool.projectcalico.org/pool-a configured

  $ manulctl apply -f pools.yaml --dry-run   # check and show what would happen";

/// `apply` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File to apply (YAML or JSON; `-` for standard input). Repeat for more.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Namespace of namespaced objects (WorkloadEndpoint, NetworkPolicy, NetworkSet) that set none.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Check everything and print what would happen; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }

    fn of(action: Action) -> Self {
        match action {
            Action::Create => Outcome::Created,
            Action::Update { .. } => Outcome::Configured,
            Action::Unchanged => Outcome::Unchanged,
        }
    }
}

pub(crate) fn name_of(item: &Item) -> String {
    let o = &item.desired;
    display_name(o.kind(), o.namespace(), o.name())
}

/// The error listing every problem; exit code 2, or 4 when all are
/// conflicts.
pub(crate) fn problems_error(problems: Problems, extra: Option<String>) -> anyhow::Error {
    let failure = if problems.invalid.is_empty() && extra.is_none() {
        Failure::Conflict
    } else {
        Failure::Invalid
    };
    let mut all: Vec<Problem> = problems
        .invalid
        .into_iter()
        .chain(problems.conflicts)
        .collect();
    all.sort();
    let mut msg = format!(
        "nothing was applied: {} problem{}",
        all.len(),
        if all.len() == 1 { "" } else { "s" }
    );
    for p in &all {
        msg.push_str(&format!("\n  {p}"));
    }
    if let Some(extra) = extra {
        msg.push_str(&format!("\n  {extra}"));
    }
    msg.push_str("\nFix these and run apply again.");
    fail(failure, msg)
}

/// The objects in `files` (`-`: standard input) with the problems found
/// without etcd (parse errors, validation); refused when there are none
/// at all. Shared by apply, create and replace.
fn read_input(
    files: &[impl AsRef<std::path::Path>],
    namespace: &str,
) -> anyhow::Result<(Vec<plan::Item>, Problems)> {
    let files: Vec<_> = files.iter().map(|f| f.as_ref().to_path_buf()).collect();
    let (parsed, parse_problems) = manifest::read_files(&files, namespace);
    if parsed.is_empty() && parse_problems.is_empty() {
        return Err(fail(
            Failure::Invalid,
            "the input holds no objects: give a file with at least one \
             apiVersion/kind/metadata/spec document",
        ));
    }
    let mut problems = Problems {
        invalid: parse_problems,
        ..Problems::default()
    };
    let items = plan::check_input(parsed, &mut problems);
    Ok((items, problems))
}

/// Runs `apply`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let (items, mut problems) = read_input(&args.files, &args.namespace)?;
    if problems.invalid.is_empty() {
        for w in warn::warnings(&items) {
            eprintln!("{w}");
        }
    }
    let stored = async {
        let ds = ctx.datastore().await?;
        let steps = plan::check_stored(&ds, items, &mut problems).await?;
        anyhow::Ok((ds, steps))
    }
    .await;
    let (ds, steps) = match stored {
        Ok(ok) if problems.is_empty() => ok,
        Ok(_) => return Err(problems_error(problems, None)),
        // Report what was found without etcd, and why the rest was not checked.
        Err(e) if !problems.is_empty() => {
            let note = format!("(not checked against etcd: {e:#})");
            return Err(problems_error(problems, Some(note)));
        }
        Err(e) => return Err(e),
    };
    if args.dry_run {
        for step in &steps {
            emit(&format!(
                "{} {} (dry run)\n",
                name_of(&step.item),
                Outcome::of(step.action).word()
            ));
        }
        return Ok(());
    }
    let total = steps.len();
    for (done, step) in steps.into_iter().enumerate() {
        let name = name_of(&step.item);
        match execute(&ds, step).await {
            Ok(outcome) => emit(&format!("{name} {}\n", outcome.word())),
            Err(e) => {
                if done > 0 {
                    eprintln!(
                        "note: {done} of {total} objects were applied before this failure; \
                         the rest were not. apply is safe to run again."
                    );
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes one step, re-reading and deciding again when another writer got
/// in between.
async fn execute(ds: &Datastore, step: Step) -> anyhow::Result<Outcome> {
    let Step {
        item,
        mut action,
        mut write,
    } = step;
    let what = item.desired.describe();
    for _ in 0..MAX_ATTEMPTS {
        let json = write.to_json();
        let result = match action {
            Action::Unchanged => return Ok(Outcome::Unchanged),
            Action::Create => ds.create(&item.key, json).await,
            Action::Update { mod_revision } => ds.update(&item.key, json, mod_revision).await,
        };
        match result {
            Ok(_) => return Ok(Outcome::of(action)),
            Err(Error::Conflict { .. } | Error::NotFound { .. }) if item.expected.is_none() => {
                let current = store::get(ds, item.desired.kind(), &item.key).await?;
                (action, write) = match decide(&item, current.as_ref()) {
                    Ok(decided) => decided,
                    Err(Refusal::Invalid(m)) => return Err(fail(Failure::Invalid, m)),
                    Err(Refusal::Conflict(m)) => return Err(fail(Failure::Conflict, m)),
                };
            }
            Err(e) => return Err(etcd_error(e, &format!("writing {what}"))),
        }
    }
    Err(fail(
        Failure::Conflict,
        format!(
            "{what} kept changing while it was written ({MAX_ATTEMPTS} attempts): another \
             writer is busy with it; run apply again"
        ),
    ))
}
