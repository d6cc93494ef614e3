//! confd's sync with etcd, as `/status` shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether the node's view of etcd is current, and how the sync has gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreStatus {
    /// The view reflects etcd up to a recent revision: false before the
    /// first list, and from a watch failure until caught up.
    pub in_sync: bool,
    /// The etcd revision the view is at.
    pub revision: i64,
    /// Full lists done (the first one included).
    pub lists: u64,
    /// Watches resumed from a revision after a failure.
    pub resumes: u64,
    /// The last failure, while out of sync.
    pub last_error: Option<String>,
    /// etcd failures since start, by operation (`list`, `watch`).
    pub errors: BTreeMap<String, u64>,
}
