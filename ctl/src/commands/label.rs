//! `manulctl label KIND NAME KEY=VALUE | KEY- | KEY --remove`: set or
//! remove labels of a stored object, as `calicoctl label` (and kubectl
//! label's `KEY-`) do. Labels are checked with Kubernetes' syntax, which
//! Calico's validator applies to every object's labels.

use serde_json::{Map, Value};

use crate::commands::edit::{self, Edited, Target};
use crate::context::Context;
use crate::error::{Failure, fail};
use crate::kind::{self, display_name};
use crate::output::emit;

pub const LONG_ABOUT: &str = "\
Set or remove labels of a stored object, as `calicoctl label` does.
KEY=VALUE sets a label; a label that exists with another value is refused
unless --overwrite is given. KEY- (or KEY with --remove) removes one; a label
that is not there is refused. Everything else about the object is kept;
the write is guarded by the revision read, so a concurrent change is never
lost.

Keys and values follow Kubernetes' label syntax: a key is an optional DNS
prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and
ending with a letter or digit; a value is empty or the same as a key's name.";

pub const AFTER_HELP: &str = "\
Examples:
  $ manulctl label node node1 rack=r1
  node.projectcalico.org/node1 labeled

  $ manulctl label node node1 rack=r2              # exit code 1
  error: Node \"node1\": label rack is already r1: use --overwrite to change it
  $ manulctl label node node1 rack=r2 --overwrite
  $ manulctl label node node1 rack-                 # or: rack --remove
  node.projectcalico.org/node1 unlabeled
  $ manulctl label networkset db -n prod role=db";

/// `label` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind (any case, plural or short name).
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// The object's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// KEY=VALUE to set, KEY- to remove (with --remove: KEY).
    #[arg(value_name = "LABEL", required = true)]
    pub labels: Vec<String>,
    /// Change labels that exist with another value.
    #[arg(long)]
    pub overwrite: bool,
    /// Remove the given keys (calicoctl's form of KEY-).
    #[arg(long, conflicts_with = "overwrite")]
    pub remove: bool,
    /// Namespace of namespaced kinds (WorkloadEndpoint, NetworkPolicy,
    /// NetworkSet).
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Set(String, String),
    Remove(String),
}

/// A label name part: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric ends.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Kubernetes' label key: `[prefix/]name`, the prefix a DNS subdomain.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !manul_datastore::validate::is_name(p)) || !is_label_name(name) {
        return Err(format!(
            "{key:?} is not a label key: [DNS prefix/]name, the name at most 63 letters, \
             digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn parse_changes(args: &Args) -> anyhow::Result<Vec<Change>> {
    args.labels
        .iter()
        .map(|arg| {
            let change = if args.remove {
                if arg.contains('=') {
                    return Err(format!("with --remove, give keys only, not {arg:?}"));
                }
                Change::Remove(arg.clone())
            } else if let Some((k, v)) = arg.split_once('=') {
                if !v.is_empty() && !is_label_name(v) {
                    return Err(format!(
                        "label {k}: {v:?} is not a label value: empty, or at most 63 letters, \
                         digits, '-', '_' or '.', starting and ending with a letter or digit"
                    ));
                }
                Change::Set(k.to_owned(), v.to_owned())
            } else if let Some(k) = arg.strip_suffix('-') {
                Change::Remove(k.to_owned())
            } else {
                return Err(format!(
                    "{arg:?}: give KEY=VALUE to set, KEY- (or --remove KEY) to remove"
                ));
            };
            let (Change::Set(k, _) | Change::Remove(k)) = &change;
            check_key(k)?;
            Ok(change)
        })
        .collect::<Result<_, String>>()
        .map_err(|e| fail(Failure::Invalid, e))
}

/// Applies `changes` to `labels`; the error names the refused label.
fn relabel(
    labels: &mut Map<String, Value>,
    changes: &[Change],
    overwrite: bool,
    what: &str,
) -> anyhow::Result<()> {
    for change in changes {
        match change {
            Change::Set(k, v) => match labels.get(k).and_then(Value::as_str) {
                Some(old) if old != v && !overwrite => {
                    return Err(fail(
                        Failure::General,
                        format!("{what}: label {k} is already {old}: use --overwrite to change it"),
                    ));
                }
                _ => {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            },
            Change::Remove(k) => {
                if labels.remove(k).is_none() {
                    return Err(fail(
                        Failure::General,
                        format!("{what}: cannot remove label {k}: it is not set"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs `label`.
pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    let kind = kind::parse(&args.kind)?;
    let changes = parse_changes(args)?;
    let target = Target::new(kind, &args.name, &args.namespace);
    let what = format!("{kind} {:?}", args.name);
    let ds = ctx.datastore().await?;
    let edited = edit::edit(&ds, &target, |v| {
        let Some(obj) = v.as_object_mut() else {
            return Ok(());
        };
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(meta) = meta.as_object_mut() else {
            return Ok(());
        };
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        let Some(labels) = labels.as_object_mut() else {
            return Ok(());
        };
        relabel(labels, &changes, args.overwrite, &what)?;
        if labels.is_empty() {
            meta.remove("labels");
        }
        Ok(())
    })
    .await?;
    let removed = changes.iter().all(|c| matches!(c, Change::Remove(_)));
    let name = display_name(kind, target.namespace.as_deref(), &target.name);
    let word = if removed { "unlabeled" } else { "labeled" };
    match edited {
        Edited::Changed => emit(&format!("{name} {word}\n")),
        Edited::Unchanged => emit(&format!("{name} {word} (no change)\n")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_syntax() {
        for ok in [
            "a",
            "rack",
            "app.kubernetes.io/name",
            "a_b-c.d",
            "projectcalico.org/x",
        ] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Bad_Prefix/x", "x/", &"a".repeat(64)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_overwrite_remove() {
        let mut labels = Map::new();
        let set = |k: &str, v: &str| Change::Set(k.into(), v.into());
        relabel(&mut labels, &[set("a", "1")], false, "x").unwrap();
        relabel(&mut labels, &[set("a", "1")], false, "x").unwrap();
        let err = relabel(&mut labels, &[set("a", "2")], false, "x").unwrap_err();
        assert!(err.to_string().contains("use --overwrite"), "{err}");
        relabel(&mut labels, &[set("a", "2")], true, "x").unwrap();
        assert_eq!(labels["a"], "2");
        relabel(&mut labels, &[Change::Remove("a".into())], false, "x").unwrap();
        assert!(labels.is_empty());
        assert!(relabel(&mut labels, &[Change::Remove("a".into())], false, "x").is_err());
    }
}
