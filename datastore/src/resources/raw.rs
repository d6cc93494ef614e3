//! Kinds manul stores for calicoctl but does not model field by field
//! (NetworkPolicy, GlobalNetworkPolicy, NetworkSet, GlobalNetworkSet,
//! HostEndpoint, Profile, FelixConfiguration): the envelope is typed, the
//! spec is kept as the JSON object it is, so every field (known to manul or
//! not) is written back unchanged. Their rules are checked by
//! [`crate::validate::validate_raw`].

use serde_json::{Map, Value};

use crate::keys::ResourceKind;
use crate::meta::{DecodeError, Resource};

/// A stored object of a kind that is not modelled: its spec as JSON.
pub type RawResource = Resource<Map<String, Value>>;

/// Reads a stored value of `kind`. An empty `kind` field is accepted (Go
/// would too); another kind is refused.
pub fn decode_raw(kind: ResourceKind, bytes: &[u8]) -> Result<RawResource, DecodeError> {
    let name = kind.kind();
    let r: RawResource =
        serde_json::from_slice(bytes).map_err(|source| DecodeError::Json { kind: name, source })?;
    if !r.kind.is_empty() && r.kind != name {
        return Err(DecodeError::WrongKind {
            expected: name,
            found: r.kind,
        });
    }
    Ok(r)
}

/// The value to store: compact JSON, `resourceVersion` left out.
pub fn encode_raw(r: &RawResource) -> Vec<u8> {
    // Cannot fail: every map key is a string.
    serde_json::to_vec(r).unwrap_or_default()
}
