//! NAT outgoing (Calico's `natOutgoing`): traffic from an address in a
//! pool with `natOutgoing: true` to a destination outside every pool is
//! masqueraded to the host's address; traffic to pods and other pools is
//! not. IPv4 and IPv6 alike. Built on nftables through netlink: one table
//! of manul's own (`inet manul`), owned like felix's routes.
//!
//! - [`rules`]: the sets the pools want, and the plan from what the kernel
//!   holds to that (pure).
//! - [`table`]: the table's layout, the messages that make and change it,
//!   and a dump read back into the plan's model (pure).
//! - [`nfnl`]: the nfnetlink socket: dumps, transactions, notifications.
//! - [`driver`]: the task that keeps the table right ([`NatDriver`]), and
//!   [`cleanup`].
//!
//! With the eBPF dataplane on, the TC programs hand every packet for a
//! destination outside the pools to the kernel's stack, so this table
//! (and conntrack, for the replies) sees it.

pub mod driver;
pub mod nfnl;
pub mod rules;
pub mod table;

pub use driver::{NatConfig, NatDriver, NatProgress, cleanup};
pub use rules::{NatDesired, desired};
