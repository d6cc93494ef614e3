//! felix's eBPF dataplane: the TC programs of `ebpf/programs` loaded,
//! pinned, attached to workload interfaces and fed with maps computed from
//! the same desired state as the kernel routes.
//!
//! - [`entries`]: map contents from desired state, and their difference (pure).
//! - [`dataplane`]: load or reuse pinned objects, attach/detach, write maps
//!   by difference, read counters, clean up.
//! - [`link`]: interface index and MAC by name in a namespace.
//! - [`sys`]: the bpf(2) commands aya lacks (open a pin, detach a link now).
//! - [`error`]: what can go wrong ([`EbpfError`]).

pub mod dataplane;
pub mod entries;
pub mod error;
pub mod link;
pub mod sys;

pub use dataplane::{
    Attach, AttachReport, DEFAULT_PIN_DIR, Dataplane, DataplaneConfig, SyncStats, cleanup, probe,
};
pub use entries::{Endpoint, EndpointEntries, Link, RouteEntries};
pub use error::EbpfError;
pub use manul_ebpf_common::{Counters, EndpointValue, RouteValue, flags, kind};
