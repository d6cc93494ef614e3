//! Apply's first phase: check everything, write nothing.
//!
//! Every object of every file is checked before anything is written: the
//! envelope (by [`crate::manifest`]), duplicates, the datastore's validation
//! rules, overlaps between the file's pools and the pools already in etcd
//! (and each other), immutable fields against the stored version, and
//! `metadata.resourceVersion` when the object carries one. The result is
//! either a [`Step`] per object or every problem found.

use std::collections::HashMap;

use manul_datastore::resources::IpPool;
use manul_datastore::validate::{Problem, overlapping_pools};
use manul_datastore::{Datastore, ResourceKind};

use crate::manifest::{self, Parsed, Source};
use crate::object::Object;
use crate::stamp::stamp;
use crate::store::{self, Stored};

/// One object to apply.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it came from.
    pub source: Source,
    /// As the user wrote it.
    pub desired: Object,
    /// Its etcd key.
    pub key: String,
    /// `metadata.resourceVersion` from the file: write only over that
    /// revision (optimistic concurrency, as Calico's API does).
    pub expected: Option<i64>,
}

/// What a write will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The key is absent: create it.
    Create,
    /// The key holds another version, last written at this revision.
    Update {
        /// Its mod revision, the guard of the update.
        mod_revision: i64,
    },
    /// The stored version is already what would be written.
    Unchanged,
}

/// An item with its decided action and the exact object to write.
#[derive(Debug, Clone)]
pub struct Step {
    /// The item.
    pub item: Item,
    /// What to do.
    pub action: Action,
    /// What to write: defaults filled in (as Calico's client does), uid
    /// and creation time kept from the stored version or new.
    pub write: Object,
}

/// Why an item cannot be applied as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The change is not allowed (an immutable field).
    Invalid(String),
    /// The stored version is not the one the item was based on.
    Conflict(String),
}

/// Every problem found, by class.
#[derive(Debug, Default)]
pub struct Problems {
    /// Input that cannot be applied.
    pub invalid: Vec<manifest::Problem>,
    /// Objects that changed since they were read.
    pub conflicts: Vec<manifest::Problem>,
}

impl Problems {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.invalid.is_empty() && self.conflicts.is_empty()
    }

    fn invalid(&mut self, source: &Source, message: impl Into<String>) {
        self.invalid.push(manifest::Problem {
            source: source.clone(),
            message: message.into(),
        });
    }
}

/// The fields of `desired` that may not differ from `current`'s.
fn immutable_changes(desired: &Object, current: &Object) -> Vec<String> {
    let mut out = Vec::new();
    if let (Object::IpPool(d), Object::IpPool(c)) = (desired, current) {
        if d.spec.cidr != c.spec.cidr {
            out.push(format!(
                "spec.cidr cannot change ({} is stored, the file has {}): create a new pool, \
                 move workloads, then delete this one",
                c.spec.cidr, d.spec.cidr
            ));
        }
        if d.spec.block_size() != c.spec.block_size() {
            out.push(format!(
                "spec.blockSize cannot change ({} is stored, the file has {}): create a new \
                 pool with the new block size instead",
                c.spec.block_size(),
                d.spec.block_size()
            ));
        }
    }
    out
}

