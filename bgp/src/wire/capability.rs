//! Capability values (RFC 5492 §4): Multiprotocol (RFC 4760 §8), Route
//! Refresh (RFC 2918 §2), Extended Next Hop (RFC 8950 §3), Extended Message
//! (RFC 8654 §3), Graceful Restart (RFC 4724 §3), 4-octet AS (RFC 6793 §3),
//! ADD-PATH (RFC 7911 §4), Enhanced Route Refresh (RFC 7313 §3). A known
//! code with a value of the wrong shape is kept verbatim as `Unknown`.

use crate::types::Family;
use crate::wire::reader::Reader;
use crate::wire::{AddPathMode, Capability, EncodeError, GracefulRestart};

/// Capability codes (IANA).
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
}

/// Restart time is 12 bits (RFC 4724 §3).
pub const MAX_RESTART_TIME: u16 = 0x0fff;

impl AddPathMode {
    fn to_u8(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    pub fn can_send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }

    pub fn can_receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => cap_code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => cap_code::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => cap_code::FOUR_OCTET_AS,
            Capability::AddPath(_) => cap_code::ADD_PATH,
            Capability::EnhancedRouteRefresh => cap_code::ENHANCED_ROUTE_REFRESH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol(f) => {
                out.extend_from_slice(&f.afi().to_be_bytes());
                out.push(0);
                out.push(f.safi());
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(list) => {
                for (f, nh_afi) in list {
                    out.extend_from_slice(&f.afi().to_be_bytes());
                    out.extend_from_slice(&u16::from(f.safi()).to_be_bytes());
                    out.extend_from_slice(&nh_afi.to_be_bytes());
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut word = gr.restart_time.min(MAX_RESTART_TIME);
                if gr.restart_state {
                    word |= 0x8000;
                }
                if gr.notification {
                    word |= 0x4000;
                }
                out.extend_from_slice(&word.to_be_bytes());
                for (f, forwarding) in &gr.families {
                    out.extend_from_slice(&f.afi().to_be_bytes());
                    out.push(f.safi());
                    out.push(if *forwarding { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::AddPath(list) => {
                for (f, mode) in list {
                    out.extend_from_slice(&f.afi().to_be_bytes());
                    out.push(f.safi());
                    out.push(mode.to_u8());
                }
            }
            Capability::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }

    /// Appends code, length and value.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[self.code(), 0]);
        self.encode_value(out);
        let len = out.len() - start - 2;
        match (u8::try_from(len), out.get_mut(start + 1)) {
            (Ok(l), Some(slot)) => {
                *slot = l;
                Ok(())
            }
            _ => {
                out.truncate(start);
                Err(EncodeError::CapabilityTooLong {
                    code: self.code(),
                    len,
                })
            }
        }
    }

    /// Interprets one capability; never fails (RFC 5492 §4: unknown or
    /// odd-shaped ones are kept verbatim).
    pub(crate) fn decode(code: u8, value: &[u8]) -> Capability {
        Self::interpret(code, value).unwrap_or_else(|| Capability::Unknown {
            code,
            value: value.to_vec(),
        })
    }

    fn interpret(code: u8, value: &[u8]) -> Option<Capability> {
        let mut r = Reader::new(value);
        let cap = match code {
            cap_code::MULTIPROTOCOL if value.len() == 4 => {
                let (afi, _reserved, safi) = (r.u16()?, r.u8()?, r.u8()?);
                Capability::Multiprotocol(Family::from_afi_safi(afi, safi)?)
            }
            cap_code::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            cap_code::EXTENDED_MESSAGE if value.is_empty() => Capability::ExtendedMessage,
            cap_code::ENHANCED_ROUTE_REFRESH if value.is_empty() => {
                Capability::EnhancedRouteRefresh
            }
            cap_code::FOUR_OCTET_AS if value.len() == 4 => Capability::FourOctetAs(r.u32()?),
            cap_code::EXTENDED_NEXT_HOP if value.len() % 6 == 0 => {
                let mut list = Vec::new();
                while !r.is_empty() {
                    let (afi, safi, nh_afi) = (r.u16()?, r.u16()?, r.u16()?);
                    // Families we do not speak are skipped.
                    let family = u8::try_from(safi)
                        .ok()
                        .and_then(|s| Family::from_afi_safi(afi, s));
                    if let Some(f) = family {
                        list.push((f, nh_afi));
                    }
                }
                Capability::ExtendedNextHop(list)
            }
            cap_code::GRACEFUL_RESTART if value.len() >= 2 && (value.len() - 2) % 4 == 0 => {
                let word = r.u16()?;
                let mut families = Vec::new();
                while !r.is_empty() {
                    let (afi, safi, flags) = (r.u16()?, r.u8()?, r.u8()?);
                    if let Some(f) = Family::from_afi_safi(afi, safi) {
                        families.push((f, flags & 0x80 != 0));
                    }
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: word & 0x8000 != 0,
                    notification: word & 0x4000 != 0,
                    restart_time: word & MAX_RESTART_TIME,
                    families,
                })
            }
            cap_code::ADD_PATH if value.len() % 4 == 0 => {
                let mut list = Vec::new();
                while !r.is_empty() {
                    let (afi, safi, mode) = (r.u16()?, r.u8()?, r.u8()?);
                    // RFC 7911 §4: tuples with an unknown mode are ignored.
                    if let (Some(f), Some(m)) =
                        (Family::from_afi_safi(afi, safi), AddPathMode::from_u8(mode))
                    {
                        list.push((f, m));
                    }
                }
                Capability::AddPath(list)
            }
            _ => return None,
        };
        Some(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(c: &Capability) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode(&mut v).unwrap();
        v
    }

    #[test]
    fn each_capability_by_hand() {
        let cases: Vec<(Capability, Vec<u8>)> = vec![
            (
                Capability::Multiprotocol(Family::Ipv6Unicast),
                vec![1, 4, 0, 2, 0, 1],
            ),
            (Capability::RouteRefresh, vec![2, 0]),
            (
                Capability::ExtendedNextHop(vec![(Family::Ipv4Unicast, 2)]),
                vec![5, 6, 0, 1, 0, 1, 0, 2],
            ),
            (Capability::ExtendedMessage, vec![6, 0]),
            (
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: true,
                    notification: true,
                    restart_time: 120,
                    families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)],
                }),
                vec![64, 10, 0xc0, 120, 0, 1, 1, 0x80, 0, 2, 1, 0],
            ),
            (
                Capability::FourOctetAs(4_200_000_000),
                vec![65, 4, 0xfa, 0x56, 0xea, 0x00],
            ),
            (
                Capability::AddPath(vec![
                    (Family::Ipv4Unicast, AddPathMode::Both),
                    (Family::Ipv6Unicast, AddPathMode::Receive),
                ]),
                vec![69, 8, 0, 1, 1, 3, 0, 2, 1, 1],
            ),
            (Capability::EnhancedRouteRefresh, vec![70, 0]),
            (
                Capability::Unknown {
                    code: 73,
                    value: vec![3, b'a', b'b', b'c'],
                },
                vec![73, 4, 3, b'a', b'b', b'c'],
            ),
        ];
        for (cap, wire) in cases {
            assert_eq!(bytes(&cap), wire, "{cap:?}");
            let value = wire.get(2..).unwrap();
            assert_eq!(Capability::decode(cap.code(), value), cap);
        }
    }

    #[test]
    fn odd_shapes_are_kept_verbatim() {
        for (code, value) in [
            (1u8, vec![0, 1, 0]),
            (2, vec![0]),
            (65, vec![0, 0, 1]),
            (64, vec![0]),
            (1, vec![0, 1, 0, 128]),
        ] {
            assert_eq!(
                Capability::decode(code, &value),
                Capability::Unknown {
                    code,
                    value: value.clone()
                }
            );
        }
    }

    #[test]
    fn restart_time_is_twelve_bits() {
        let gr = Capability::decode(64, &[0x8f, 0xff]);
        let Capability::GracefulRestart(gr) = gr else {
            panic!()
        };
        assert!(gr.restart_state && !gr.notification);
        assert_eq!(gr.restart_time, 4095);
    }
}
