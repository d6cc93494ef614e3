//! The message header (RFC 4271 §4.1) and framing: finding where the next
//! message ends in a receive buffer, with the header checks of §6.1.

use crate::wire::notification::{code, header};
use crate::wire::{Context, DecodeError, EncodeError};

/// Marker, length, type.
pub const HEADER_LEN: usize = 19;
/// The all-ones marker (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Messages other than UPDATE/NOTIFICATION/ROUTE-REFRESH never exceed this,
/// and OPEN is sent before RFC 8654 can be negotiated.
pub const BASE_MAX_LEN: usize = 4096;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Smallest legal length of each type (RFC 4271 §4.2-§4.5, §6.1; RFC 2918 §3).
fn min_len(msg_type: u8) -> Option<usize> {
    match msg_type {
        msg_type::OPEN => Some(29),
        msg_type::UPDATE => Some(23),
        msg_type::NOTIFICATION => Some(21),
        msg_type::KEEPALIVE => Some(19),
        msg_type::ROUTE_REFRESH => Some(23),
        _ => None,
    }
}

fn bad_length(len: u16) -> DecodeError {
    DecodeError::new(
        code::MESSAGE_HEADER,
        header::BAD_MESSAGE_LENGTH,
        len.to_be_bytes().to_vec(),
        "bad message length",
    )
}

/// Looks at the front of `buf`: `Ok(None)` when more bytes are needed to
/// know, `Ok(Some(len))` for the total length of the next message (which
/// may not all be in `buf` yet), or the header error to send (RFC 4271 §6.1).
pub fn frame(buf: &[u8], ctx: &Context) -> Result<Option<usize>, DecodeError> {
    // Connection Not Synchronized as soon as any marker octet is wrong.
    if buf.iter().take(MARKER.len()).any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            header::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "marker is not all ones",
        ));
    }
    let (Some(&hi), Some(&lo), Some(&msg_type)) = (buf.get(16), buf.get(17), buf.get(18)) else {
        return Ok(None);
    };
    let len16 = u16::from_be_bytes([hi, lo]);
    let len = usize::from(len16);
    if len < HEADER_LEN || len > ctx.max_message_len() {
        return Err(bad_length(len16));
    }
    let Some(min) = min_len(msg_type) else {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            header::BAD_MESSAGE_TYPE,
            vec![msg_type],
            "unknown message type",
        ));
    };
    // RFC 8654 §4: OPEN and KEEPALIVE are never extended messages.
    if len < min
        || (msg_type == msg_type::KEEPALIVE && len != HEADER_LEN)
        || (msg_type == msg_type::OPEN && len > BASE_MAX_LEN)
    {
        return Err(bad_length(len16));
    }
    Ok(Some(len))
}

/// Starts a message in `out`; returns where it starts, for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>, msg_type: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, msg_type]);
    start
}

/// Writes the length of the message begun at `start`; on overflow the
/// partial message is removed from `out`.
pub(crate) fn finish(out: &mut Vec<u8>, start: usize, max: usize) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(start);
    match u16::try_from(len) {
        Ok(l) if len <= max => {
            if let Some(slot) = out.get_mut(start + 16..start + 18) {
                slot.copy_from_slice(&l.to_be_bytes());
            }
            Ok(())
        }
        _ => {
            out.truncate(start);
            Err(EncodeError::MessageTooLong { len, max })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16, t: u8) -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(t);
        v
    }

    #[test]
    fn needs_more_bytes_until_the_header_is_complete() {
        let ctx = Context::default();
        let h = hdr(19, 4);
        for n in 0..19 {
            assert_eq!(frame(&h[..n], &ctx), Ok(None), "{n}");
        }
        assert_eq!(frame(&h, &ctx), Ok(Some(19)));
        // Length of the next message only; what follows is not looked at.
        let mut two = hdr(23, 5);
        two.extend_from_slice(&[0, 1, 0, 1]);
        two.extend_from_slice(&h);
        assert_eq!(frame(&two, &ctx), Ok(Some(23)));
    }

    #[test]
    fn bad_marker_is_connection_not_synchronized() {
        let ctx = Context::default();
        let e = frame(&[0xff, 0xff, 0x00], &ctx).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data.len()), (1, 1, 0));
    }

    #[test]
    fn bad_lengths_carry_the_length() {
        let ctx = Context::default();
        for (len, t) in [
            (18, 4),
            (20, 4),
            (4097, 2),
            (28, 1),
            (22, 2),
            (20, 3),
            (22, 5),
        ] {
            let e = frame(&hdr(len, t), &ctx).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 2), "{len}/{t}");
            assert_eq!(e.data, len.to_be_bytes().to_vec());
        }
        let ext = Context {
            extended_message: true,
            ..Context::default()
        };
        assert_eq!(frame(&hdr(65535, 2), &ext), Ok(Some(65535)));
        assert_eq!(frame(&hdr(4096, 2), &ctx), Ok(Some(4096)));
    }

    #[test]
    fn open_stays_within_4096_with_extended_messages() {
        // RFC 8654 §4: extended messages are never OPEN (or KEEPALIVE).
        let ext = Context {
            extended_message: true,
            ..Context::default()
        };
        assert_eq!(frame(&hdr(4096, 1), &ext), Ok(Some(4096)));
        let e = frame(&hdr(4097, 1), &ext).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (1, 2, vec![0x10, 0x01]));
        assert_eq!(frame(&hdr(4097, 3), &ext), Ok(Some(4097)));
        assert_eq!(frame(&hdr(4097, 5), &ext), Ok(Some(4097)));
    }

    #[test]
    fn bad_type_carries_the_type() {
        let e = frame(&hdr(19, 6), &Context::default()).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (1, 3, vec![6]));
        let e = frame(&hdr(19, 0), &Context::default()).unwrap_err();
        assert_eq!(e.data, vec![0]);
    }
}
