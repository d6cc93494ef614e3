//! MP_REACH_NLRI and MP_UNREACH_NLRI values (RFC 4760 §3-§4): next hops
//! of 4 octets (IPv4), 16 or 32 (IPv6 global [+ link-local], RFC 2545 §3),
//! and IPv6 next hops for IPv4 NLRI when negotiated (RFC 8950 §3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::Family;
use crate::wire::nlri::{decode_nlri, encode_nlris};
use crate::wire::reader::Reader;
use crate::wire::{Context, EncodeError, MpReach, MpUnreach};

/// Why an MP attribute is malformed (RFC 7606 §7.11-§7.12).
pub(crate) type MpError = &'static str;

/// `Ok(None)` for an AFI/SAFI manul does not speak.
pub(crate) fn decode_mp_reach(v: &[u8], ctx: &Context) -> Result<Option<MpReach>, MpError> {
    let mut r = Reader::new(v);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err("truncated MP_REACH_NLRI");
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let nh = r
        .take(usize::from(nh_len))
        .ok_or("next hop overruns MP_REACH_NLRI")?;
    r.u8().ok_or("truncated MP_REACH_NLRI")?; // Reserved (RFC 4760 §3)
    let v6_allowed = family == Family::Ipv6Unicast || ctx.extended_next_hop_v4;
    let (next_hop, link_local_next_hop) = match nh.len() {
        4 if family == Family::Ipv4Unicast => {
            let a = <[u8; 4]>::try_from(nh).map_err(|_| "bad next hop")?;
            (IpAddr::V4(Ipv4Addr::from(a)), None)
        }
        16 if v6_allowed => {
            let a = <[u8; 16]>::try_from(nh).map_err(|_| "bad next hop")?;
            (IpAddr::V6(Ipv6Addr::from(a)), None)
        }
        32 if v6_allowed => {
            let (g, l) = nh.split_at_checked(16).ok_or("bad next hop")?;
            let g = <[u8; 16]>::try_from(g).map_err(|_| "bad next hop")?;
            let l = <[u8; 16]>::try_from(l).map_err(|_| "bad next hop")?;
            (IpAddr::V6(Ipv6Addr::from(g)), Some(Ipv6Addr::from(l)))
        }
        _ => return Err("next hop length inconsistent with the AFI/SAFI"),
    };
    let mut nlri = Vec::new();
    decode_nlri(
        r.rest(),
        family,
        ctx.add_path_rx.contains(&family),
        &mut nlri,
    )
    .map_err(|e| e.reason())?;
    Ok(Some(MpReach {
        family,
        next_hop,
        link_local_next_hop,
        nlri,
    }))
}

/// `Ok(None)` for an AFI/SAFI manul does not speak.
pub(crate) fn decode_mp_unreach(v: &[u8], ctx: &Context) -> Result<Option<MpUnreach>, MpError> {
    let mut r = Reader::new(v);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err("truncated MP_UNREACH_NLRI");
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        return Ok(None);
    };
    let mut withdrawn = Vec::new();
    decode_nlri(
        r.rest(),
        family,
        ctx.add_path_rx.contains(&family),
        &mut withdrawn,
    )
    .map_err(|e| e.reason())?;
    Ok(Some(MpUnreach { family, withdrawn }))
}

