//! The BGP-4 wire codec (RFC 4271 and extensions), pure: bytes in, typed
//! messages out, and back. No I/O, no allocation beyond the values decoded.
//!
//! A [`Context`] carries what a session negotiated (4-octet AS, ADD-PATH,
//! extended next hop, extended messages) and is passed to every encode and
//! decode that depends on it.

pub mod attributes;
pub mod context;
pub mod message;
pub mod nlri;
pub mod open;

pub use attributes::{
    Aggregator, AsPath, AsSegment, Community, ExtCommunity, LargeCommunity, Origin, PathAttributes,
    RawAttribute, SegmentKind,
};
pub use context::Context;
pub use message::{Message, MpReach, MpUnreach, Notification, RouteRefresh, Update};
pub use nlri::Nlri;
pub use open::{Capability, GracefulRestart, Open};
