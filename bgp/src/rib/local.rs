//! Our addresses on one session, as next hops (pure): which IPv4 and IPv6
//! address we advertise when we are the next hop, and whether an IPv6
//! link-local address goes with the global one.
//!
//! - The session's family: its local address (RFC 4271 §5.1.3).
//! - The other family: an address of the interface the session uses.
//!   IPv6 routes over an IPv4 session get a global IPv6 address of that
//!   interface (RFC 2545 §3: the next hop is a global address; RFC 4760
//!   §3: its family is the NLRI's). IPv4 routes over an IPv6 session get
//!   an IPv4 address of the interface; with none, the IPv6 address is
//!   offered, which RFC 8950 lets the encoder carry when negotiated.
//! - A configured IPv6 next hop wins over both.
//! - RFC 2545 §3: the link-local address of the interface goes with the
//!   global one "if and only if" the peer shares a subnet with us: its
//!   address is in one of the interface's prefixes (or is link-local).
//!   Not with a configured next hop (it may be on another link).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Our next-hop addresses on one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalAddresses {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// Sent after `v6` in the 32-octet next hop (RFC 2545 §3).
    pub link_local: Option<Ipv6Addr>,
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A global (routable) IPv6 address: not link-local, loopback, multicast
/// or unspecified.
fn is_global_v6(a: &Ipv6Addr) -> bool {
    !(is_link_local(a) || a.is_loopback() || a.is_multicast() || a.is_unspecified())
}

/// Pick our next hops on a session whose local address is `local`, to
/// `peer`, over an interface holding `interface` (its addresses, with
/// prefix lengths; empty when unknown), with `next_hop_v6` configured.
pub fn pick(
    local: IpAddr,
    peer: IpAddr,
    interface: &[IpNet],
    next_hop_v6: Option<Ipv6Addr>,
) -> LocalAddresses {
    let unmap = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    };
    let (local, peer) = (unmap(local), unmap(peer));
    let first_v4 = || {
        interface.iter().find_map(|n| match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    };
    let v6_of = |keep: fn(&Ipv6Addr) -> bool| {
        interface.iter().find_map(|n| match n.addr() {
            IpAddr::V6(a) if keep(&a) => Some(a),
            _ => None,
        })
    };
    let v4 = match local {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => first_v4(),
    };
    let session_v6 = match local {
        IpAddr::V6(a) if is_global_v6(&a) => Some(a),
        _ => None,
    };
    let v6 = next_hop_v6.or(session_v6).or_else(|| v6_of(is_global_v6));
    let shares_link = match peer {
        IpAddr::V6(p) if is_link_local(&p) => true,
        _ => interface.iter().any(|n| n.contains(&peer)),
    };
    let link_local = match local {
        IpAddr::V6(a) if is_link_local(&a) => Some(a),
        _ => v6_of(is_link_local),
    }
    .filter(|_| shares_link && next_hop_v6.is_none() && v6.is_some());
    LocalAddresses { v4, v6, link_local }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const IFACE: [&str; 4] = [
        "10.77.0.1/24",
        "fe80::1/64",
        "fd00:77::1/64",
        "2001:db8::1/64",
    ];

    #[test]
    fn ipv6_over_an_ipv4_session_takes_the_interfaces_global_address() {
        let l = pick(ip("10.77.0.1"), ip("10.77.0.2"), &nets(&IFACE), None);
        assert_eq!(l.v4, Some("10.77.0.1".parse().unwrap()));
        assert_eq!(l.v6, Some("fd00:77::1".parse().unwrap()));
        // Same subnet: the link-local goes along (RFC 2545 §3).
        assert_eq!(l.link_local, Some("fe80::1".parse().unwrap()));
        // A peer beyond the link (multihop): no link-local.
        let l = pick(ip("10.77.0.1"), ip("10.99.0.2"), &nets(&IFACE), None);
        assert_eq!(l.link_local, None);
        assert_eq!(l.v6, Some("fd00:77::1".parse().unwrap()));
        // Mapped addresses are IPv4.
        let l = pick(
            ip("::ffff:10.77.0.1"),
            ip("::ffff:10.77.0.2"),
            &nets(&IFACE),
            None,
        );
        assert_eq!(l.v4, Some("10.77.0.1".parse().unwrap()));
        assert!(l.link_local.is_some());
    }

    #[test]
    fn without_a_global_ipv6_address_there_is_no_ipv6_next_hop() {
        let only_ll = nets(&["10.77.0.1/24", "fe80::1/64"]);
        let l = pick(ip("10.77.0.1"), ip("10.77.0.2"), &only_ll, None);
        assert_eq!((l.v6, l.link_local), (None, None));
        // Configured: it wins, and no link-local goes with it.
        let nh = "2001:db8:9::1".parse().unwrap();
        let l = pick(ip("10.77.0.1"), ip("10.77.0.2"), &only_ll, Some(nh));
        assert_eq!((l.v6, l.link_local), (Some(nh), None));
        let l = pick(ip("10.77.0.1"), ip("10.77.0.2"), &nets(&IFACE), Some(nh));
        assert_eq!((l.v6, l.link_local), (Some(nh), None));
    }

    #[test]
    fn ipv4_over_an_ipv6_session() {
        let l = pick(ip("fd00:77::1"), ip("fd00:77::2"), &nets(&IFACE), None);
        assert_eq!(l.v6, Some("fd00:77::1".parse().unwrap()));
        assert_eq!(l.v4, Some("10.77.0.1".parse().unwrap()));
        assert_eq!(l.link_local, Some("fe80::1".parse().unwrap()));
        // An IPv6-only interface: no IPv4 next hop (RFC 8950 carries the
        // IPv6 one when negotiated).
        let v6only = nets(&["fe80::1/64", "fd00:77::1/64"]);
        let l = pick(ip("fd00:77::1"), ip("fd00:77::2"), &v6only, None);
        assert_eq!(l.v4, None);
        // A session between link-local addresses.
        let l = pick(ip("fe80::1"), ip("fe80::2"), &v6only, None);
        assert_eq!(l.v6, Some("fd00:77::1".parse().unwrap()));
        assert_eq!(l.link_local, Some("fe80::1".parse().unwrap()));
        // Unknown interface: the session's address only.
        let l = pick(ip("fd00:77::1"), ip("fd00:77::2"), &[], None);
        assert_eq!(
            (l.v4, l.v6, l.link_local),
            (None, Some("fd00:77::1".parse().unwrap()), None)
        );
    }
}
