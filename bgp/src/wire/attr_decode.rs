//! Parsing the value of each interpreted path attribute, with the
//! malformation rules of RFC 7606 §7 (what to do about one is decided in
//! `update_decode`). Each parser returns the reason on error.

use std::net::Ipv4Addr;

use crate::types::Asn;
use crate::wire::reader::Reader;
use crate::wire::{Aggregator, Community, ExtCommunity, LargeCommunity, Origin};

pub(crate) type Parsed<T> = Result<T, &'static str>;

/// ORIGIN (RFC 7606 §7.1): one octet, 0..=2.
pub(crate) fn origin(v: &[u8]) -> Parsed<Origin> {
    match v {
        [0] => Ok(Origin::Igp),
        [1] => Ok(Origin::Egp),
        [2] => Ok(Origin::Incomplete),
        [_] => Err("undefined ORIGIN value"),
        _ => Err("ORIGIN length is not 1"),
    }
}

/// A 4-octet value: MED (§7.4), LOCAL_PREF (§7.5).
pub(crate) fn u32_value(v: &[u8]) -> Parsed<u32> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| "length is not 4")
}

/// A 4-octet address: NEXT_HOP (§7.3), ORIGINATOR_ID (§7.9).
pub(crate) fn ipv4(v: &[u8]) -> Parsed<Ipv4Addr> {
    <[u8; 4]>::try_from(v)
        .map(Ipv4Addr::from)
        .map_err(|_| "length is not 4")
}

/// ATOMIC_AGGREGATE (§7.6): no value.
pub(crate) fn atomic_aggregate(v: &[u8]) -> Parsed<()> {
    if v.is_empty() {
        Ok(())
    } else {
        Err("ATOMIC_AGGREGATE length is not 0")
    }
}

/// AGGREGATOR (§7.7): 6 octets with 2-octet AS, 8 with 4-octet AS.
/// AS4_AGGREGATOR is always the 8-octet form (RFC 6793 §6).
pub(crate) fn aggregator(v: &[u8], four_octet: bool) -> Parsed<Aggregator> {
    let mut r = Reader::new(v);
    let asn = if four_octet {
        if v.len() != 8 {
            return Err("AGGREGATOR length is not 8");
        }
        r.u32()
    } else {
        if v.len() != 6 {
            return Err("AGGREGATOR length is not 6");
        }
        r.u16().map(Asn::from)
    };
    let address = r.array::<4>().map(Ipv4Addr::from);
    match (asn, address) {
        (Some(asn), Some(address)) => Ok(Aggregator { asn, address }),
        _ => Err("truncated AGGREGATOR"),
    }
}

/// A non-empty list of `N`-octet items (RFC 7606 §7.8, §7.10, §7.14,
/// RFC 8092 §6): zero length or a remainder is malformed.
fn items<const N: usize, T>(v: &[u8], f: impl Fn([u8; N]) -> T) -> Parsed<Vec<T>> {
    if v.is_empty() || v.len() % N != 0 {
        return Err("length is zero or not a multiple of the item size");
    }
    Ok(v.chunks_exact(N)
        .filter_map(|c| <[u8; N]>::try_from(c).ok())
        .map(f)
        .collect())
}

pub(crate) fn communities(v: &[u8]) -> Parsed<Vec<Community>> {
    items::<4, _>(v, |b| Community(u32::from_be_bytes(b)))
}

pub(crate) fn cluster_list(v: &[u8]) -> Parsed<Vec<Ipv4Addr>> {
    items::<4, _>(v, Ipv4Addr::from)
}

pub(crate) fn ext_communities(v: &[u8]) -> Parsed<Vec<ExtCommunity>> {
    items::<8, _>(v, ExtCommunity)
}

pub(crate) fn large_communities(v: &[u8]) -> Parsed<Vec<LargeCommunity>> {
    items::<12, _>(v, |b| {
        let mut r = Reader::new(&b);
        LargeCommunity {
            global: r.u32().unwrap_or_default(),
            local1: r.u32().unwrap_or_default(),
            local2: r.u32().unwrap_or_default(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_size_values() {
        assert_eq!(origin(&[2]), Ok(Origin::Incomplete));
        assert!(origin(&[3]).is_err());
        assert!(origin(&[0, 0]).is_err());
        assert!(origin(&[]).is_err());
        assert_eq!(u32_value(&[0, 0, 1, 0]), Ok(256));
        assert!(u32_value(&[0, 0, 1]).is_err());
        assert_eq!(ipv4(&[10, 0, 0, 1]), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(atomic_aggregate(&[]).is_ok());
        assert!(atomic_aggregate(&[0]).is_err());
    }

    #[test]
    fn aggregator_forms() {
        let a = Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(1, 2, 3, 4),
        };
        assert_eq!(aggregator(&[0xfd, 0xe9, 1, 2, 3, 4], false), Ok(a));
        assert_eq!(aggregator(&[0, 0, 0xfd, 0xe9, 1, 2, 3, 4], true), Ok(a));
        assert!(aggregator(&[0xfd, 0xe9, 1, 2, 3, 4], true).is_err());
        assert!(aggregator(&[0, 0, 0xfd, 0xe9, 1, 2, 3, 4], false).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(
            communities(&[0xff, 0xff, 0xff, 0x01, 0, 1, 0, 2]),
            Ok(vec![Community(0xffff_ff01), Community(0x0001_0002)])
        );
        assert!(communities(&[]).is_err());
        assert!(communities(&[1, 2, 3]).is_err());
        assert!(cluster_list(&[1, 2, 3, 4, 5]).is_err());
        assert_eq!(
            ext_communities(&[0, 2, 0xfd, 0xe9, 0, 0, 0, 100]),
            Ok(vec![ExtCommunity([0, 2, 0xfd, 0xe9, 0, 0, 0, 100])])
        );
        assert!(ext_communities(&[0; 7]).is_err());
        assert_eq!(
            large_communities(&[0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2]),
            Ok(vec![LargeCommunity {
                global: 65001,
                local1: 1,
                local2: 2
            }])
        );
        assert!(large_communities(&[0; 8]).is_err());
        assert!(large_communities(&[]).is_err());
    }
}
