//! The tokio edge of a BGP session: sockets (TCP-MD5, GTSM, source address),
//! one connection's framing reader and writer task, and the task that
//! drives one peer's [`crate::fsm::Fsm`] over it.

pub mod conn;
pub mod events;
pub mod ifaddrs;
pub mod peer;
pub mod socket;
