//! The tokio edge of a BGP session: sockets (TCP-MD5, GTSM, source address),
//! and the task that drives one peer's [`crate::fsm::Fsm`] over a connection.

pub mod socket;
