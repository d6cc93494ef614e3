//! The RIB (RFC 4271 §3.2): Adj-RIBs-In (one shared prefix table), the Loc-RIB with the decision
//! process (§9.1), and Adj-RIBs-Out (§9.2). Pure: no I/O, no clock.
//!
//! Memory, for a full table: attributes are interned ([`interner`]); a
//! route — peer, attributes, next hop — is stored once and referenced by a
//! 4-byte id ([`route`]); the table holds 8 bytes of paths per prefix
//! ([`paths`]) in a 16-byte bucket ([`prefix_map`]); Adj-RIBs-Out store
//! nothing per prefix ([`adj_out`]). A million prefixes from one peer cost
//! ~40 MiB.
//!
//! Speed, for a table arriving: a large announcement's new prefixes are
//! added on two threads, each owning half of the prefix table (`bulk`).
//! That is the one place the RIB uses a second thread; its outcome does
//! not depend on the threads' timing.

pub mod adj_out;
pub mod aspath;
mod bulk;
pub mod change;
pub mod decided;
pub mod decision;
pub mod export;
pub mod interner;
pub mod local;
mod open_table;
pub mod path;
pub mod paths;
pub mod peer;
pub mod prefix_map;
pub mod route;
pub mod table;

#[cfg(test)]
mod tests;

pub use adj_out::{AdjRibOut, OutGroup, OutUpdate};
pub use change::{RibChange, changes_from_update};
pub use decided::{Decided, Decision};
pub use decision::{DEFAULT_LOCAL_PREF, Ineligible};
pub use export::ExportCache;
pub use interner::{AttrInterner, Attrs};
pub use path::{BestChange, NextHops, Path, RouteKey, Selection};
pub use peer::{PeerIndex, PeerInfo, PeerKind, RibConfig, RouteSource};
pub use table::{Rib, RibError};
