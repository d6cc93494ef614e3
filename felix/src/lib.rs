//! manul's felix: the dataplane programmer.
//!
//! - [`route`]: the desired route shapes ([`Target`]).
//! - [`batch`]: route writes packed many to a `sendmsg`.
//! - [`calico`]: felix's inputs from confd's snapshot.
//! - [`ebpf`]: the eBPF dataplane (TC programs, pinned maps written by
//!   difference).
//! - [`desired`]: the routes a node wants from its blocks, workloads, BGP's
//!   remote prefixes and its pools (pure).
//! - [`events`]: route and link notifications, decoded only when needed
//!   (a bulk write's own notifications are counted off undecoded).
//! - [`interface`]: Calico's sysctls on workload interfaces.
//! - [`kernel`]: kernel routes as felix compares them, and their rtnetlink
//!   messages.
//! - [`mtu`]: the host, VXLAN and pod MTUs (pure); [`mtu_driver`]: the
//!   task that finds the uplink's MTU, publishes the MTUs and writes the
//!   pod MTU for the CNI plugin.
//! - [`nat`]: NAT outgoing — manul's nftables table (`inet manul`) from the
//!   pools' `natOutgoing`, kept right like the routes.
//! - [`overlay`]: the task that keeps the VXLAN devices and their ARP/FDB
//!   entries right (desired changes, notifications, a timer).
//! - [`plan`]: ownership and the minimal diff (pure).
//! - [`netlink`]: dumps (retried when interrupted) and single writes.
//! - [`netns`]: working in a given network namespace.
//! - [`reconciler`]: the task that keeps the kernel equal to the desired
//!   routes: dump at start, follow notifications, resync on a timer,
//!   pipeline writes, retry per route.
//! - [`run`]: [`Felix`], felix as the agent runs it (kernel routes and the
//!   eBPF dataplane from one desired state), and [`cleanup`].
//! - [`vxlan`]: the `vxlan.calico` and `vxlan-v6.calico` devices and
//!   their ARP/NDP and FDB entries.

pub mod batch;
pub mod calico;
pub mod desired;
pub mod ebpf;
pub mod events;
pub mod interface;
pub mod kernel;
pub mod mtu;
pub mod mtu_driver;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod overlay;
pub mod plan;
pub mod reconciler;
pub mod route;
pub mod run;
pub mod vxlan;

pub use desired::{Desired, Inputs, PoolError, desired_routes};
pub use plan::Ownership;
pub use reconciler::{Progress, Reconciler, ReconcilerConfig, Stats};
pub use route::{DesiredRoutes, NextHop, Target};
pub use run::{Cleaned, CleanupError, Felix, FelixConfig, Update, cleanup};
