//! BGPPeer `peerIP`: `ip`, `ipv4:port` or `[ipv6]:port`.

use std::net::{IpAddr, Ipv6Addr};

/// A peer address with its optional port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The address.
    pub ip: IpAddr,
    /// The port, when given (else the peer's listen port, 179 by default).
    pub port: Option<u16>,
}

fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&p| p != 0)
}

/// Parses a `peerIP` value; `None` if it is not one of the three forms.
/// A bare IPv6 address is accepted without brackets; with a port it needs
/// them.
pub fn parse_peer_ip(s: &str) -> Option<PeerAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(PeerAddr { ip, port: None });
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, p) = rest.split_once("]:")?;
        let ip = addr.parse::<Ipv6Addr>().ok()?;
        return Some(PeerAddr {
            ip: IpAddr::V6(ip),
            port: Some(port(p)?),
        });
    }
    let (addr, p) = s.rsplit_once(':')?;
    let ip = addr.parse::<std::net::Ipv4Addr>().ok()?;
    Some(PeerAddr {
        ip: IpAddr::V4(ip),
        port: Some(port(p)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse_peer_ip("192.0.2.1").unwrap();
        assert_eq!((p.ip.to_string(), p.port), ("192.0.2.1".into(), None));
        let p = parse_peer_ip("192.0.2.1:1179").unwrap();
        assert_eq!((p.ip.to_string(), p.port), ("192.0.2.1".into(), Some(1179)));
        let p = parse_peer_ip("2001:db8::1").unwrap();
        assert_eq!((p.ip.to_string(), p.port), ("2001:db8::1".into(), None));
        let p = parse_peer_ip("[2001:db8::1]:179").unwrap();
        assert_eq!(
            (p.ip.to_string(), p.port),
            ("2001:db8::1".into(), Some(179))
        );
        for bad in [
            "",
            "x",
            "192.0.2.1:",
            "192.0.2.1:0",
            "192.0.2.1:65536",
            "192.0.2.1:+5",
            "[192.0.2.1]:179",
            "[2001:db8::1]",
            "[2001:db8::1]:",
            "2001:db8::1]:179",
            "192.0.2.256",
            "host:179",
        ] {
            assert!(parse_peer_ip(bad).is_none(), "{bad}");
        }
    }
}
