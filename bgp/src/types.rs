//! Small shared vocabulary: AS numbers, address families, router IDs.

use std::fmt;
use std::net::Ipv4Addr;

/// A 4-octet AS number (RFC 6793); 2-octet numbers are the subset below 65536.
pub type Asn = u32;

/// The 2-octet stand-in for a 4-octet AS number (RFC 6793 §2).
pub const AS_TRANS: Asn = 23456;

/// A BGP Identifier (RFC 4271 §4.2), conventionally an IPv4 address.
pub type RouterId = Ipv4Addr;

/// Address Family Identifier (IANA).
pub mod afi {
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
}

/// Subsequent Address Family Identifier (IANA).
pub mod safi {
    pub const UNICAST: u8 = 1;
}

/// The address families manul speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Family {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => afi::IPV4,
            Family::Ipv6Unicast => afi::IPV6,
        }
    }

    pub fn safi(self) -> u8 {
        safi::UNICAST
    }

    /// The family of an (AFI, SAFI) pair, `None` for ones manul does not speak.
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (afi::IPV4, safi::UNICAST) => Some(Family::Ipv4Unicast),
            (afi::IPV6, safi::UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    /// The family of a prefix.
    pub fn of(prefix: &ipnet::IpNet) -> Family {
        match prefix {
            ipnet::IpNet::V4(_) => Family::Ipv4Unicast,
            ipnet::IpNet::V6(_) => Family::Ipv6Unicast,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        })
    }
}
