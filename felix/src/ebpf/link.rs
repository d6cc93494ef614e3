//! Interface index and MAC by name, inside a network namespace (the
//! kernel answers for the namespace of the thread that asks).

use std::collections::HashMap;
use std::io;
use std::path::Path;

use nix::net::if_::if_nametoindex;

use crate::ebpf::entries::Link;
use crate::netns::in_netns;

/// The hardware address of every interface here that has one, by name
/// (one `getifaddrs` dump; its `AF_PACKET` entries). Bytes past the
/// address's length are zero, as `SIOCGIFHWADDR` gives them.
fn macs_here() -> io::Result<HashMap<String, [u8; 6]>> {
    let mut out = HashMap::new();
    for a in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let Some(ll) = a.address.as_ref().and_then(|s| s.as_link_addr()) else {
            continue;
        };
        let mut mac = [0u8; 6];
        if let Some(addr) = ll.addr() {
            let len = ll.halen().min(mac.len());
            mac[..len].copy_from_slice(&addr[..len]);
        }
        out.insert(a.interface_name, mac);
    }
    Ok(out)
}

/// `name`'s index, with its MAC from `macs` (zero if it has none).
fn link_with(name: &str, macs: &HashMap<String, [u8; 6]>) -> Option<Link> {
    let ifindex = if_nametoindex(name).ok()?;
    let mac = macs.get(name).copied().unwrap_or_default();
    Some(Link { ifindex, mac })
}

/// Index and MAC of `name` in the current thread's namespace; `None` if
/// there is no such interface.
pub fn link_here(name: &str) -> Option<Link> {
    link_with(name, &macs_here().ok()?)
}

/// [`link_here`] for each of `names`, inside `netns` (one interface dump
/// for all of them).
pub fn links_in(netns: Option<&Path>, names: &[String]) -> io::Result<Vec<Option<Link>>> {
    in_netns(netns, || {
        let macs = macs_here()?;
        Ok(names.iter().map(|n| link_with(n, &macs)).collect())
    })
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
