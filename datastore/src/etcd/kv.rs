//! What reads return: a key's bytes with its revisions, and the typed form
//! of a JSON value.

use serde::de::DeserializeOwned;

use super::error::{Error, Result};

/// One key as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value's bytes (JSON for every Calico key).
    pub value: Vec<u8>,
    /// Revision of the last write; what [`super::Datastore::update`] and
    /// [`super::Datastore::delete`] are guarded by.
    pub mod_revision: i64,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Writes since creation (1 after the first).
    pub version: i64,
}

impl KeyValue {
    /// From etcd-client's form; `None` (logged) when the key is not UTF-8,
    /// which no Calico key is.
    pub(crate) fn from_client(kv: &etcd_client::KeyValue) -> Option<Self> {
        match std::str::from_utf8(kv.key()) {
            Ok(key) => Some(KeyValue {
                key: key.to_string(),
                value: kv.value().to_vec(),
                mod_revision: kv.mod_revision(),
                create_revision: kv.create_revision(),
                version: kv.version(),
            }),
            Err(_) => {
                tracing::warn!(key = ?String::from_utf8_lossy(kv.key()), "skipping etcd key that is not UTF-8");
                None
            }
        }
    }

    /// The value as JSON of type `T`; [`Error::Malformed`] naming the key
    /// when it is not.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value).map_err(|e| Error::Malformed {
            key: self.key.clone(),
            error: e.to_string(),
        })
    }

    /// [`KeyValue::json`] with the revisions kept.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Versioned<T>> {
        Ok(Versioned {
            key: self.key.clone(),
            value: self.json()?,
            mod_revision: self.mod_revision,
            create_revision: self.create_revision,
        })
    }
}

/// A decoded value with what is needed to write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The key.
    pub key: String,
    /// The decoded value.
    pub value: T,
    /// Revision of the last write, for a guarded update or delete.
    pub mod_revision: i64,
    /// Revision of the write that created the key.
    pub create_revision: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &str) -> KeyValue {
        KeyValue {
            key: "/calico/ipam/v2/config".into(),
            value: value.as_bytes().to_vec(),
            mod_revision: 7,
            create_revision: 3,
            version: 2,
        }
    }

    #[test]
    fn decodes_json_with_revisions() {
        let v: Versioned<serde_json::Value> = kv(r#"{"strict_affinity":true}"#).decode().unwrap();
        assert_eq!(v.value["strict_affinity"], true);
        assert_eq!((v.mod_revision, v.create_revision), (7, 3));
    }

    #[test]
    fn bad_json_is_malformed_naming_the_key() {
        let err = kv("{not json").json::<serde_json::Value>().unwrap_err();
        match err {
            Error::Malformed { key, error } => {
                assert_eq!(key, "/calico/ipam/v2/config");
                assert!(!error.is_empty());
            }
            other => panic!("{other}"),
        }
    }
}
