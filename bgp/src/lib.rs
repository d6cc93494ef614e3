//! manul's BGP speaker.
//!
//! Pure cores with no I/O — [`wire`] (the codec), [`fsm`] (RFC 4271 §8),
//! [`rib`] (Adj-RIB-In, Loc-RIB and the decision process, Adj-RIB-Out),
//! [`policy`] — driven by tokio tasks at the edges ([`session`], [`speaker`]).

pub mod fsm;
pub mod policy;
pub mod rib;
pub mod session;
pub mod speaker;
pub mod types;
pub mod wire;
