//! Read, change, check, write: what `patch` and `label` share. The object
//! is read as stored (every field, modelled or not), changed as JSON,
//! decoded and validated like an applied object, and written guarded by
//! the revision read; when another writer got in between, it is read and
//! changed again (up to [`MAX_ATTEMPTS`] times).

use manul_datastore::etcd::Error;
use manul_datastore::keys::Key;
use manul_datastore::{Datastore, ResourceKind};
use serde_json::Value;

use crate::commands::apply::plan::{Action, Item, Refusal, decide};
use crate::error::{Failure, etcd_error, fail};
use crate::manifest::Source;
use crate::object::Object;
use crate::store;

/// Writes of one object before giving up on a key that keeps changing.
const MAX_ATTEMPTS: usize = 5;

/// The object to change.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its namespace (namespaced kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl Target {
    /// The target of `kind NAME [-n NAMESPACE]`.
    pub fn new(kind: ResourceKind, name: &str, namespace: &str) -> Target {
        Target {
            kind,
            namespace: kind.namespaced().then(|| namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    fn key(&self) -> anyhow::Result<String> {
        let key = match &self.namespace {
            Some(ns) => Key::namespaced(self.kind, ns.as_str(), self.name.as_str()),
            None => Key::resource(self.kind, self.name.as_str()),
        };
        key.path().map_err(|e| {
            fail(
                Failure::Invalid,
                format!("{} name {:?}: {e}", self.kind, self.name),
            )
        })
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {:?} in namespace {ns:?}", self.kind, self.name),
            None => format!("{} {:?}", self.kind, self.name),
        }
    }
}

/// Whether the write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edited {
    /// Written.
    Changed,
    /// The change left the object as it was; nothing written.
    Unchanged,
}

/// Reads `target`, applies `change` to its stored JSON, checks and writes
/// the result. `change` may fail (its error is returned as is).
pub async fn edit(
    ds: &Datastore,
    target: &Target,
    mut change: impl FnMut(&mut Value) -> anyhow::Result<()>,
) -> anyhow::Result<Edited> {
    let key = target.key()?;
    let what = target.describe();
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = store::get(ds, target.kind, &key).await? else {
            return Err(fail(
                Failure::NotFound,
                format!(
                    "{what} not found: list what exists with `manulctl get {}`",
                    target.kind.plural()
                ),
            ));
        };
        let mut value = current.raw.clone();
        change(&mut value)?;
        let desired = decode(target, value)?;
        if let Err(errors) = desired.validate() {
            return Err(fail(
                Failure::Invalid,
                format!("nothing was written: {errors}"),
            ));
        }
        let expected = match desired.meta().resource_version.as_str() {
            "" => None,
            rv => Some(rv.parse::<i64>().ok().filter(|r| *r > 0).ok_or_else(|| {
                fail(
                    Failure::Invalid,
                    format!("{what}: metadata.resourceVersion {rv:?} is not a revision"),
                )
            })?),
        };
        let item = Item {
            source: Source::command_line(),
            desired,
            key: key.clone(),
            expected,
        };
        let (action, write) = match decide(&item, Some(&current)) {
            Ok(decided) => decided,
            Err(Refusal::Invalid(m)) => return Err(fail(Failure::Invalid, m)),
            Err(Refusal::Conflict(m)) => return Err(fail(Failure::Conflict, m)),
        };
        let mod_revision = match action {
            Action::Unchanged => return Ok(Edited::Unchanged),
            Action::Update { mod_revision } => mod_revision,
            Action::Create => current.mod_revision,
        };
        match ds.update(&key, write.to_json(), mod_revision).await {
            Ok(_) => return Ok(Edited::Changed),
            Err(Error::Conflict { .. } | Error::NotFound { .. }) if expected.is_none() => continue,
            Err(Error::Conflict { .. }) => {
                return Err(fail(
                    Failure::Conflict,
                    format!("{what} changed since resourceVersion {mod_revision}: nothing written"),
                ));
            }
            Err(e) => return Err(etcd_error(e, &format!("writing {what}"))),
        }
    }
    Err(fail(
        Failure::Conflict,
        format!("{what} kept changing while it was written ({MAX_ATTEMPTS} attempts): try again"),
    ))
}

/// The changed JSON as an object of the target's kind, still naming the
/// same object.
fn decode(target: &Target, mut value: Value) -> anyhow::Result<Object> {
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".into(), target.kind.kind().into());
        map.entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let object = Object::from_value(target.kind, value).map_err(|e| {
        fail(
            Failure::Invalid,
            format!("nothing was written: {}: {e}", target.describe()),
        )
    })?;
    if object.name() != target.name || object.namespace() != target.namespace.as_deref() {
        return Err(fail(
            Failure::Invalid,
            format!(
                "nothing was written: {}: metadata.name and metadata.namespace cannot change; \
                 create a new object instead",
                target.describe()
            ),
        ));
    }
    Ok(object)
}
