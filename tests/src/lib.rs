//! The integration-test harness every manul test stands on.
//!
//! Real parts only: network namespaces as hosts ([`Netns`], [`Lab`]), a real
//! etcd ([`Etcd`], also over TLS with certificates made at test time,
//! [`TlsFiles`]), real BIRD 2 and GoBGP peers ([`Bird`], [`Gobgp`]), and
//! [`wait_until`] to wait for them with a failure that says what it saw;
//! manul's own agent and CNI plugin run in those hosts ([`node`]).
//! Everything is torn down on drop — also when a test panics — and what a
//! killed test process leaves behind is swept by the next one (see
//! [`scratch`]). Tests state what they need with [`require!`]; a missing
//! piece fails the test with what to install, never skips it silently.

pub mod bird;
pub mod bpffs;
pub mod daemon;
pub mod etcd;
pub mod gobgp;
pub mod lab;
pub mod netns;
pub mod node;
pub mod package;
pub mod require;
pub mod scratch;
pub mod tls;
pub mod wait;

pub use bird::Bird;
pub use bpffs::PinDir;
pub use daemon::Daemon;
pub use etcd::Etcd;
pub use gobgp::Gobgp;
pub use lab::{Host, Lab, LabBuilder};
pub use netns::Netns;
pub use require::Need;
pub use tls::TlsFiles;
pub use wait::{Timeout, try_wait_until, wait_until};
