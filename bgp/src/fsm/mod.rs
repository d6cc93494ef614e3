//! The BGP session state machine of RFC 4271 §8, without I/O.
//!
//! Inputs are [`Event`]s named after the RFC's events plus the current time;
//! outputs are [`Action`]s for the driver to carry out (open a connection,
//! send a message, drop the connection, report the session up or down).
//! Timers are deadlines the machine keeps: the driver asks
//! [`Fsm::next_deadline`] and calls [`Fsm::tick`] when it passes. One `Fsm`
//! handles one TCP connection at a time; the connection-collision rule of
//! §6.8 is [`collision::resolve`], applied by the driver when a second
//! connection to the same peer reaches OPEN.

pub mod collision;
mod config;
mod event;
mod machine;
#[cfg(test)]
mod tests;

pub use config::{FsmConfig, Timers};
pub use event::{Action, DownReason, Event, State};
pub use machine::Fsm;
