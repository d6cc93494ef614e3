//! The Kubernetes-style envelope every Calico v3 resource is stored in:
//! `{"kind","apiVersion","metadata":{...},"spec":{...}}`.
//!
//! `metadata.resourceVersion` is never stored in etcd (Calico strips it and
//! uses the key's `mod_revision`); it is read if present and never written.
//! `metadata.creationTimestamp` is always written, as `null` when unset,
//! exactly as Go's `metav1.Time` is. Fields this version does not model are
//! kept in `extra` maps and written back unchanged (for example a Node's
//! `status`, or `metadata.ownerReferences`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::keys::ResourceKind;
use crate::serde_util::null_default;

/// The `apiVersion` of every resource manul reads and writes.
pub const API_VERSION: &str = "projectcalico.org/v3";

/// A spec type of one resource kind.
pub trait ResourceSpec: Serialize + DeserializeOwned {
    /// The kind this spec belongs to.
    const KIND: ResourceKind;
}

/// Kubernetes `ObjectMeta`, the parts Calico stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The object's name (the last segment of its key).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The namespace, for namespaced kinds only.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// A unique id Calico assigns on create.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// Filled from the key's etcd `mod_revision` by the datastore client;
    /// read if present, never written.
    #[serde(
        rename = "resourceVersion",
        default,
        deserialize_with = "null_default",
        skip_serializing
    )]
    pub resource_version: String,
    /// RFC 3339 creation time; written as `null` when unset, like Go.
    #[serde(rename = "creationTimestamp", default)]
    pub creation_timestamp: Option<String>,
    /// Labels, matched by selectors.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Metadata fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One stored resource: the envelope around a spec of kind `S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource<S> {
    /// The kind name, e.g. `IPPool`.
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// Always [`API_VERSION`] for objects manul writes.
    #[serde(rename = "apiVersion", default, deserialize_with = "null_default")]
    pub api_version: String,
    /// Name, labels and the rest.
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    /// The kind-specific part.
    pub spec: S,
    /// Top-level fields not modelled here (e.g. `status`), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a stored value could not be read as a resource.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the shape of this kind.
    #[error("malformed {kind} JSON: {source}")]
    Json {
        /// The kind that was expected.
        kind: &'static str,
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The JSON names a different kind.
    #[error("expected kind {expected:?}, found {found:?}")]
    WrongKind {
        /// The kind that was expected.
        expected: &'static str,
        /// The kind in the object.
        found: String,
    },
}

impl<S: ResourceSpec> Resource<S> {
    /// A new object of this kind with the given name and spec.
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Resource {
            kind: S::KIND.kind().to_owned(),
            api_version: API_VERSION.to_owned(),
            metadata: ObjectMeta {
                name: name.into(),
                ..ObjectMeta::default()
            },
            spec,
            extra: Map::new(),
        }
    }

    /// Reads a stored value. An empty `kind` is accepted (Go would too);
    /// any other kind than `S`'s is refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let kind = S::KIND.kind();
        let r: Self =
            serde_json::from_slice(bytes).map_err(|source| DecodeError::Json { kind, source })?;
        if !r.kind.is_empty() && r.kind != kind {
            return Err(DecodeError::WrongKind {
                expected: kind,
                found: r.kind,
            });
        }
        Ok(r)
    }

    /// The value to store: compact JSON, `resourceVersion` left out.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}
