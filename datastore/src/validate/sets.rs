//! NetworkSet, GlobalNetworkSet and HostEndpoint, as Calico validates them
//! (libcalico-go `validator.go` and the API types' `validate` tags): nets
//! are addresses or CIDRs; a HostEndpoint names its node and has an
//! interface or expected IPs, each a valid address, and its named ports
//! carry a name, a port and TCP, UDP or SCTP.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::rule::shown;
use super::{Problem, Report};

/// A NetworkSet's or GlobalNetworkSet's spec.
pub(super) fn network_set(r: &mut Report, spec: &Map<String, Value>) {
    r.nets("spec.nets", spec.get("nets"), None);
}

/// A HostEndpoint's spec.
pub(super) fn host_endpoint(r: &mut Report, spec: &Map<String, Value>) {
    if r.string("spec.node", spec.get("node"))
        .is_none_or(str::is_empty)
    {
        r.push("spec.node", Problem::Required);
    }
    let interface = r
        .string("spec.interfaceName", spec.get("interfaceName"))
        .is_some_and(|s| !s.is_empty());
    let ips = r.list("spec.expectedIPs", spec.get("expectedIPs"));
    for (i, ip) in ips.iter().enumerate() {
        let f = format!("spec.expectedIPs[{i}]");
        if let Some(s) = r.string(&f, Some(ip)) {
            if s.parse::<IpAddr>().is_err() {
                r.push(
                    f,
                    Problem::Malformed {
                        value: s.to_owned(),
                        expected: "an IP address",
                    },
                );
            }
        }
    }
    if !interface && ips.is_empty() {
        r.push(
            "spec.interfaceName",
            Problem::Rule("set interfaceName or expectedIPs (Calico needs one)".into()),
        );
    }
    for (i, p) in r
        .list("spec.profiles", spec.get("profiles"))
        .iter()
        .enumerate()
    {
        r.string(&format!("spec.profiles[{i}]"), Some(p));
    }
    for (i, p) in r.list("spec.ports", spec.get("ports")).iter().enumerate() {
        let f = format!("spec.ports[{i}]");
        let Some(p) = r.map(&f, Some(p)) else {
            continue;
        };
        if r.string(&format!("{f}.name"), p.get("name")).is_none() {
            r.push(format!("{f}.name"), Problem::Required);
        }
        match p.get("port").and_then(Value::as_u64) {
            Some(1..=65535) => {}
            _ => r.push(
                format!("{f}.port"),
                Problem::Malformed {
                    value: p.get("port").map_or("nothing".into(), shown),
                    expected: "a port 1-65535",
                },
            ),
        }
        match r
            .protocol(&format!("{f}.protocol"), p.get("protocol"))
            .as_deref()
        {
            Some("TCP" | "UDP" | "SCTP") => {}
            None if p.get("protocol").is_some() => {}
            other => r.push(
                format!("{f}.protocol"),
                Problem::Rule(format!(
                    "{} is not a protocol with ports: use TCP, UDP or SCTP",
                    other.unwrap_or("nothing")
                )),
            ),
        }
    }
}
