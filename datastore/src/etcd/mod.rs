//! The etcd v3 client wrapper: what the rest of manul uses to read, watch
//! and write Calico's keys.
//!
//! - [`config`]: [`EtcdConfig`], from Calico's `ETCD_*` variables.
//! - [`diagnose`]: what is wrong when TLS with etcd fails
//!   ([`Error::Tls`]).
//! - [`error`]: [`Error`], the typed failures callers branch on.
//! - [`kv`]: [`KeyValue`] and [`Versioned`], what reads return.
//! - [`client`]: [`Datastore`]: get, paged list at one revision, and
//!   create / update / delete as compare-and-swap transactions.
//! - [`swap`]: compare-and-swap writes that return the current value
//!   when they lose ([`Swap`]).
//! - [`watch`]: [`Watch`], a stream of [`WatchEvent`]s from a revision.
//!
//! Every unary call carries the config's `request_timeout` as its deadline,
//! and all requests ask for a leader (etcd's "require leader" metadata), so
//! a partitioned member answers "no leader" at once instead of hanging.
//! Reads and watch creation are retried within the deadline while the
//! cluster is unavailable (another member, or a new leader, may answer).
//! Writes are retried only when the failure proves etcd never applied them
//! (connection refused, "no leader"); after a timeout or a connection lost
//! mid-call their outcome is unknown and [`Error::Unavailable`] says so.
//!
//! Client: `etcd-client` 0.16 (tonic 0.13, rustls with ring for TLS, no
//! OpenSSL). Later etcd-client releases build etcd's upstream protos, which
//! need protobuf's well-known `.proto` files (Debian `libprotobuf-dev`);
//! 0.16 ships trimmed protos that `protoc` alone compiles, and speaks the
//! same v3 API etcd 3.4 serves.

pub mod client;
pub mod config;
pub mod diagnose;
pub mod error;
pub mod kv;
pub mod swap;
pub mod watch;

pub use client::Datastore;
pub use config::EtcdConfig;
pub use error::{Error, Result};
pub use kv::{KeyValue, Versioned};
pub use swap::Swap;
pub use watch::{Watch, WatchEvent};
