//! What a session negotiated, as the codec needs it.

use std::collections::BTreeSet;

use crate::types::Family;

/// Negotiated session parameters that change the wire format. The default is
/// a session before (or without) any capability: 2-octet AS, no ADD-PATH,
/// 4096-octet messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Both sides announced 4-octet AS support (RFC 6793): AS_PATH carries
    /// 4-octet numbers and AS4_PATH/AS4_AGGREGATOR are not used.
    pub four_octet_as: bool,
    /// Families in which we receive path identifiers (RFC 7911).
    pub add_path_rx: BTreeSet<Family>,
    /// Families in which we send path identifiers (RFC 7911).
    pub add_path_tx: BTreeSet<Family>,
    /// IPv4 NLRI may carry an IPv6 next hop in MP_REACH (RFC 8950).
    pub extended_next_hop_v4: bool,
    /// Both sides support messages up to 65535 octets (RFC 8654).
    pub extended_message: bool,
}

impl Context {
    /// Largest message, header included (RFC 4271 §4.1, RFC 8654).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message { 65535 } else { 4096 }
    }
}
