//! The addresses of the interface a session uses, from the kernel
//! (`getifaddrs(3)`): what the speaker core needs to pick next hops of the
//! other family (RFC 2545 §3, RFC 8950) and the IPv6 link-local next hop.
//! Only the I/O is here; the choice is `crate::rib::local::pick`.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Every address (with its prefix length) of the interface that holds
/// `local`; empty when none does (or the kernel cannot be asked). An
/// IPv4-mapped IPv6 address is looked up as the IPv4 address it maps.
pub fn interface_addresses(local: IpAddr) -> Vec<IpNet> {
    let local = match local {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(local, IpAddr::V4),
        v4 => v4,
    };
    let all = match all_addresses() {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("getifaddrs: {e}");
            return Vec::new();
        }
    };
    let Some(name) = all
        .iter()
        .find(|(_, net)| net.addr() == local)
        .map(|(n, _)| n.clone())
    else {
        return Vec::new();
    };
    all.into_iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, net)| net)
        .collect()
}

/// (interface name, address/prefix) of every IPv4 and IPv6 address.
fn all_addresses() -> std::io::Result<Vec<(String, IpNet)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid place for the list's pointer; on success
    // the list is ours until `freeifaddrs`, below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs made, not freed yet.
        let ifa = unsafe { &*at };
        at = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a non-null `ifa_addr` points at a sockaddr whose family
        // says which sockaddr it is; `ifa_netmask` (when not null) is of
        // the same family; `ifa_name` is a NUL-terminated string.
        let (addr, mask, name) = unsafe {
            (
                sockaddr_ip(ifa.ifa_addr),
                (!ifa.ifa_netmask.is_null())
                    .then(|| sockaddr_ip(ifa.ifa_netmask))
                    .flatten(),
                CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned(),
            )
        };
        let Some(addr) = addr else { continue };
        let len = mask.map_or(0, |m| match m {
            IpAddr::V4(m) => u32::from(m).count_ones(),
            IpAddr::V6(m) => u128::from(m).count_ones(),
        });
        if let Ok(net) = IpNet::new(addr, len as u8) {
            out.push((name, net));
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The address in a sockaddr of family AF_INET or AF_INET6.
///
/// # Safety
/// `sa` points at a live sockaddr as large as its family's type.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller's promise.
    let family = i32::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET => {
            // SAFETY: an AF_INET sockaddr is a sockaddr_in.
            let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*sa.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_its_address() {
        let addrs = interface_addresses(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(addrs.contains(&"127.0.0.1/8".parse().unwrap()), "{addrs:?}");
        // Mapped: the same interface.
        let mapped = interface_addresses("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(mapped, addrs);
        assert!(interface_addresses("192.0.2.250".parse().unwrap()).is_empty());
    }
}
