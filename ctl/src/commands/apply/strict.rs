//! `create` and `replace`: apply's checks with a stricter rule about what
//! is stored. `create` refuses an object that exists (`--skip-exists`
//! passes over it), `replace` one that does not; `replace` honours
//! `metadata.resourceVersion` (the etcd mod revision `get` prints, as
//! Calico's API does): a stale one is refused and nothing is written.
//!
//! As with apply, every object is checked before the first write; each
//! write is guarded (create: absent; replace: the revision read), so a
//! writer in between makes the write fail with exit code 4, not overwrite.

use std::path::Path;

use manul_datastore::Datastore;
use manul_datastore::etcd::Error;

use super::plan::{self, Action, Step};
use super::{name_of, problems_error, read_input};
use crate::context::Context;
use crate::error::{Failure, etcd_error, fail};
use crate::output::emit;

/// Which verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create; objects that exist are refused, or passed over when `skip_exists`.
    Create {
        /// calicoctl's `--skip-exists`.
        skip_exists: bool,
    },
    /// Replace; objects that do not exist are refused.
    Replace,
}

/// One object's fate.
enum Plan {
    Write(Box<Step>),
    Skip(String),
}

/// Runs `create` or `replace` on `files`.
pub async fn run(
    ctx: &Context,
    files: &[impl AsRef<Path>],
    namespace: &str,
    mode: Mode,
) -> anyhow::Result<()> {
    let (items, mut problems) = read_input(files, namespace)?;
    if !problems.is_empty() {
        return Err(problems_error(problems, None));
    }
    for w in super::warn::warnings(&items) {
        eprintln!("{w}");
    }
    let ds = ctx.datastore().await?;
    let steps = plan::check_stored(&ds, items, &mut problems).await?;
    if !problems.is_empty() {
        return Err(problems_error(problems, None));
    }
    // What is stored decides: create wants each absent, replace present.
    let (mut exist, mut missing, mut plans) = (Vec::new(), Vec::new(), Vec::new());
    for step in steps {
        let stored = step.action != Action::Create;
        match (mode, stored) {
            (Mode::Create { .. }, false) | (Mode::Replace, true) => {
                plans.push(Plan::Write(Box::new(step)))
            }
            (Mode::Create { skip_exists: true }, true) => {
                plans.push(Plan::Skip(name_of(&step.item)))
            }
            (Mode::Create { .. }, true) => exist.push(format!(
                "{}: {} already exists",
                step.item.source,
                step.item.desired.describe()
            )),
            (Mode::Replace, false) => missing.push(format!(
                "{}: {} does not exist",
                step.item.source,
                step.item.desired.describe()
            )),
        }
    }
    if !exist.is_empty() {
        return Err(fail(
            Failure::Conflict,
            format!(
                "nothing was created:\n  {}\nUse `manulctl replace` or `apply` to change \
                 them, or --skip-exists to pass over them.",
                exist.join("\n  ")
            ),
        ));
    }
    if !missing.is_empty() {
        return Err(fail(
            Failure::NotFound,
            format!(
                "nothing was replaced:\n  {}\nUse `manulctl create` or `apply` to create them.",
                missing.join("\n  ")
            ),
        ));
    }
    let total = plans.len();
    for (done, p) in plans.into_iter().enumerate() {
        match p {
            Plan::Skip(name) => emit(&format!("{name} skipped (exists)\n")),
            Plan::Write(step) => {
                let name = name_of(&step.item);
                match write(&ds, *step, mode).await {
                    Ok(word) => emit(&format!("{name} {word}\n")),
                    Err(e) => {
                        if done > 0 {
                            eprintln!(
                                "note: {done} of {total} objects were written before this \
                                 failure; the rest were not."
                            );
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes one step, guarded; never retried (the object was checked
/// against what was read).
async fn write(ds: &Datastore, step: Step, mode: Mode) -> anyhow::Result<&'static str> {
    let what = step.item.desired.describe();
    let json = step.write.to_json();
    let result = match (mode, step.action) {
        (Mode::Create { .. }, _) => ds.create(&step.item.key, json).await.map(|_| "created"),
        (Mode::Replace, Action::Unchanged) => return Ok("replaced (unchanged)"),
        (Mode::Replace, Action::Update { mod_revision }) => ds
            .update(&step.item.key, json, mod_revision)
            .await
            .map(|_| "replaced"),
        // Replace never plans a create: absent objects were refused above.
        (Mode::Replace, Action::Create) => {
            return Err(fail(
                Failure::NotFound,
                format!("{what} does not exist: use `manulctl create` to create it"),
            ));
        }
    };
    match result {
        Ok(word) => Ok(word),
        Err(Error::Conflict { .. }) if matches!(mode, Mode::Create { .. }) => Err(fail(
            Failure::Conflict,
            format!("{what} was created by another writer in the meantime: nothing written"),
        )),
        Err(Error::Conflict { .. }) => Err(fail(
            Failure::Conflict,
            format!("{what} changed since it was read: nothing written; get it again and retry"),
        )),
        Err(Error::NotFound { .. }) => Err(fail(
            Failure::NotFound,
            format!("{what} was deleted in the meantime: nothing written"),
        )),
        Err(e) => Err(etcd_error(e, &format!("writing {what}"))),
    }
}
