//! Path attributes (RFC 4271 §4.3, §5 and extensions) as values.
//!
//! [`PathAttributes`] is what routes share: the RIB interns it, so it holds no
//! NLRI and is cheap to compare and hash.

use std::net::Ipv4Addr;

use crate::types::{Asn, RouterId};

/// ORIGIN (type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment type (RFC 4271 §4.3, RFC 5065 for the confed types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<Asn>,
}

/// AS_PATH (type 2), always held with 4-octet numbers; the codec converts
/// to and from 2-octet + AS4_PATH for peers without 4-octet support.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

/// AGGREGATOR (type 7), 4-octet AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: Asn,
    pub address: Ipv4Addr,
}

/// A COMMUNITIES value (RFC 1997): high 16 bits AS, low 16 bits value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

/// An EXTENDED_COMMUNITIES value (RFC 4360), 8 octets as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

/// A LARGE_COMMUNITY value (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

/// An attribute the codec does not interpret, kept to pass on (optional
/// transitive ones get the Partial bit when re-advertised, RFC 4271 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// Every attribute of an UPDATE except MP_REACH/MP_UNREACH (which carry
/// NLRI and live on [`crate::wire::Update`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (type 3), for IPv4 NLRI outside MP_REACH.
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    /// Kept in received order; duplicates as received.
    pub communities: Vec<Community>,
    pub originator_id: Option<RouterId>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub ext_communities: Vec<ExtCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// Unrecognised attributes, in received order.
    pub unknown: Vec<RawAttribute>,
}
