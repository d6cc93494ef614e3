//! NLRI: a prefix, with a path identifier when ADD-PATH is on (RFC 7911),
//! and its wire form (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::types::Family;
use crate::wire::EncodeError;
use crate::wire::reader::Reader;

/// One reachability entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    /// Present exactly when ADD-PATH is negotiated for the family and direction.
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Self {
            prefix,
            path_id: None,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Self {
            prefix,
            path_id: Some(path_id),
        }
    }

    /// Octets this entry takes on the wire.
    pub fn wire_len(&self, add_path: bool) -> usize {
        let id = if add_path { 4 } else { 0 };
        id + 1 + usize::from(self.prefix.prefix_len()).div_ceil(8)
    }
}

/// Why an NLRI field could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NlriError {
    Truncated,
    PrefixTooLong,
}

impl NlriError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            NlriError::Truncated => "truncated NLRI",
            NlriError::PrefixTooLong => "prefix length too long for the family",
        }
    }
}

/// Parses a whole NLRI (or withdrawn routes) field of `family` into `out`.
/// Host bits beyond the prefix length are cleared.
pub(crate) fn decode_nlri(
    buf: &[u8],
    family: Family,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), NlriError> {
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let path_id = if add_path {
            Some(r.u32().ok_or(NlriError::Truncated)?)
        } else {
            None
        };
        let len = r.u8().ok_or(NlriError::Truncated)?;
        let octets = r
            .take(usize::from(len).div_ceil(8))
            .ok_or(NlriError::Truncated)?;
        let prefix = match family {
            Family::Ipv4Unicast => {
                let mut a = [0u8; 4];
                let dst = a.get_mut(..octets.len()).ok_or(NlriError::PrefixTooLong)?;
                copy_clearing_host_bits(dst, octets, len);
                IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(a), len).map_err(|_| NlriError::PrefixTooLong)?,
                )
            }
            Family::Ipv6Unicast => {
                let mut a = [0u8; 16];
                let dst = a.get_mut(..octets.len()).ok_or(NlriError::PrefixTooLong)?;
                copy_clearing_host_bits(dst, octets, len);
                IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::from(a), len).map_err(|_| NlriError::PrefixTooLong)?,
                )
            }
        };
        out.push(Nlri { prefix, path_id });
    }
    Ok(())
}

/// Copy a prefix's `octets` (the length's worth, `len.div_ceil(8)`) into
/// `dst`, clearing the bits of the last octet beyond `len`: the address
/// has no host bits set, whatever the peer sent there.
fn copy_clearing_host_bits(dst: &mut [u8], octets: &[u8], len: u8) {
    dst.copy_from_slice(octets);
    let partial = len % 8;
    if let (Some(last), true) = (dst.last_mut(), partial != 0) {
        *last &= 0xff << (8 - partial);
    }
}

/// Appends one entry; the path identifier is written (0 when absent)
/// exactly when `add_path` is on for this family and direction.
pub(crate) fn encode_nlri(
    n: &Nlri,
    family: Family,
    add_path: bool,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if Family::of(&n.prefix) != family {
        return Err(EncodeError::FamilyMismatch {
            prefix: n.prefix,
            family,
        });
    }
    if add_path {
        out.extend_from_slice(&n.path_id.unwrap_or(0).to_be_bytes());
    }
    let len = n.prefix.prefix_len();
    out.push(len);
    let octets = usize::from(len).div_ceil(8);
    match n.prefix {
        IpNet::V4(p) => out.extend_from_slice(p.addr().octets().get(..octets).unwrap_or_default()),
        IpNet::V6(p) => out.extend_from_slice(p.addr().octets().get(..octets).unwrap_or_default()),
    }
    Ok(())
}

/// Appends a list of entries.
pub(crate) fn encode_nlris(
    list: &[Nlri],
    family: Family,
    add_path: bool,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    list.iter()
        .try_for_each(|n| encode_nlri(n, family, add_path, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Nlri {
        Nlri::new(s.parse().unwrap())
    }

    #[test]
    fn ipv4_bytes_by_hand() {
        let mut out = Vec::new();
        let list = [
            v4("10.0.0.0/8"),
            v4("192.168.1.0/24"),
            v4("0.0.0.0/0"),
            v4("1.2.3.4/32"),
        ];
        encode_nlris(&list, Family::Ipv4Unicast, false, &mut out).unwrap();
        assert_eq!(out, [8, 10, 24, 192, 168, 1, 0, 32, 1, 2, 3, 4]);
        let mut back = Vec::new();
        decode_nlri(&out, Family::Ipv4Unicast, false, &mut back).unwrap();
        assert_eq!(back, list);
        assert_eq!(list[1].wire_len(false), 4);
        assert_eq!(list[1].wire_len(true), 8);
    }

    #[test]
    fn add_path_ids_by_hand() {
        let n = Nlri::with_path_id("2001:db8::/32".parse().unwrap(), 7);
        let mut out = Vec::new();
        encode_nlri(&n, Family::Ipv6Unicast, true, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 7, 32, 0x20, 0x01, 0x0d, 0xb8]);
        let mut back = Vec::new();
        decode_nlri(&out, Family::Ipv6Unicast, true, &mut back).unwrap();
        assert_eq!(back, [n]);
        // Without ADD-PATH the id is not sent.
        out.clear();
        encode_nlri(&n, Family::Ipv6Unicast, false, &mut out).unwrap();
        assert_eq!(out, [32, 0x20, 0x01, 0x0d, 0xb8]);
    }

    #[test]
    fn host_bits_are_cleared() {
        let mut back = Vec::new();
        decode_nlri(&[24, 10, 1, 2], Family::Ipv4Unicast, false, &mut back).unwrap();
        back.clear();
        decode_nlri(&[23, 10, 1, 3], Family::Ipv4Unicast, false, &mut back).unwrap();
        assert_eq!(back, [v4("10.1.2.0/23")]);
        back.clear();
        decode_nlri(&[1, 0xff, 0, 0], Family::Ipv4Unicast, false, &mut back).unwrap();
        assert_eq!(back, [v4("128.0.0.0/1"), v4("0.0.0.0/0"), v4("0.0.0.0/0")]);
        back.clear();
        let v6 = [35, 0x20, 0x01, 0x0d, 0xb8, 0xff];
        decode_nlri(&v6, Family::Ipv6Unicast, false, &mut back).unwrap();
        assert_eq!(back, [Nlri::new("2001:db8:e000::/35".parse().unwrap())]);
    }

    #[test]
    fn errors() {
        let mut v = Vec::new();
        let f4 = Family::Ipv4Unicast;
        assert_eq!(
            decode_nlri(&[33, 1, 2, 3, 4, 5], f4, false, &mut v),
            Err(NlriError::PrefixTooLong)
        );
        assert_eq!(
            decode_nlri(&[24, 1, 2], f4, false, &mut v),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            decode_nlri(&[0, 0, 1], f4, true, &mut v),
            Err(NlriError::Truncated)
        );
        let mut long = vec![129];
        long.extend_from_slice(&[0; 17]);
        assert_eq!(
            decode_nlri(&long, Family::Ipv6Unicast, false, &mut v),
            Err(NlriError::PrefixTooLong)
        );
        assert!(matches!(
            encode_nlri(
                &v4("10.0.0.0/8"),
                Family::Ipv6Unicast,
                false,
                &mut Vec::new()
            ),
            Err(EncodeError::FamilyMismatch { .. })
        ));
    }
}
