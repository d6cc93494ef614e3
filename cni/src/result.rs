//! The success result of ADD (CNI spec 1.0.0 `Result`; for 0.3.x/0.4.0
//! runtimes each IP also carries `version`).

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::netlink::{GATEWAY_V4, GATEWAY_V6};

/// Versions this plugin speaks.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The VERSION answer.
pub fn version(cni_version: &str) -> Value {
    json!({"cniVersion": cni_version, "supportedVersions": SUPPORTED})
}

/// The ADD result: the host end (index 0), the pod end (index 1, in the
/// sandbox), one /32 (/128) per address with its gateway, default routes.
pub fn add(
    cni_version: &str,
    host_veth: &str,
    ifname: &str,
    pod_mac: &str,
    netns: &str,
    ips: &[IpAddr],
) -> Value {
    let legacy = cni_version.starts_with("0.");
    let ip_entries: Vec<Value> = ips
        .iter()
        .map(|ip| {
            let (prefix, gw, ver) = match ip {
                IpAddr::V4(_) => (32, IpAddr::V4(GATEWAY_V4), "4"),
                IpAddr::V6(_) => (128, IpAddr::V6(GATEWAY_V6), "6"),
            };
            let mut v = json!({"address": format!("{ip}/{prefix}"), "interface": 1, "gateway": gw.to_string()});
            if legacy {
                v["version"] = ver.into();
            }
            v
        })
        .collect();
    let mut routes = Vec::new();
    if ips.iter().any(IpAddr::is_ipv4) {
        routes.push(json!({"dst": "0.0.0.0/0", "gw": GATEWAY_V4.to_string()}));
    }
    if ips.iter().any(IpAddr::is_ipv6) {
        routes.push(json!({"dst": "::/0", "gw": GATEWAY_V6.to_string()}));
    }
    json!({
        "cniVersion": cni_version,
        "interfaces": [
            {"name": host_veth, "mac": "ee:ee:ee:ee:ee:ee"},
            {"name": ifname, "mac": pod_mac, "sandbox": netns},
        ],
        "ips": ip_entries,
        "routes": routes,
        "dns": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_shape() {
        let r = add(
            "1.0.0",
            "cali0123456789a",
            "eth0",
            "aa:bb:cc:dd:ee:ff",
            "/run/netns/x",
            &["10.65.0.3".parse().unwrap()],
        );
        assert_eq!(r["ips"][0]["address"], "10.65.0.3/32");
        assert_eq!(r["ips"][0]["gateway"], "169.254.1.1");
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(r["interfaces"][1]["sandbox"], "/run/netns/x");
        let old = add("0.3.1", "c", "eth0", "", "", &["fd00::3".parse().unwrap()]);
        assert_eq!(old["ips"][0]["version"], "6");
        assert_eq!(old["routes"][0]["dst"], "::/0");
    }
}
