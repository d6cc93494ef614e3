//! The BGP-4 wire codec (RFC 4271 and extensions), pure: bytes in, typed
//! messages out, and back. No I/O, no allocation beyond the values decoded.
//!
//! A [`Context`] carries what a session negotiated (4-octet AS, ADD-PATH,
//! extended next hop, extended messages) and is passed to every encode and
//! decode that depends on it.
//!
//! Receiving: [`frame`] finds each message in the byte stream, then
//! [`Message::decode`] (or [`Message::decode_detailed`] for the RFC 7606
//! outcome of an UPDATE). Sending: [`Message::encode`], and [`pack_announce`]
//! / [`pack_withdraw`] for many prefixes at once. [`negotiate()`] turns two
//! OPENs into a [`Context`].

pub mod attributes;
pub mod capability;
pub mod context;
pub mod error;
pub mod fuzzing;
pub mod header;
pub mod message;
pub mod negotiate;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod open_codec;
pub mod pack;
pub mod route_refresh;
pub mod update_decode;

mod as_path;
mod attr_decode;
mod attr_encode;
mod message_codec;
mod mp;
mod reader;
mod update_encode;

#[cfg(test)]
mod tests;

pub use attributes::{
    Aggregator, AsPath, AsSegment, Community, ExtCommunity, LargeCommunity, Origin, PathAttributes,
    RawAttribute, SegmentKind,
};
pub use context::Context;
pub use error::{DecodeError, EncodeError};
pub use header::frame;
pub use message::{Message, MpReach, MpUnreach, Notification, RouteRefresh, Update};
pub use negotiate::{Negotiated, negotiate};
pub use nlri::Nlri;
pub use open::{AddPathMode, Capability, GracefulRestart, Open};
pub use pack::{NextHop, pack_announce, pack_withdraw};
pub use update_decode::{AttrError, DecodedUpdate, UpdateOutcome};
