//! Calico's rules for policy rules (`spec.ingress[i]`, `spec.egress[i]` of
//! NetworkPolicy, GlobalNetworkPolicy and Profile) and the field types they
//! share with HostEndpoint and NetworkSet: nets, ports, protocols, ICMP,
//! selectors, names. Checked on the JSON as stored, so every field path is
//! exact. Source: libcalico-go `lib/validator/v3/validator.go`
//! (`validateRule`, `validateEntityRule`, `validateICMPFields`) and
//! `api/pkg/lib/numorstring`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use super::{Problem, Report};

/// The actions a rule may take (`api/pkg/apis/projectcalico/v3/policy_common.go`).
pub const ACTIONS: [&str; 4] = ["Allow", "Deny", "Log", "Pass"];

/// The protocol names Calico knows (`numorstring.Protocol*`).
pub const PROTOCOLS: [&str; 6] = ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

/// Protocols that have ports: `ports` needs one of these.
const PORT_PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

/// Calico's resource name rule (`nameRegex`: a DNS-1123 subdomain, at most
/// 253 characters).
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// A DNS-1123 label (namespaces): a name without dots, at most 63.
pub fn is_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_name(s)
}

/// Calico's named-port rule (`portNameRegex`): at most 15 characters of
/// lower-case letters, digits and `-`, with a letter.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A JSON value as a message quotes it: a string's text, else its JSON.
pub(super) fn shown(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

impl Report {
    /// A field that must be a string when present.
    pub(super) fn string<'a>(&mut self, field: &str, v: Option<&'a Value>) -> Option<&'a str> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.push(
                    field,
                    Problem::Malformed {
                        value: shown(other),
                        expected: "a string",
                    },
                );
                None
            }
        }
    }

    /// A field that must be a list when present; its items.
    pub(super) fn list<'a>(&mut self, field: &str, v: Option<&'a Value>) -> &'a [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.push(
                    field,
                    Problem::Malformed {
                        value: shown(other),
                        expected: "a list",
                    },
                );
                &[]
            }
        }
    }

    /// A field that must be a mapping when present.
    pub(super) fn map<'a>(
        &mut self,
        field: &str,
        v: Option<&'a Value>,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.push(
                    field,
                    Problem::Malformed {
                        value: shown(other),
                        expected: "a mapping",
                    },
                );
                None
            }
        }
    }

    /// A field that must be `true` or `false` when present.
    pub(super) fn boolean(&mut self, field: &str, v: Option<&Value>) -> bool {
        match v {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.push(
                    field,
                    Problem::Malformed {
                        value: shown(other),
                        expected: "true or false",
                    },
                );
                false
            }
        }
    }

    /// A selector field: must parse.
    pub(super) fn selector_field(&mut self, field: &str, v: Option<&Value>) {
        if let Some(s) = self.string(field, v) {
            self.selector(field, s);
        }
    }

    /// A list of nets: each an address or a CIDR (Calico's `net` tag), of
    /// `family` when the rule sets `ipVersion`. Returns the families seen.
    pub(super) fn nets(&mut self, field: &str, v: Option<&Value>, family: Option<u8>) {
        for (i, item) in self.list(field, v).iter().enumerate() {
            let f = format!("{field}[{i}]");
            let Some(s) = self.string(&f, Some(item)) else {
                continue;
            };
            let parsed = s
                .parse::<IpNet>()
                .ok()
                .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from));
            match parsed {
                None => self.push(
                    f,
                    Problem::Malformed {
                        value: s.to_owned(),
                        expected: "an IP address or CIDR",
                    },
                ),
                Some(net) => {
                    let is_v4 = matches!(net, IpNet::V4(_));
                    if let Some(fam) = family {
                        if (fam == 4) != is_v4 {
                            self.push(
                                f,
                                Problem::Rule(format!(
                                    "{s} is not IPv{fam} but the rule's ipVersion is {fam}"
                                )),
                            );
                        }
                    }
                }
            }
        }
    }

    /// A list of ports: numbers 0-65535, `"min:max"` ranges, or port names.
    pub(super) fn ports(&mut self, field: &str, v: Option<&Value>, named_ok: bool) -> bool {
        let items = self.list(field, v);
        for (i, item) in items.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let ok = match item {
                Value::Number(n) => n.as_u64().is_some_and(|p| p <= 65535),
                Value::String(s) => match s.split_once(':') {
                    Some((lo, hi)) => match (lo.parse::<u16>(), hi.parse::<u16>()) {
                        (Ok(lo), Ok(hi)) if lo <= hi => true,
                        (Ok(_), Ok(_)) => {
                            self.push(
                                &f,
                                Problem::Rule(format!(
                                    "port range {s:?} has its minimum above its maximum"
                                )),
                            );
                            continue;
                        }
                        _ => false,
                    },
                    None => s.parse::<u16>().is_ok() || (named_ok && is_port_name(s)),
                },
                _ => false,
            };
            if !ok {
                self.push(
                    f,
                    Problem::Malformed {
                        value: shown(item),
                        expected: "a port 0-65535, a range \"min:max\" or a port name",
                    },
                );
            }
        }
        !items.is_empty()
    }

    /// A protocol: one of [`PROTOCOLS`] or a number 1-255. Returns its name
    /// when it is a name.
    pub(super) fn protocol(&mut self, field: &str, v: Option<&Value>) -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if PROTOCOLS.contains(&s.as_str()) => Some(s.clone()),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|p| (1..=255).contains(&p)) => {
                Some(n.to_string())
            }
            Some(Value::String(s)) if s.parse::<u8>().is_ok_and(|p| p >= 1) => Some(s.clone()),
            Some(other) => {
                self.push(
                    field,
                    Problem::UnknownValue {
                        value: other
                            .as_str()
                            .map_or_else(|| other.to_string(), str::to_owned),
                        expected: format!("{} or a number 1-255", PROTOCOLS.join(", ")),
                    },
                );
                None
            }
        }
    }

    /// One policy rule at `field` (`spec.ingress[0]`).
    pub(super) fn rule(&mut self, field: &str, v: &Value) {
        let Some(r) = self.map(field, Some(v)) else {
            return;
        };
        match self.string(&format!("{field}.action"), r.get("action")) {
            None => self.push(format!("{field}.action"), Problem::Required),
            Some(a) => self.known(
                &format!("{field}.action"),
                a,
                ACTIONS.contains(&a),
                &ACTIONS,
            ),
        }
        let family = match r.get("ipVersion") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64() == Some(4) => Some(4),
            Some(Value::Number(n)) if n.as_u64() == Some(6) => Some(6),
            Some(other) => {
                self.push(
                    format!("{field}.ipVersion"),
                    Problem::Malformed {
                        value: shown(other),
                        expected: "4 or 6",
                    },
                );
                None
            }
        };
        let protocol = self.protocol(&format!("{field}.protocol"), r.get("protocol"));
        self.protocol(&format!("{field}.notProtocol"), r.get("notProtocol"));
        for icmp in ["icmp", "notICMP"] {
            self.icmp(field, icmp, r.get(icmp), protocol.as_deref(), family);
        }
        for side in ["source", "destination"] {
            let f = format!("{field}.{side}");
            let Some(e) = self.map(&f, r.get(side)) else {
                continue;
            };
            self.nets(&format!("{f}.nets"), e.get("nets"), family);
            self.nets(&format!("{f}.notNets"), e.get("notNets"), family);
            for s in ["selector", "notSelector", "namespaceSelector"] {
                self.selector_field(&format!("{f}.{s}"), e.get(s));
            }
            for ports in ["ports", "notPorts"] {
                let pf = format!("{f}.{ports}");
                if self.ports(&pf, e.get(ports), true)
                    && !protocol.as_deref().is_some_and(|p| {
                        PORT_PROTOCOLS.contains(&p) || p == "6" || p == "17" || p == "132"
                    })
                {
                    self.push(
                        pf,
                        Problem::Rule(
                            "ports need the rule's protocol to be TCP, UDP or SCTP".into(),
                        ),
                    );
                }
            }
            if let Some(sa) = self.map(&format!("{f}.serviceAccounts"), e.get("serviceAccounts")) {
                self.selector_field(&format!("{f}.serviceAccounts.selector"), sa.get("selector"));
                let names = format!("{f}.serviceAccounts.names");
                for (i, n) in self.list(&names, sa.get("names")).iter().enumerate() {
                    self.string(&format!("{names}[{i}]"), Some(n));
                }
            }
            if let Some(svc) = self.map(&format!("{f}.services"), e.get("services")) {
                if self
                    .string(&format!("{f}.services.name"), svc.get("name"))
                    .is_none()
                {
                    self.push(format!("{f}.services.name"), Problem::Required);
                }
                for other in [
                    "nets",
                    "notNets",
                    "selector",
                    "notSelector",
                    "ports",
                    "notPorts",
                ] {
                    if side == "destination" && e.get(other).is_some_and(|v| !v.is_null()) {
                        self.push(
                            format!("{f}.{other}"),
                            Problem::Rule(format!(
                                "cannot be combined with {side}.services (Calico refuses it)"
                            )),
                        );
                    }
                }
            }
        }
    }

    /// `icmp` / `notICMP`: type 0-254, code 0-255, a code only with a
    /// type, and only on an ICMP or ICMPv6 rule.
    fn icmp(
        &mut self,
        rule: &str,
        name: &str,
        v: Option<&Value>,
        protocol: Option<&str>,
        family: Option<u8>,
    ) {
        let f = format!("{rule}.{name}");
        let Some(m) = self.map(&f, v) else {
            return;
        };
        let number = |v: Option<&Value>| v.and_then(Value::as_u64);
        let ty = m.get("type").filter(|v| !v.is_null());
        let code = m.get("code").filter(|v| !v.is_null());
        if let Some(t) = ty {
            if number(Some(t)).is_none_or(|t| t > 254) {
                self.push(
                    format!("{f}.type"),
                    Problem::Malformed {
                        value: shown(t),
                        expected: "an ICMP type 0-254",
                    },
                );
            }
        }
        if let Some(c) = code {
            if number(Some(c)).is_none_or(|c| c > 255) {
                self.push(
                    format!("{f}.code"),
                    Problem::Malformed {
                        value: shown(c),
                        expected: "an ICMP code 0-255",
                    },
                );
            }
            if ty.is_none() {
                self.push(format!("{f}.code"), Problem::Rule("needs icmp type".into()));
            }
        }
        match protocol {
            Some("ICMP" | "1") if family != Some(6) => {}
            Some("ICMPv6" | "58") if family != Some(4) => {}
            _ => self.push(
                f,
                Problem::Rule(
                    "needs the rule's protocol to be ICMP (ipVersion 4) or ICMPv6 (ipVersion 6)"
                        .into(),
                ),
            ),
        }
    }

    /// `metadata.name` (and `metadata.namespace` for namespaced kinds).
    pub(super) fn names(&mut self, name: &str, namespace: Option<&str>) {
        if !is_name(name) {
            self.push(
                "metadata.name",
                Problem::Rule(format!(
                    "{name:?} is not a valid name: lower-case letters, digits, '-' and '.', \
                     starting and ending with a letter or digit, at most 253 characters"
                )),
            );
        }
        if let Some(ns) = namespace {
            if !is_label(ns) {
                self.push(
                    "metadata.namespace",
                    Problem::Rule(format!(
                        "{ns:?} is not a valid namespace: lower-case letters, digits and '-', \
                         at most 63 characters"
                    )),
                );
            }
        }
    }
}
