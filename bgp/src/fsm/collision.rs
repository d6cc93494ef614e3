//! Connection collision resolution (RFC 4271 §6.8).
//!
//! When both speakers open a connection at once, two connections exist for
//! one peer. Once an OPEN shows the peer's BGP Identifier, the connection
//! *initiated by the speaker with the higher identifier* survives; the other
//! is closed with Cease / Connection Collision Resolution. A connection that
//! is already Established always wins over a new one.

use crate::fsm::State;
use crate::types::RouterId;

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    Local,
    Remote,
}

/// Which of two connections to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Existing,
    New,
}

/// The connection initiated by the higher identifier survives (§6.8),
/// comparing identifiers as unsigned 32-bit integers.
pub fn survivor(local_id: RouterId, peer_id: RouterId) -> Initiator {
    if u32::from(local_id) > u32::from(peer_id) {
        Initiator::Local
    } else {
        Initiator::Remote
    }
}

/// Resolve a collision between an existing connection (in `existing_state`,
/// opened by `existing_initiator`) and a new one whose OPEN revealed
/// `peer_id`. `None` when there is no collision to resolve (the existing
/// connection is not past Connect/Active, so no session exists on it).
pub fn resolve(
    local_id: RouterId,
    peer_id: RouterId,
    existing_state: State,
    existing_initiator: Initiator,
) -> Option<Keep> {
    match existing_state {
        State::Established => Some(Keep::Existing),
        State::OpenSent | State::OpenConfirm => {
            if survivor(local_id, peer_id) == existing_initiator {
                Some(Keep::Existing)
            } else {
                Some(Keep::New)
            }
        }
        State::Idle | State::Connect | State::Active => None,
    }
}
