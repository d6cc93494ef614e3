//! FelixConfiguration, the fields whose values Calico constrains by type
//! or enumeration (api `felixconfig.go` `validate` tags): log levels,
//! `routeSource`, booleans, MTUs, durations. Other fields are stored as
//! given; which of them manul's felix honours is its own business.

use serde_json::{Map, Value};

use super::rule::shown;
use super::{Problem, Report};

const LOG_LEVELS: [&str; 7] = [
    "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "None",
];

const BOOLEANS: [&str; 4] = [
    "bpfEnabled",
    "ipv6Support",
    "useInternalDataplaneDriver",
    "ipipEnabled",
];

const MTUS: [&str; 4] = ["vxlanMTU", "vxlanMTUV6", "ipipMTU", "wireguardMTU"];

const DURATIONS: [&str; 4] = [
    "routeRefreshInterval",
    "iptablesRefreshInterval",
    "reportingInterval",
    "healthTimeoutOverrides",
];

/// A Go duration (`90s`, `1m30s`, `500ms`, `0`).
fn is_go_duration(s: &str) -> bool {
    if s == "0" {
        return true;
    }
    let mut rest = s.strip_prefix('-').unwrap_or(s);
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        let Some(unit) = unit else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// A FelixConfiguration's spec.
pub(super) fn felix_configuration(r: &mut Report, spec: &Map<String, Value>) {
    for field in ["logSeverityScreen", "logSeverityFile", "logSeveritySys"] {
        let f = format!("spec.{field}");
        if let Some(v) = r.string(&f, spec.get(field)) {
            r.known(&f, v, LOG_LEVELS.contains(&v), &LOG_LEVELS);
        }
    }
    let f = "spec.routeSource";
    if let Some(v) = r.string(f, spec.get("routeSource")) {
        let known = ["CalicoIPAM", "WorkloadIPs"];
        r.known(f, v, known.contains(&v), &known);
    }
    for field in BOOLEANS {
        r.boolean(&format!("spec.{field}"), spec.get(field));
    }
    for field in MTUS {
        match spec.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|m| m <= 65535) => {}
            Some(other) => r.push(
                format!("spec.{field}"),
                Problem::Malformed {
                    value: shown(other),
                    expected: "an MTU 0-65535",
                },
            ),
        }
    }
    for field in &DURATIONS[..3] {
        let f = format!("spec.{field}");
        if let Some(v) = r.string(&f, spec.get(*field)) {
            if !is_go_duration(v) {
                r.push(
                    f,
                    Problem::Malformed {
                        value: v.to_owned(),
                        expected: "a duration such as 90s or 1m30s",
                    },
                );
            }
        }
    }
    let f = "spec.natOutgoingAddress";
    if let Some(v) = r.string(f, spec.get("natOutgoingAddress")) {
        if v.parse::<std::net::Ipv4Addr>().is_err() {
            r.push(
                f,
                Problem::Malformed {
                    value: v.to_owned(),
                    expected: "an IPv4 address",
                },
            );
        }
    }
    let f = "spec.deviceRouteSourceAddress";
    if let Some(v) = r.string(f, spec.get("deviceRouteSourceAddress")) {
        if v.parse::<std::net::Ipv4Addr>().is_err() {
            r.push(
                f,
                Problem::Malformed {
                    value: v.to_owned(),
                    expected: "an IPv4 address",
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_go_duration;

    #[test]
    fn go_durations() {
        for ok in ["90s", "1m30s", "500ms", "0", "1.5h"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "90", "s", "1x", "soon"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