/// Writes AFI, SAFI, next hop and Reserved: everything of MP_REACH before
/// the NLRI.
pub(crate) fn encode_mp_reach_head(
    family: Family,
    next_hop: IpAddr,
    link_local: Option<Ipv6Addr>,
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let bad = EncodeError::NextHop { next_hop, family };
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(family.safi());
    match (family, next_hop) {
        (Family::Ipv4Unicast, IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        (Family::Ipv6Unicast, IpAddr::V6(a)) => put_v6(a, link_local, out),
        (Family::Ipv4Unicast, IpAddr::V6(a)) if ctx.extended_next_hop_v4 => {
            put_v6(a, link_local, out)
        }
        _ => return Err(bad),
    }
    out.push(0);
    Ok(())
}

fn put_v6(global: Ipv6Addr, link_local: Option<Ipv6Addr>, out: &mut Vec<u8>) {
    out.push(if link_local.is_some() { 32 } else { 16 });
    out.extend_from_slice(&global.octets());
    if let Some(l) = link_local {
        out.extend_from_slice(&l.octets());
    }
}

pub(crate) fn encode_mp_reach(
    m: &MpReach,
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_mp_reach_head(m.family, m.next_hop, m.link_local_next_hop, ctx, out)?;
    encode_nlris(&m.nlri, m.family, ctx.add_path_tx.contains(&m.family), out)
}

pub(crate) fn encode_mp_unreach(
    m: &MpUnreach,
    ctx: &Context,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.extend_from_slice(&m.family.afi().to_be_bytes());
    out.push(m.family.safi());
    encode_nlris(
        &m.withdrawn,
        m.family,
        ctx.add_path_tx.contains(&m.family),
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Nlri;

    #[test]
    fn ipv6_with_link_local_by_hand() {
        let ctx = Context::default();
        let m = MpReach {
            family: Family::Ipv6Unicast,
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local_next_hop: Some("fe80::1".parse().unwrap()),
            nlri: vec![Nlri::new("2001:db8:1::/48".parse().unwrap())],
        };
        let mut out = Vec::new();
        encode_mp_reach(&m, &ctx, &mut out).unwrap();
        let mut want = vec![0, 2, 1, 32];
        want.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.push(0);
        want.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        assert_eq!(out, want);
        assert_eq!(decode_mp_reach(&out, &ctx), Ok(Some(m)));
    }

    #[test]
    fn ipv4_nlri_with_ipv6_next_hop_needs_rfc8950() {
        let m = MpReach {
            family: Family::Ipv4Unicast,
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local_next_hop: None,
            nlri: vec![Nlri::new("10.0.0.0/8".parse().unwrap())],
        };
        let mut out = Vec::new();
        assert!(matches!(
            encode_mp_reach(&m, &Context::default(), &mut out),
            Err(EncodeError::NextHop { .. })
        ));
        let ctx = Context {
            extended_next_hop_v4: true,
            ..Context::default()
        };
        out.clear();
        encode_mp_reach(&m, &ctx, &mut out).unwrap();
        assert_eq!(decode_mp_reach(&out, &ctx), Ok(Some(m)));
        assert!(decode_mp_reach(&out, &Context::default()).is_err());
    }

    #[test]
    fn unknown_family_is_skipped_and_bad_ones_are_errors() {
        let ctx = Context::default();
        // AFI 1 SAFI 128 (VPN): not ours.
        assert_eq!(
            decode_mp_reach(&[0, 1, 128, 4, 1, 2, 3, 4, 0], &ctx),
            Ok(None)
        );
        assert_eq!(decode_mp_unreach(&[0, 25, 65], &ctx), Ok(None));
        // IPv6 with a 4-octet next hop.
        assert!(decode_mp_reach(&[0, 2, 1, 4, 1, 2, 3, 4, 0], &ctx).is_err());
        // Missing Reserved octet.
        assert!(decode_mp_reach(&[0, 1, 1, 4, 1, 2, 3, 4], &ctx).is_err());
        // Bad NLRI inside.
        assert!(decode_mp_reach(&[0, 1, 1, 4, 1, 2, 3, 4, 0, 33, 1, 1, 1, 1, 1], &ctx).is_err());
        assert!(decode_mp_unreach(&[0, 1, 1, 24, 10], &ctx).is_err());
        assert!(decode_mp_unreach(&[0, 1], &ctx).is_err());
        assert_eq!(
            decode_mp_unreach(&[0, 2, 1], &ctx),
            Ok(Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![]
            }))
        );
    }
}
