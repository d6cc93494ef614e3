//! The RIB (RFC 4271 §3.2): Adj-RIBs-In (one shared prefix table), the Loc-RIB with the decision
//! process (§9.1), and Adj-RIBs-Out (§9.2), with attribute interning so
//! that routes sharing attributes share memory. Pure: no I/O, no clock.

pub mod adj_out;
pub mod aspath;
pub mod change;
pub mod change_set;
pub mod decision;
pub mod export;
pub mod interner;
pub mod path;
pub mod peer;
pub mod prefix_map;
pub mod route;
pub mod table;

#[cfg(test)]
mod tests;

pub use adj_out::{AdjRibOut, OutGroup, OutUpdate};
pub use change::{RibChange, changes_from_update};
pub use change_set::ChangeSet;
pub use decision::{DEFAULT_LOCAL_PREF, Ineligible};
pub use export::ExportCache;
pub use interner::{AttrInterner, Attrs};
pub use path::{BestChange, NextHops, Path, RouteKey, Selection};
pub use peer::{PeerIndex, PeerInfo, PeerKind, RibConfig, RouteSource};
pub use table::{Rib, RibError};
