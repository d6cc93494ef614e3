//! The BGP router ID, as calico-node chooses it: `CALICO_ROUTER_ID` is an
//! IPv4 address, or `hash` for one derived from the node name (so a node
//! without an IPv4 address, IPv6 only, still has the 4-octet BGP
//! Identifier RFC 4271 §4.2 requires); unset, the node's IPv4 address.
//! Calico has no router ID on the Node resource (its `NodeBGPSpec` has
//! none); the variable is the only way to set one.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// What `CALICO_ROUTER_ID` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterIdSource {
    /// This address.
    Fixed(Ipv4Addr),
    /// [`hash_to_ipv4`] of the node name.
    Hash,
}

impl FromStr for RouterIdSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "hash" {
            return Ok(RouterIdSource::Hash);
        }
        match s.parse::<Ipv4Addr>() {
            // RFC 6286 §2.1: a non-zero 4-octet value.
            Ok(a) if !a.is_unspecified() => Ok(RouterIdSource::Fixed(a)),
            Ok(_) => Err("0.0.0.0 is not a BGP Identifier (RFC 6286 §2.1)".into()),
            Err(_) => Err(format!("{s:?} is neither an IPv4 address nor `hash`")),
        }
    }
}

impl RouterIdSource {
    /// The router ID for node `node_name`.
    pub fn resolve(self, node_name: &str) -> Ipv4Addr {
        match self {
            RouterIdSource::Fixed(a) => a,
            RouterIdSource::Hash => hash_to_ipv4(node_name),
        }
    }
}

/// Calico's `HashToIPv4` (confd's template functions): the first four
/// octets of SHA-256 of the node name, with a first octet above 223 less
/// 32 so the ID is never a multicast or reserved (224/3) address.
pub fn hash_to_ipv4(node_name: &str) -> Ipv4Addr {
    let digest = ring::digest::digest(&ring::digest::SHA256, node_name.as_bytes());
    let b = digest.as_ref();
    let first = if b[0] > 223 { b[0] - 32 } else { b[0] };
    Ipv4Addr::new(first, b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Calico's algorithm: `printf %s NAME | sha256sum`,
    /// first four bytes, the first less 32 when above 223.
    #[test]
    fn hash_matches_calicos() {
        // sha256("host-a") = c151e392...: 193.81.227.146.
        assert_eq!(hash_to_ipv4("host-a"), Ipv4Addr::new(193, 81, 227, 146));
        // sha256("v6-node") = fdc80b62...: 0xfd = 253 > 223, so 221.
        assert_eq!(hash_to_ipv4("v6-node"), Ipv4Addr::new(221, 200, 11, 98));
    }

    #[test]
    fn values_parse_or_fail_clearly() {
        assert_eq!("hash".parse(), Ok(RouterIdSource::Hash));
        assert_eq!(
            " 10.9.8.7 ".parse(),
            Ok(RouterIdSource::Fixed(Ipv4Addr::new(10, 9, 8, 7)))
        );
        for bad in ["fd00::1", "Hash", "1.2.3", "", "0.0.0.0"] {
            assert!(bad.parse::<RouterIdSource>().is_err(), "{bad}");
        }
        assert_eq!(
            RouterIdSource::Hash.resolve("host-a"),
            hash_to_ipv4("host-a")
        );
    }
}
