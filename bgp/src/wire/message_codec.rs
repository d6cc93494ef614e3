//! Whole-message decode and encode: the header checks (RFC 4271 §6.1),
//! then the body codec of each type.

use crate::wire::header::{BASE_MAX_LEN, HEADER_LEN, begin, finish, frame, msg_type};
use crate::wire::notification::{code, header as sub};
use crate::wire::{
    Context, DecodeError, EncodeError, Message, Notification, Open, RouteRefresh, Update,
    UpdateOutcome,
};

impl Message {
    /// Decodes exactly one whole message (header included). An UPDATE comes
    /// back in its effective form (RFC 7606: treat-as-withdraw applied, bad
    /// attributes discarded); see [`Message::decode_detailed`] for why.
    pub fn decode(bytes: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
        let (msg, outcome) = Self::decode_inner(bytes, ctx)?;
        Ok(match (msg, outcome) {
            (Message::Update(update), Some(outcome)) => {
                Message::Update(crate::wire::DecodedUpdate { update, outcome }.into_effective())
            }
            (m, _) => m,
        })
    }

    /// Like [`Message::decode`], but an UPDATE comes back as received with
    /// its RFC 7606 outcome (always [`UpdateOutcome::Ok`] for other types).
    pub fn decode_detailed(
        bytes: &[u8],
        ctx: &Context,
    ) -> Result<(Message, UpdateOutcome), DecodeError> {
        let (msg, outcome) = Self::decode_inner(bytes, ctx)?;
        Ok((msg, outcome.unwrap_or(UpdateOutcome::Ok)))
    }

    fn decode_inner(
        bytes: &[u8],
        ctx: &Context,
    ) -> Result<(Message, Option<UpdateOutcome>), DecodeError> {
        let len = frame(bytes, ctx)?;
        if len != Some(bytes.len()) {
            let n = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
            return Err(DecodeError::new(
                code::MESSAGE_HEADER,
                sub::BAD_MESSAGE_LENGTH,
                n.to_be_bytes().to_vec(),
                "buffer is not exactly one message",
            ));
        }
        let t = bytes.get(18).copied().unwrap_or_default();
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        let msg = match t {
            msg_type::OPEN => Message::Open(Open::decode_body(body)?),
            msg_type::UPDATE => {
                let d = Update::decode_body(body, ctx)?;
                return Ok((Message::Update(d.update), Some(d.outcome)));
            }
            msg_type::NOTIFICATION => Message::Notification(Notification::decode_body(body)),
            msg_type::KEEPALIVE => Message::Keepalive,
            _ => RouteRefresh::decode_message(bytes)?,
        };
        Ok((msg, None))
    }

    /// Appends the whole message. On error nothing is appended.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Message::Open(o) => o.encode(out),
            Message::Update(u) => u.encode(ctx, out),
            Message::Notification(n) => {
                let start = begin(out, msg_type::NOTIFICATION);
                n.encode_body(out);
                finish(out, start, ctx.max_message_len())
            }
            Message::Keepalive => {
                let start = begin(out, msg_type::KEEPALIVE);
                finish(out, start, BASE_MAX_LEN)
            }
            Message::RouteRefresh(rr) => rr.encode(ctx, out),
            Message::UnknownRouteRefresh { afi, safi, subtype } => {
                let start = begin(out, msg_type::ROUTE_REFRESH);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[*subtype, *safi]);
                finish(out, start, BASE_MAX_LEN)
            }
        }
    }

    /// The message as a fresh buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(ctx, &mut out)?;
        Ok(out)
    }
}
