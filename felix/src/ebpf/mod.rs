//! felix's eBPF dataplane: the TC programs of `ebpf/programs` loaded,
//! pinned, attached to workload interfaces and fed with maps computed from
//! the same desired state as the kernel routes.
//!
//! - [`entries`]: map contents from desired state, and their difference (pure).
//! - [`dataplane`]: load or reuse pinned objects, attach/detach, write maps
//!   by difference, read counters, clean up.
//! - [`driver`]: the task that keeps maps and attachments equal to
//!   felix's desired state (desired changes, link notifications, a timer).
//! - [`observe`]: metrics (a prometheus-client collector) and a status
//!   summary of the running dataplane.
//! - [`link`]: interface index and MAC by name in a namespace; uplinks.
//! - [`legacy`]: clsact + `cls_bpf` attachments for kernels without TCX.
//! - [`bpffs`]: the bpf filesystem: is a path on it, mount it once.
//! - [`sys`]: the bpf(2) commands aya lacks (open a pin, detach a link now).
//! - [`error`]: what can go wrong ([`EbpfError`]).

pub mod bpffs;
pub mod dataplane;
pub mod driver;
pub mod entries;
pub mod error;
pub mod legacy;
pub mod link;
pub mod map_batch;
pub mod observe;
pub mod sys;

pub use dataplane::{
    Attach, AttachMode, AttachReport, DEFAULT_PIN_DIR, Dataplane, DataplaneConfig, SyncStats,
    cleanup, probe,
};
pub use driver::{DriverConfig, EbpfDesired, EbpfDriver};
pub use entries::{Endpoint, EndpointEntries, Hosts, Link, RouteEntries};
pub use error::EbpfError;
pub use manul_ebpf_common::{Counters, EndpointValue, RouteValue, flags, kind};
pub use observe::EbpfObserver;
