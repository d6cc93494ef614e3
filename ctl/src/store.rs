//! Typed reads of resources from etcd: one object, or every object of a
//! kind, each with the revision a guarded write needs.
//!
//! A stored value that does not decode is an error when asked for by name
//! and skipped with a warning on stderr when listing, so one bad key never
//! hides the rest.

use manul_datastore::keys::prefix;
use manul_datastore::{API_VERSION, Datastore, KeyValue, ResourceKind};
use serde_json::Value;

use crate::error::{Failure, etcd, fail};
use crate::object::Object;

/// One object as etcd holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Decoded.
    pub object: Object,
    /// The stored JSON as it is (fields manul does not model included).
    pub raw: Value,
    /// The revision of its last write.
    pub mod_revision: i64,
}

impl Stored {
    fn decode(kind: ResourceKind, kv: KeyValue) -> Result<Stored, String> {
        let object = Object::from_stored(kind, &kv.value).map_err(|e| e.to_string())?;
        let raw = serde_json::from_slice(&kv.value).map_err(|e| e.to_string())?;
        Ok(Stored {
            object,
            raw,
            mod_revision: kv.mod_revision,
        })
    }

    /// The object as `get` prints it: as stored, with `kind` and
    /// `apiVersion` filled in and `metadata.resourceVersion` set to the
    /// key's revision (as Calico's API does).
    pub fn to_output(&self) -> Value {
        let mut v = self.raw.clone();
        if let Some(map) = v.as_object_mut() {
            map.insert("kind".into(), self.object.kind().kind().into());
            map.insert("apiVersion".into(), API_VERSION.into());
            let meta = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(
                    "resourceVersion".into(),
                    self.mod_revision.to_string().into(),
                );
            }
        }
        v
    }
}

/// The object of `kind` at `key`; `None` when absent.
pub async fn get(ds: &Datastore, kind: ResourceKind, key: &str) -> anyhow::Result<Option<Stored>> {
    let Some(kv) = ds.get(key).await.map_err(etcd(format!("reading {key}")))? else {
        return Ok(None);
    };
    Stored::decode(kind, kv).map(Some).map_err(|e| {
        fail(
            Failure::General,
            format!(
                "the value stored at {key} is not a valid {kind}: {e}; fix it, or delete it \
                 with `etcdctl del {key}`"
            ),
        )
    })
}

/// Every object of `kind` (in `namespace`, for namespaced kinds, or in all
/// namespaces when `None`), in key order, with the revision of the read.
pub async fn list(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
) -> anyhow::Result<(Vec<Stored>, i64)> {
    let prefix = match namespace {
        Some(ns) if kind.namespaced() => prefix::kind_in_namespace(kind, ns),
        _ => prefix::kind(kind),
    };
    let (kvs, revision) = ds
        .list(&prefix, None)
        .await
        .map_err(etcd(format!("listing {}", kind.plural())))?;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs {
        let key = kv.key.clone();
        match Stored::decode(kind, kv) {
            Ok(s) => out.push(s),
            Err(e) => eprintln!("warning: skipping {key}: not a valid {kind}: {e}"),
        }
    }
    Ok((out, revision))
}
