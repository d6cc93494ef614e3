//! OPEN encoding and decoding (RFC 4271 §4.2, §6.2): optional parameters
//! of type 2 holding capabilities (RFC 5492 §4), in the extended format of
//! RFC 9072 when they exceed 255 octets, and My AS / 4-octet AS (RFC 6793).

use std::net::Ipv4Addr;

use crate::types::Asn;
use crate::wire::as_path::to_two_octet;
use crate::wire::header::{BASE_MAX_LEN, begin, finish, msg_type};
use crate::wire::notification::{code, open as sub};
use crate::wire::reader::Reader;
use crate::wire::{Capability, DecodeError, EncodeError, Open};

/// The BGP version manul speaks.
pub const BGP_VERSION: u8 = 4;
/// Optional parameter type of capabilities (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;
/// Marks the extended optional parameters format (RFC 9072 §2).
const PARAM_EXTENDED: u8 = 255;

fn open_error(subcode: u8, data: Vec<u8>, reason: &'static str) -> DecodeError {
    DecodeError::new(code::OPEN_MESSAGE, subcode, data, reason)
}

impl Open {
    /// An OPEN of version 4.
    pub fn new(
        asn: Asn,
        hold_time: u16,
        router_id: Ipv4Addr,
        capabilities: Vec<Capability>,
    ) -> Self {
        Self {
            version: BGP_VERSION,
            asn,
            hold_time,
            router_id,
            capabilities,
        }
    }

