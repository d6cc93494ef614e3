//! Codec errors. A [`DecodeError`] is exactly the NOTIFICATION to send
//! (RFC 4271 §6): code, subcode and data, plus a short reason for logs.

use crate::wire::Notification;
use crate::wire::notification::describe;

/// A received message that must end the session: the NOTIFICATION to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({reason})", describe(*code, *subcode))]
pub struct DecodeError {
    pub code: u8,
    pub subcode: u8,
    /// The NOTIFICATION data field, as the RFC section for the error says.
    pub data: Vec<u8>,
    /// What was wrong, for logs.
    pub reason: &'static str,
}

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, reason: &'static str) -> Self {
        Self {
            code,
            subcode,
            data,
            reason,
        }
    }

    /// The NOTIFICATION that reports this error to the peer.
    pub fn notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

impl From<DecodeError> for Notification {
    fn from(e: DecodeError) -> Self {
        Notification {
            code: e.code,
            subcode: e.subcode,
            data: e.data,
        }
    }
}

/// A value that cannot be put on the wire under the given [`crate::wire::Context`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the maximum of {max}")]
    MessageTooLong { len: usize, max: usize },
    #[error("attribute {type_code} value of {len} octets exceeds 65535")]
    AttributeTooLong { type_code: u8, len: usize },
    #[error("optional parameters of {len} octets exceed 65535")]
    OptionalParametersTooLong { len: usize },
    #[error("capability {code} value of {len} octets exceeds 255")]
    CapabilityTooLong { code: u8, len: usize },
    #[error("prefix {prefix} does not belong to family {family}")]
    FamilyMismatch {
        prefix: ipnet::IpNet,
        family: crate::types::Family,
    },
    #[error("next hop {next_hop} cannot be used for family {family} in this session")]
    NextHop {
        next_hop: std::net::IpAddr,
        family: crate::types::Family,
    },
    #[error("an IPv4 NEXT_HOP is required to announce classic IPv4 NLRI")]
    MissingNextHop,
    #[error("a single NLRI does not fit in one message")]
    NlriTooLong,
}
