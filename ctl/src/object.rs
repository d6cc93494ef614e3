//! [`Object`]: one resource of any kind manulctl handles, typed by the
//! datastore's resource types, with the datastore's key and validation.

use manul_datastore::keys::Key;
use manul_datastore::resources::{
    BgpConfiguration, BgpFilter, BgpPeer, IpPool, Node, RawResource, WorkloadEndpoint, decode_raw,
    encode_raw,
};
use manul_datastore::validate::{
    ValidationErrors, validate_bgp_configuration, validate_bgp_filter, validate_bgp_peer,
    validate_ip_pool, validate_node, validate_raw,
};
use manul_datastore::{DecodeError, ObjectMeta, ResourceKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A resource of one of the kinds manulctl knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An IPPool.
    IpPool(IpPool),
    /// A BGPConfiguration.
    BgpConfiguration(BgpConfiguration),
    /// A BGPPeer.
    BgpPeer(BgpPeer),
    /// A BGPFilter.
    BgpFilter(BgpFilter),
    /// A Node.
    Node(Node),
    /// A WorkloadEndpoint.
    WorkloadEndpoint(WorkloadEndpoint),
    /// A kind manul stores without modelling it (NetworkPolicy, Profile,
    /// FelixConfiguration...; see `ResourceKind::modelled`): its spec kept
    /// as JSON, so every field survives.
    Raw(ResourceKind, RawResource),
}

/// Runs `$body` with `$r` bound to the inner `Resource<_>` of any variant.
macro_rules! each {
    ($obj:expr, $r:ident => $body:expr) => {
        match $obj {
            Object::IpPool($r) => $body,
            Object::BgpConfiguration($r) => $body,
            Object::BgpPeer($r) => $body,
            Object::BgpFilter($r) => $body,
            Object::Node($r) => $body,
            Object::WorkloadEndpoint($r) => $body,
            Object::Raw(_, $r) => $body,
        }
    };
}

/// Deserializes `value` as `T`, naming the field on failure
/// (`spec.blockSize: invalid type: ...`).
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path.is_empty() || path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

impl Object {
    /// Decodes a user's object of `kind` (its `kind`/`apiVersion` already
    /// checked); the error names the field.
    pub fn from_value(kind: ResourceKind, value: Value) -> Result<Object, String> {
        Ok(match kind {
            ResourceKind::IpPool => Object::IpPool(typed(value)?),
            ResourceKind::BgpConfiguration => Object::BgpConfiguration(typed(value)?),
            ResourceKind::BgpPeer => Object::BgpPeer(typed(value)?),
            ResourceKind::BgpFilter => Object::BgpFilter(typed(value)?),
            ResourceKind::Node => Object::Node(typed(value)?),
            ResourceKind::WorkloadEndpoint => Object::WorkloadEndpoint(typed(value)?),
            raw => Object::Raw(raw, typed(value)?),
        })
    }

    /// Decodes a value stored in etcd under a key of `kind`.
    pub fn from_stored(kind: ResourceKind, bytes: &[u8]) -> Result<Object, DecodeError> {
        Ok(match kind {
            ResourceKind::IpPool => Object::IpPool(IpPool::from_json(bytes)?),
            ResourceKind::BgpConfiguration => {
                Object::BgpConfiguration(BgpConfiguration::from_json(bytes)?)
            }
            ResourceKind::BgpPeer => Object::BgpPeer(BgpPeer::from_json(bytes)?),
            ResourceKind::BgpFilter => Object::BgpFilter(BgpFilter::from_json(bytes)?),
            ResourceKind::Node => Object::Node(Node::from_json(bytes)?),
            ResourceKind::WorkloadEndpoint => {
                Object::WorkloadEndpoint(WorkloadEndpoint::from_json(bytes)?)
            }
            raw => Object::Raw(raw, decode_raw(raw, bytes)?),
        })
    }

    /// The kind.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Object::IpPool(_) => ResourceKind::IpPool,
            Object::BgpConfiguration(_) => ResourceKind::BgpConfiguration,
            Object::BgpPeer(_) => ResourceKind::BgpPeer,
            Object::BgpFilter(_) => ResourceKind::BgpFilter,
            Object::Node(_) => ResourceKind::Node,
            Object::WorkloadEndpoint(_) => ResourceKind::WorkloadEndpoint,
            Object::Raw(kind, _) => *kind,
        }
    }

    /// The metadata.
    pub fn meta(&self) -> &ObjectMeta {
        each!(self, r => &r.metadata)
    }

    /// The metadata, to change.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each!(self, r => &mut r.metadata)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.meta().name
    }

    /// The namespace, for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.kind()
            .namespaced()
            .then_some(self.meta().namespace.as_str())
    }

    /// The key identity (check it with [`Key::path`]).
    pub fn key(&self) -> Key {
        match self.namespace() {
            Some(ns) => Key::namespaced(self.kind(), ns, self.name()),
            None => Key::resource(self.kind(), self.name()),
        }
    }

    /// How messages name it: `IPPool "pool-a"`.
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} \"{ns}/{}\"", self.kind(), self.name()),
            None => format!("{} {:?}", self.kind(), self.name()),
        }
    }

    /// The datastore's rules for this kind (WorkloadEndpoint has none
    /// beyond its type; the raw kinds are checked by `validate_raw`).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        match self {
            Object::IpPool(p) => validate_ip_pool(p),
            Object::BgpConfiguration(c) => validate_bgp_configuration(c),
            Object::BgpPeer(p) => validate_bgp_peer(p),
            Object::Node(n) => validate_node(n),
            Object::BgpFilter(f) => validate_bgp_filter(f),
            Object::WorkloadEndpoint(_) => Ok(()),
            Object::Raw(kind, r) => validate_raw(*kind, r),
        }
    }

    /// What Calico's client fills in before it writes: the IPPool defaults.
    pub fn fill_defaults(&mut self) {
        if let Object::IpPool(p) = self {
            p.spec.fill_defaults();
        }
    }

    /// The value to store: compact JSON without `resourceVersion`.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Object::Raw(_, r) => encode_raw(r),
            Object::IpPool(r) => r.to_json(),
            Object::BgpConfiguration(r) => r.to_json(),
            Object::BgpPeer(r) => r.to_json(),
            Object::BgpFilter(r) => r.to_json(),
            Object::Node(r) => r.to_json(),
            Object::WorkloadEndpoint(r) => r.to_json(),
        }
    }

    /// [`Object::to_json`] as a JSON value.
    pub fn to_value(&self) -> Value {
        each!(self, r => serde_json::to_value(r).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decode_errors_name_the_field() {
        let err = Object::from_value(
            ResourceKind::IpPool,
            json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
                   "metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","blockSize":"big"}}),
        )
        .unwrap_err();
        assert!(err.starts_with("spec.blockSize: "), "{err}");
        let err = Object::from_value(
            ResourceKind::IpPool,
            json!({"metadata":{"name":"p"},"spec":{"cidr":"nope"}}),
        )
        .unwrap_err();
        assert!(err.starts_with("spec.cidr: "), "{err}");
    }

    #[test]
    fn keys_and_names() {
        let o = Object::from_value(
            ResourceKind::WorkloadEndpoint,
            json!({"metadata":{"name":"n-k8s-p-eth0","namespace":"ns1"},"spec":{}}),
        )
        .unwrap();
        assert_eq!(
            o.key().path().unwrap(),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/ns1/n-k8s-p-eth0"
        );
        assert_eq!(o.describe(), "WorkloadEndpoint \"ns1/n-k8s-p-eth0\"");
    }
}
