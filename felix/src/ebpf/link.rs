//! Interface index and MAC by name, inside a network namespace (the
//! kernel answers for the namespace of the thread that asks).

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::ebpf::entries::Link;
use crate::netns::in_netns;

/// Index and MAC of `name` in the current thread's namespace; `None` if
/// there is no such interface.
pub fn link_here(name: &str) -> Option<Link> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if ifindex == 0 {
        return None;
    }
    // SAFETY: a plain socket for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data; zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(c.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` names the interface; the kernel fills ifru_hwaddr.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Some(Link { ifindex, mac })
}

/// [`link_here`] for each of `names`, inside `netns`.
pub fn links_in(netns: Option<&Path>, names: &[String]) -> io::Result<Vec<Option<Link>>> {
    in_netns(netns, || Ok(names.iter().map(|n| link_here(n)).collect()))
}

/// The interfaces (inside `netns`) holding an address in one of `subnets`:
/// the host's uplinks, where the uplink program goes.
pub fn uplinks_in(netns: Option<&Path>, subnets: &[ipnet::IpNet]) -> io::Result<Vec<String>> {
    in_netns(netns, || {
        let mut out: Vec<String> = nix::ifaddrs::getifaddrs()
            .map_err(io::Error::from)?
            .filter(|a| {
                let Some(addr) = a.address.as_ref() else {
                    return false;
                };
                let ip = if let Some(v4) = addr.as_sockaddr_in() {
                    std::net::IpAddr::V4(v4.ip())
                } else if let Some(v6) = addr.as_sockaddr_in6() {
                    std::net::IpAddr::V6(v6.ip())
                } else {
                    return false;
                };
                subnets.iter().any(|s| s.contains(&ip))
            })
            .map(|a| a.interface_name)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    })
}
