//! manul's datastore: Calico-compatible resource types, the etcd key
//! layout, validation and label selectors.
//!
//! - [`meta`]: the Kubernetes-style envelope ([`Resource`]) every v3 object
//!   is stored in.
//! - [`resources`]: IPPool, BGPConfiguration, BGPPeer, BGPFilter, Node and
//!   WorkloadEndpoint specs.
//! - [`ipam`]: allocation blocks, affinities, handles and the IPAM config.
//! - [`keys`]: the one place that knows the etcd key layout.
//! - [`validate`]: Calico's rules, with errors naming object and field.
//! - [`selector`]: the selector language.
//! - [`etcd`]: the etcd v3 client: get, paged list at a revision, watch,
//!   and compare-and-swap create / update / delete.
//!
//! All JSON is byte-compatible with Calico's: same names, Go's `omitempty`
//! rules, and fields this version does not model kept and written back.
//! Nothing here panics on any input.

pub mod asn;
pub mod etcd;
pub mod ipam;
pub mod keys;
pub mod meta;
pub mod resources;
pub mod selector;
mod serde_util;
pub mod validate;

pub use asn::AsNumber;
pub use etcd::{Datastore, EtcdConfig, KeyValue, WatchEvent};
pub use keys::{Key, KeyError, ResourceKind};
pub use meta::{API_VERSION, DecodeError, ObjectMeta, Resource, ResourceSpec};
pub use selector::{Selector, SelectorError};
