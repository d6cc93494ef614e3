//! ROUTE-REFRESH (RFC 2918 §3) with the message subtype of RFC 7313 §3,
//! and its length check (RFC 7313 §5).

use crate::types::Family;
use crate::wire::header::{HEADER_LEN, begin, finish, msg_type};
use crate::wire::notification::{code, route_refresh as sub};
use crate::wire::reader::Reader;
use crate::wire::{Context, DecodeError, EncodeError, Message, RouteRefresh};

/// Message subtypes (RFC 7313 §3).
pub mod subtype {
    pub const REQUEST: u8 = 0;
    pub const BEGIN: u8 = 1;
    pub const END: u8 = 2;
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        Self {
            family,
            subtype: subtype::REQUEST,
        }
    }

    pub(crate) fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = begin(out, msg_type::ROUTE_REFRESH);
        out.extend_from_slice(&self.family.afi().to_be_bytes());
        out.push(self.subtype);
        out.push(self.family.safi());
        finish(out, start, ctx.max_message_len())
    }

    /// Decodes a whole ROUTE-REFRESH message. Any length but 23 is 7/1 with
    /// the message as data (RFC 7313 §5; manul negotiates no ORF). An
    /// AFI/SAFI we do not speak or an unknown subtype gives
    /// [`Message::UnknownRouteRefresh`], to be ignored (RFC 7313 §5, RFC
    /// 2918 §4).
    pub(crate) fn decode_message(msg: &[u8]) -> Result<Message, DecodeError> {
        let body = msg.get(HEADER_LEN..).unwrap_or_default();
        if body.len() != 4 {
            return Err(DecodeError::new(
                code::ROUTE_REFRESH,
                sub::INVALID_MESSAGE_LENGTH,
                msg.to_vec(),
                "ROUTE-REFRESH length is not 23",
            ));
        }
        let mut r = Reader::new(body);
        let (afi, st, safi) = (
            r.u16().unwrap_or_default(),
            r.u8().unwrap_or_default(),
            r.u8().unwrap_or_default(),
        );
        match Family::from_afi_safi(afi, safi) {
            Some(family) if st <= subtype::END => Ok(Message::RouteRefresh(RouteRefresh {
                family,
                subtype: st,
            })),
            _ => Ok(Message::UnknownRouteRefresh {
                afi,
                safi,
                subtype: st,
            }),
        }
    }
}
