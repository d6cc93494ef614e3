//! Compare-and-swap writes that say what they lost to: when the compare
//! fails, the same transaction reads the key's current value, so a caller
//! holding a cached (possibly stale) value retries with the current one
//! without another round trip.
//!
//! | call | compare | then | else |
//! |---|---|---|---|
//! | [`Datastore::create_or_current`] | `version(key) == 0` | put | get |
//! | [`Datastore::update_or_current`] | `mod_revision(key) == rev`, `version(key) > 0` | put | get |
//! | [`Datastore::delete_or_current`] | same as update | delete | get |
//!
//! The compares are those of [`Datastore::create`], [`Datastore::update`]
//! and [`Datastore::delete`], so these mix freely with them and with
//! Calico's writers.

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use super::client::{Datastore, to_json, txn_revision};
use super::error::Result;
use super::kv::KeyValue;

/// The outcome of a compare-and-swap that reports its loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// Written (or deleted) at this revision.
    Written(i64),
    /// Not written: the key as it is now (`None`: absent), read in the same
    /// transaction.
    Lost(Option<KeyValue>),
}

impl Datastore {
    /// Write `value` at `key` if absent; else the current value.
    pub async fn create_or_current(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<Swap> {
        let compare = [Compare::version(key, CompareOp::Equal, 0)];
        self.swap(key, &compare, TxnOp::put(key, value, None)).await
    }

    /// Replace `key`'s value if it was last written at
    /// `expected_mod_revision`; else the current value.
    pub async fn update_or_current(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        expected_mod_revision: i64,
    ) -> Result<Swap> {
        let compare = guard(key, expected_mod_revision);
        self.swap(key, &compare, TxnOp::put(key, value, None)).await
    }

    /// Delete `key` if it was last written at `expected_mod_revision`; else
    /// the current value.
    pub async fn delete_or_current(&self, key: &str, expected_mod_revision: i64) -> Result<Swap> {
        let compare = guard(key, expected_mod_revision);
        self.swap(key, &compare, TxnOp::delete(key, None)).await
    }

    /// [`Datastore::create_or_current`] with `value` as JSON.
    pub async fn create_json_or_current<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Swap> {
        self.create_or_current(key, to_json(key, value)?).await
    }

    /// [`Datastore::update_or_current`] with `value` as JSON.
    pub async fn update_json_or_current<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expected_mod_revision: i64,
    ) -> Result<Swap> {
        self.update_or_current(key, to_json(key, value)?, expected_mod_revision)
            .await
    }

    async fn swap(&self, key: &str, compare: &[Compare], op: TxnOp) -> Result<Swap> {
        let txn = Txn::new()
            .when(compare.to_vec())
            .and_then([op])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.write(txn).await?;
        if resp.succeeded() {
            return Ok(Swap::Written(txn_revision(&resp)));
        }
        let current = resp.op_responses().iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().and_then(KeyValue::from_client),
            _ => None,
        });
        Ok(Swap::Lost(current))
    }
}

/// `mod_revision(key) == rev` on a key that exists (absent keys have
/// mod_revision 0: never let 0 match them).
fn guard(key: &str, rev: i64) -> [Compare; 2] {
    [
        Compare::mod_revision(key, CompareOp::Equal, rev),
        Compare::version(key, CompareOp::Greater, 0),
    ]
}