/// What to do with `item` given the stored version `current`.
pub fn decide(item: &Item, current: Option<&Stored>) -> Result<(Action, Object), Refusal> {
    let what = item.desired.describe();
    if let Some(expected) = item.expected {
        match current {
            None => {
                return Err(Refusal::Conflict(format!(
                    "{what}: metadata.resourceVersion is {expected} but the object does not \
                     exist (deleted since it was read?): remove resourceVersion to create it"
                )));
            }
            Some(cur) if cur.mod_revision != expected => {
                return Err(Refusal::Conflict(format!(
                    "{what}: metadata.resourceVersion is {expected} but the stored object is at \
                     {}: it changed since it was read; get it again, or remove \
                     resourceVersion to overwrite it",
                    cur.mod_revision
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(cur) = current {
        let changes = immutable_changes(&item.desired, &cur.object);
        if !changes.is_empty() {
            return Err(Refusal::Invalid(format!("{what}: {}", changes.join("; "))));
        }
    }
    let mut write = item.desired.clone();
    write.fill_defaults();
    stamp(&mut write, current.map(|c| &c.object));
    let action = match current {
        None => Action::Create,
        Some(cur) if write.to_value() == cur.object.to_value() => Action::Unchanged,
        Some(cur) => Action::Update {
            mod_revision: cur.mod_revision,
        },
    };
    Ok((action, write))
}

/// The checks that need no etcd: duplicates, validation, resourceVersion
/// syntax, overlaps among the input's own pools. Returns the items (first
/// occurrence of each key).
pub fn check_input(parsed: Vec<Parsed>, problems: &mut Problems) -> Vec<Item> {
    let mut seen: HashMap<String, Source> = HashMap::new();
    let mut items = Vec::new();
    for Parsed { source, object } in parsed {
        let key = match object.key().path() {
            Ok(k) => k,
            Err(e) => {
                problems.invalid(&source, e.to_string());
                continue;
            }
        };
        if let Some(first) = seen.get(&key) {
            problems.invalid(
                &source,
                format!(
                    "{} is also defined in {first}: each object may appear once",
                    object.describe()
                ),
            );
            continue;
        }
        seen.insert(key.clone(), source.clone());
        if let Err(errors) = object.validate() {
            for e in errors.0 {
                problems.invalid(&source, e.to_string());
            }
        }
        let rv = object.meta().resource_version.clone();
        let expected = if rv.is_empty() {
            None
        } else {
            match rv.parse::<i64>() {
                Ok(r) if r > 0 => Some(r),
                _ => {
                    problems.invalid(
                        &source,
                        format!(
                            "{}: metadata.resourceVersion {rv:?} is not a revision: remove it",
                            object.describe()
                        ),
                    );
                    None
                }
            }
        };
        items.push(Item {
            source,
            desired: object,
            key,
            expected,
        });
    }
    check_overlaps(&items, &[], problems);
    items
}

/// Overlaps between the input's pools and `stored` pools (those the input
/// does not replace), reported on the input's pool. With no stored pools:
/// overlaps within the input.
fn check_overlaps(items: &[Item], stored: &[IpPool], problems: &mut Problems) {
    let input: Vec<(&Source, &IpPool)> = items
        .iter()
        .filter_map(|i| match &i.desired {
            Object::IpPool(p) => Some((&i.source, p)),
            _ => None,
        })
        .collect();
    if input.is_empty() {
        return;
    }
    let replaced = |p: &IpPool| input.iter().any(|(_, q)| q.name() == p.name());
    let mut all: Vec<IpPool> = stored.iter().filter(|p| !replaced(p)).cloned().collect();
    let n_stored = all.len();
    all.extend(input.iter().map(|(_, p)| (*p).clone()));
    let Err(errors) = overlapping_pools(&all) else {
        return;
    };
    for e in errors.0 {
        // Each pair is reported on its later pool; stored pools come first,
        // so a pair involving the input lands on an input pool.
        let Some((source, _)) = input
            .iter()
            .find(|(_, p)| e.object == format!("IPPool {:?}", p.name()))
        else {
            continue;
        };
        let Problem::Overlap { other, .. } = &e.problem else {
            continue;
        };
        let with_stored = all[..n_stored].iter().any(|p| p.name() == other);
        // The first pass (no stored pools) reports pairs within the input,
        // the second only pairs with a stored pool.
        if stored.is_empty() || with_stored {
            let mut msg = e.to_string();
            if with_stored {
                msg.push_str(" (already in etcd)");
            }
            problems.invalid(source, msg);
        }
    }
}

/// The checks against etcd: reads each item's stored version and the
/// stored pools, then decides each item's action.
pub async fn check_stored(
    ds: &Datastore,
    items: Vec<Item>,
    problems: &mut Problems,
) -> anyhow::Result<Vec<Step>> {
    if items
        .iter()
        .any(|i| i.desired.kind() == ResourceKind::IpPool)
    {
        let (pools, _) = store::list(ds, ResourceKind::IpPool, None).await?;
        let pools: Vec<IpPool> = pools
            .into_iter()
            .filter_map(|s| match s.object {
                Object::IpPool(p) => Some(p),
                _ => None,
            })
            .collect();
        if !pools.is_empty() {
            check_overlaps(&items, &pools, problems);
        }
    }
    let mut steps = Vec::with_capacity(items.len());
    for item in items {
        let current = store::get(ds, item.desired.kind(), &item.key).await?;
        match decide(&item, current.as_ref()) {
            Ok((action, write)) => steps.push(Step {
                item,
                action,
                write,
            }),
            Err(Refusal::Invalid(m)) => problems.invalid(&item.source, m),
            Err(Refusal::Conflict(m)) => problems.conflicts.push(manifest::Problem {
                source: item.source.clone(),
                message: m,
            }),
        }
    }
    Ok(steps)
}
