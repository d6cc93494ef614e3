//! NOTIFICATION codes and subcodes (RFC 4271 §4.5 and the IANA registry),
//! their descriptions, and the shutdown communication of RFC 9003.

use crate::wire::Notification;

/// Error codes (RFC 4271 §4.5, RFC 7313 §5).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
pub mod open {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Deprecated (RFC 4271 Appendix A).
    pub const AUTHENTICATION_FAILURE: u8 = 5;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// RFC 5492 §5.
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    /// RFC 9234 §4.2.
    pub const ROLE_MISMATCH: u8 = 11;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    /// Deprecated (RFC 4271 Appendix A).
    pub const AS_ROUTING_LOOP: u8 = 7;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608 §3).
pub mod fsm {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486 §4, RFC 8538 §5, RFC 9384 §2).
pub mod cease {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
pub mod route_refresh {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// Longest shutdown communication in octets (RFC 9003 §2).
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

/// A human-readable name for a code/subcode pair.
pub fn describe(code: u8, subcode: u8) -> &'static str {
    match (code, subcode) {
        (1, 0) => "Message Header Error",
        (1, 1) => "Message Header Error / Connection Not Synchronized",
        (1, 2) => "Message Header Error / Bad Message Length",
        (1, 3) => "Message Header Error / Bad Message Type",
        (1, _) => "Message Header Error / unknown subcode",
        (2, 0) => "OPEN Message Error / Unspecific",
        (2, 1) => "OPEN Message Error / Unsupported Version Number",
        (2, 2) => "OPEN Message Error / Bad Peer AS",
        (2, 3) => "OPEN Message Error / Bad BGP Identifier",
        (2, 4) => "OPEN Message Error / Unsupported Optional Parameter",
        (2, 5) => "OPEN Message Error / Authentication Failure (deprecated)",
        (2, 6) => "OPEN Message Error / Unacceptable Hold Time",
        (2, 7) => "OPEN Message Error / Unsupported Capability",
        (2, 8..=10) => "OPEN Message Error / deprecated subcode",
        (2, 11) => "OPEN Message Error / Role Mismatch",
        (2, _) => "OPEN Message Error / unknown subcode",
        (3, 0) => "UPDATE Message Error",
        (3, 1) => "UPDATE Message Error / Malformed Attribute List",
        (3, 2) => "UPDATE Message Error / Unrecognized Well-known Attribute",
        (3, 3) => "UPDATE Message Error / Missing Well-known Attribute",
        (3, 4) => "UPDATE Message Error / Attribute Flags Error",
        (3, 5) => "UPDATE Message Error / Attribute Length Error",
        (3, 6) => "UPDATE Message Error / Invalid ORIGIN Attribute",
        (3, 7) => "UPDATE Message Error / AS Routing Loop (deprecated)",
        (3, 8) => "UPDATE Message Error / Invalid NEXT_HOP Attribute",
        (3, 9) => "UPDATE Message Error / Optional Attribute Error",
        (3, 10) => "UPDATE Message Error / Invalid Network Field",
        (3, 11) => "UPDATE Message Error / Malformed AS_PATH",
        (3, _) => "UPDATE Message Error / unknown subcode",
        (4, _) => "Hold Timer Expired",
        (5, 0) => "Finite State Machine Error / Unspecified Error",
        (5, 1) => "Finite State Machine Error / Unexpected Message in OpenSent State",
        (5, 2) => "Finite State Machine Error / Unexpected Message in OpenConfirm State",
        (5, 3) => "Finite State Machine Error / Unexpected Message in Established State",
        (5, _) => "Finite State Machine Error / unknown subcode",
        (6, 0) => "Cease",
        (6, 1) => "Cease / Maximum Number of Prefixes Reached",
        (6, 2) => "Cease / Administrative Shutdown",
        (6, 3) => "Cease / Peer De-configured",
        (6, 4) => "Cease / Administrative Reset",
        (6, 5) => "Cease / Connection Rejected",
        (6, 6) => "Cease / Other Configuration Change",
        (6, 7) => "Cease / Connection Collision Resolution",
        (6, 8) => "Cease / Out of Resources",
        (6, 9) => "Cease / Hard Reset",
        (6, 10) => "Cease / BFD Down",
        (6, _) => "Cease / unknown subcode",
        (7, 1) => "ROUTE-REFRESH Message Error / Invalid Message Length",
        (7, _) => "ROUTE-REFRESH Message Error / unknown subcode",
        _ => "unknown error code",
    }
}

/// Cease subcodes that may carry a shutdown communication (RFC 9003 §2).
fn carries_shutdown_communication(code: u8, subcode: u8) -> bool {
    code == code::CEASE
        && (subcode == cease::ADMINISTRATIVE_SHUTDOWN || subcode == cease::ADMINISTRATIVE_RESET)
}

/// Encodes a shutdown communication (RFC 9003 §2): one length octet then
/// UTF-8, cut at a character boundary to at most 255 octets.
pub fn encode_shutdown_communication(message: &str) -> Vec<u8> {
    let mut end = message.len().min(MAX_SHUTDOWN_COMMUNICATION);
    while !message.is_char_boundary(end) {
        end -= 1; // end > 0 here: 0 is always a char boundary.
    }
    let text = message.as_bytes().get(..end).unwrap_or_default();
    let mut out = Vec::with_capacity(text.len() + 1);
    out.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(text);
    out
}

/// Decodes a shutdown communication. A length running past the data or
/// invalid UTF-8 makes it absent (RFC 9003 §4); octets after it are ignored.
pub fn decode_shutdown_communication(data: &[u8]) -> Option<&str> {
    let (&len, rest) = data.split_first()?;
    let text = rest.get(..usize::from(len))?;
    std::str::from_utf8(text).ok()
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            subcode,
            data,
        }
    }

    /// Cease with a shutdown communication (RFC 9003); `subcode` should be
    /// [`cease::ADMINISTRATIVE_SHUTDOWN`] or [`cease::ADMINISTRATIVE_RESET`].
    pub fn cease_with_message(subcode: u8, message: &str) -> Self {
        let data = if message.is_empty() {
            Vec::new()
        } else {
            encode_shutdown_communication(message)
        };
        Self::new(code::CEASE, subcode, data)
    }

    /// The shutdown communication of a Cease 2 or 4, `None` when absent or
    /// malformed (RFC 9003 §4).
    pub fn shutdown_communication(&self) -> Option<&str> {
        if carries_shutdown_communication(self.code, self.subcode) {
            decode_shutdown_communication(&self.data)
        } else {
            None
        }
    }

    /// "Code / Subcode", with the shutdown communication when there is one.
    pub fn describe(&self) -> String {
        let name = describe(self.code, self.subcode);
        match self.shutdown_communication() {
            Some(text) if !text.is_empty() => format!("{name}: {text:?}"),
            _ => name.to_owned(),
        }
    }

    /// Encodes the message body (RFC 4271 §4.5): code, subcode, data.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    /// Decodes a body; the header check guarantees at least 2 octets, but a
    /// short one is tolerated as code/subcode 0.
    pub(crate) fn decode_body(body: &[u8]) -> Self {
        let (code, subcode, data) = match body {
            [c, s, data @ ..] => (*c, *s, data.to_vec()),
            [c] => (*c, 0, Vec::new()),
            [] => (0, 0, Vec::new()),
        };
        Self::new(code, subcode, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_pair_is_named() {
        for (c, s) in [
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 1),
            (2, 7),
            (2, 11),
            (3, 11),
            (4, 0),
            (6, 10),
            (7, 1),
        ] {
            assert!(!describe(c, s).contains("unknown"), "{c}/{s}");
        }
        assert_eq!(describe(6, 2), "Cease / Administrative Shutdown");
        assert_eq!(describe(9, 9), "unknown error code");
    }

    #[test]
    fn shutdown_communication_round_trip() {
        let n = Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(n.data, b"\x0bmaintenance");
        assert_eq!(n.shutdown_communication(), Some("maintenance"));
        assert_eq!(
            n.describe(),
            "Cease / Administrative Shutdown: \"maintenance\""
        );
    }

    #[test]
    fn shutdown_communication_is_cut_at_a_char_boundary() {
        let long = "é".repeat(200); // 400 octets
        let data = encode_shutdown_communication(&long);
        assert_eq!(data.first(), Some(&254));
        assert_eq!(data.len(), 255);
        assert_eq!(
            decode_shutdown_communication(&data).map(str::len),
            Some(254)
        );
    }

    #[test]
    fn malformed_shutdown_communication_is_absent() {
        // Length beyond the data (RFC 9003 §4).
        let n = Notification::new(6, 2, vec![10, b'a']);
        assert_eq!(n.shutdown_communication(), None);
        assert_eq!(n.describe(), "Cease / Administrative Shutdown");
        // Invalid UTF-8.
        let n = Notification::new(6, 4, vec![2, 0xff, 0xfe]);
        assert_eq!(n.shutdown_communication(), None);
        // Other subcodes never carry one.
        let n = Notification::new(6, 3, vec![1, b'a']);
        assert_eq!(n.shutdown_communication(), None);
        // Empty data: absent.
        assert_eq!(
            Notification::new(6, 2, vec![]).shutdown_communication(),
            None
        );
    }
}
