//! Block affinity: a node's claim on a block (key names the node and block).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::{null_default, string_enum};

string_enum! {
    /// The claim's state. Pending claims are neither owned nor advertised.
    AffinityState {
        Pending = "pending",
        Confirmed = "confirmed",
        PendingDeletion = "pendingDeletion",
    }
}

/// `BlockAffinity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockAffinity {
    /// The claim's state.
    pub state: AffinityState,
    /// Marked before deletion.
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BlockAffinity {
    /// An affinity in `state`, not deleted.
    pub fn new(state: AffinityState) -> Self {
        BlockAffinity {
            state,
            deleted: false,
            extra: Map::new(),
        }
    }
}