    /// The 4-octet AS capability's value, if announced.
    pub fn four_octet_asn(&self) -> Option<Asn> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Appends the whole message. My AS is AS_TRANS when `asn` does not fit
    /// in 2 octets (RFC 6793 §4.1); each capability goes in its own
    /// optional parameter.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = begin(out, msg_type::OPEN);
        out.push(self.version);
        out.extend_from_slice(&to_two_octet(self.asn).to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.router_id.octets());
        let mut params = Vec::new();
        for cap in &self.capabilities {
            let mut value = Vec::new();
            if let Err(e) = cap.encode(&mut value) {
                out.truncate(start);
                return Err(e);
            }
            params.push(value);
        }
        let short_len: usize = params.iter().map(|p| p.len() + 2).sum();
        // A short length of 255 stays unambiguous: our first type is 2, not 255.
        if let Ok(len) = u8::try_from(short_len) {
            out.push(len);
            for p in &params {
                out.extend_from_slice(&[PARAM_CAPABILITIES, u8::try_from(p.len()).unwrap_or(0)]);
                out.extend_from_slice(p);
            }
        } else {
            // RFC 9072 §2: 255, 255, 2-octet length, 2-octet parameter lengths.
            let long_len: usize = params.iter().map(|p| p.len() + 3).sum();
            let Ok(len) = u16::try_from(long_len) else {
                out.truncate(start);
                return Err(EncodeError::OptionalParametersTooLong { len: long_len });
            };
            out.extend_from_slice(&[PARAM_EXTENDED, PARAM_EXTENDED]);
            out.extend_from_slice(&len.to_be_bytes());
            for p in &params {
                out.push(PARAM_CAPABILITIES);
                out.extend_from_slice(&u16::try_from(p.len()).unwrap_or(0).to_be_bytes());
                out.extend_from_slice(p);
            }
        }
        finish(out, start, BASE_MAX_LEN)
    }

    /// Decodes an OPEN body (after the header), with the checks of
    /// RFC 4271 §6.2 that need no configuration: version (2/1), hold time
    /// 1 or 2 (2/6), identifier 0 (2/3), optional parameters (2/4, 2/0).
    /// The peer AS is checked by the FSM.
    pub fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let malformed = || open_error(sub::UNSPECIFIC, Vec::new(), "malformed OPEN");
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(malformed)?;
        if version != BGP_VERSION {
            return Err(open_error(
                sub::UNSUPPORTED_VERSION,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
                "unsupported version",
            ));
        }
        let my_as = r.u16().ok_or_else(malformed)?;
        let hold_time = r.u16().ok_or_else(malformed)?;
        let router_id = Ipv4Addr::from(r.array::<4>().ok_or_else(malformed)?);
        let short_len = r.u8().ok_or_else(malformed)?;
        // RFC 9072 §2: Non-Ext OP Len 255 then Non-Ext OP Type 255.
        let extended = short_len == PARAM_EXTENDED && r.rest().first() == Some(&PARAM_EXTENDED);
        let params_len = if extended {
            r.u8().ok_or_else(malformed)?;
            usize::from(r.u16().ok_or_else(malformed)?)
        } else {
            usize::from(short_len)
        };
        let params = r.take(params_len).ok_or_else(malformed)?;
        if !r.is_empty() {
            return Err(malformed());
        }
        let mut capabilities = Vec::new();
        let mut pr = Reader::new(params);
        while !pr.is_empty() {
            let kind = pr.u8().ok_or_else(malformed)?;
            let len = if extended {
                pr.u16()
            } else {
                pr.u8().map(u16::from)
            };
            let value = len
                .and_then(|l| pr.take(usize::from(l)))
                .ok_or_else(malformed)?;
            if kind != PARAM_CAPABILITIES {
                return Err(open_error(
                    sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    "unsupported optional parameter",
                ));
            }
            let mut cr = Reader::new(value);
            while !cr.is_empty() {
                let (Some(c), Some(l)) = (cr.u8(), cr.u8()) else {
                    return Err(malformed());
                };
                let v = cr.take(usize::from(l)).ok_or_else(malformed)?;
                capabilities.push(Capability::decode(c, v));
            }
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(open_error(
                sub::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                "hold time of 1 or 2 seconds",
            ));
        }
        if router_id.is_unspecified() {
            return Err(open_error(
                sub::BAD_BGP_IDENTIFIER,
                Vec::new(),
                "BGP identifier is 0",
            ));
        }
        let mut open = Open {
            version,
            asn: Asn::from(my_as),
            hold_time,
            router_id,
            capabilities,
        };
        if let Some(asn) = open.four_octet_asn() {
            open.asn = asn;
        }
        Ok(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Family;

    #[test]
    fn open_with_capabilities_by_hand() {
        let open = Open::new(
            4_200_000_000,
            90,
            Ipv4Addr::new(192, 0, 2, 1),
            vec![
                Capability::Multiprotocol(Family::Ipv4Unicast),
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
            ],
        );
        let mut out = Vec::new();
        open.encode(&mut out).unwrap();
        let mut want = vec![0xff; 16];
        want.extend_from_slice(&[0, 49, 1]); // 19 + 10 + 20
        want.extend_from_slice(&[4, 0x5b, 0xa0, 0, 90, 192, 0, 2, 1, 20]);
        want.extend_from_slice(&[2, 6, 1, 4, 0, 1, 0, 1]);
        want.extend_from_slice(&[2, 2, 2, 0]);
        want.extend_from_slice(&[2, 6, 65, 4, 0xfa, 0x56, 0xea, 0x00]);
        assert_eq!(out, want);
        assert_eq!(Open::decode_body(out.get(19..).unwrap()), Ok(open));
    }

    #[test]
    fn asn_comes_from_my_as_without_the_capability() {
        let body = [4, 0xfd, 0xe9, 0, 180, 10, 0, 0, 1, 0];
        let open = Open::decode_body(&body).unwrap();
        assert_eq!(
            (open.asn, open.hold_time, open.capabilities.len()),
            (65001, 180, 0)
        );
    }

    #[test]
    fn rfc9072_extended_parameters() {
        // 70 parameters of 3 + 2 + 2 octets: 490 > 255.
        let caps: Vec<_> = (0..70)
            .map(|i| Capability::Unknown {
                code: 200,
                value: vec![i, i],
            })
            .collect();
        let open = Open::new(65001, 0, Ipv4Addr::new(1, 1, 1, 1), caps);
        let mut out = Vec::new();
        open.encode(&mut out).unwrap();
        assert_eq!(out.get(28..33), Some(&[255, 255, 0x01, 0xea, 2][..]));
        assert_eq!(Open::decode_body(out.get(19..).unwrap()), Ok(open));
    }

    #[test]
    fn open_errors() {
        let e = Open::decode_body(&[3, 0, 1, 0, 90, 1, 1, 1, 1, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (2, 1, vec![0, 4]));
        let e = Open::decode_body(&[4, 0, 1, 0, 2, 1, 1, 1, 1, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 6));
        let e = Open::decode_body(&[4, 0, 1, 0, 1, 1, 1, 1, 1, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 6));
        assert!(Open::decode_body(&[4, 0, 1, 0, 0, 1, 1, 1, 1, 0]).is_ok());
        let e = Open::decode_body(&[4, 0, 1, 0, 3, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 3));
        let e = Open::decode_body(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 4));
        // Parameter length past the end; capability overrunning its parameter.
        let e = Open::decode_body(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 2]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 0));
        let e = Open::decode_body(&[4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 2, 5]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 0));
    }
}
