//! Calico's settings for a workload's host-side interface (felix's
//! `endpoint_mgr.configureInterface`), so a pod can use a link-local
//! gateway (169.254.1.1) that the host answers for:
//!
//! | sysctl | value | why |
//! |---|---|---|
//! | `net.ipv4.conf.<if>.rp_filter` | 1 | strict reverse-path filtering: a workload cannot spoof its source |
//! | `net.ipv4.conf.<if>.route_localnet` | 1 | NAT to the host's own addresses works |
//! | `net.ipv4.neigh.<if>.proxy_delay` | 0 | answer proxy ARP at once |
//! | `net.ipv4.conf.<if>.proxy_arp` | 1 | the host answers ARP for any address: the pod's gateway |
//! | `net.ipv4.conf.<if>.forwarding` | 1 | forward what the pod sends |
//! | `net.ipv6.conf.<if>.proxy_ndp` | 1 | the IPv6 counterpart of proxy ARP |
//! | `net.ipv6.conf.<if>.forwarding` | 1 | forward what the pod sends |
//!
//! `/proc/sys/net` shows the namespace of the thread that opens it, so the
//! writes run inside the reconciler's namespace ([`crate::netns`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::netns::in_netns;

/// The sysctls set on a workload interface, as (path under `/proc/sys`, value).
pub fn workload_sysctls(name: &str) -> Vec<(PathBuf, &'static str)> {
    let v4 =
        |tree: &str, key: &str| PathBuf::from(format!("/proc/sys/net/ipv4/{tree}/{name}/{key}"));
    let v6 = |key: &str| PathBuf::from(format!("/proc/sys/net/ipv6/conf/{name}/{key}"));
    vec![
        (v4("conf", "rp_filter"), "1"),
        (v4("conf", "route_localnet"), "1"),
        (v4("neigh", "proxy_delay"), "0"),
        (v4("conf", "proxy_arp"), "1"),
        (v4("conf", "forwarding"), "1"),
        (v6("proxy_ndp"), "1"),
        (v6("forwarding"), "1"),
    ]
}

/// Apply [`workload_sysctls`] to each interface in `names`, inside `netns`.
/// IPv6 settings are skipped where IPv6 is off; one interface's failure
/// does not stop the others. Returns the failures.
pub fn configure_workload_interfaces(
    netns: Option<&Path>,
    names: &[String],
) -> io::Result<Vec<(String, io::Error)>> {
    in_netns(netns, || {
        let mut failures = Vec::new();
        for name in names {
            for (path, value) in workload_sysctls(name) {
                let v6 = path.starts_with("/proc/sys/net/ipv6");
                if v6 && !path.parent().is_some_and(Path::exists) {
                    continue;
                }
                if let Err(e) = std::fs::write(&path, value) {
                    failures.push((format!("{name}: {}", path.display()), e));
                }
            }
        }
        Ok(failures)
    })
}
