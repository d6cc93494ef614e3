//! BGPFilter rules. Calico's (libcalico-go `validateBGPFilterRule` and the
//! API type's field tags): `cidr` a masked network of the list's family
//! and `matchOperator` go together, `prefixLength` needs `cidr`, its
//! `min`/`max` within the family's lengths, `interface` a name or glob of
//! at most 15 characters, `action` `Accept` or `Reject`. Two more are
//! manul's, because what Calico would do with them is not a filter: a
//! `prefixLength` whose range is empty once bounded by the CIDR (`min`
//! above `max`: BIRD refuses the whole configuration Calico renders, so
//! no filter changes at all), and fields manul does not implement
//! (`communities`, `asPathPrefix`, `priority`, `operations` of newer
//! Calico), which would otherwise be dropped silently.

use ipnet::IpNet;

use super::{Problem, Report, ValidationErrors};
use crate::resources::{BgpFilter, BgpFilterRule, FilterAction, MatchOperator};

/// Checks a BGPFilter's four rule lists.
pub fn validate_bgp_filter(f: &BgpFilter) -> Result<(), ValidationErrors> {
    let mut r = Report::new("BGPFilter", f.name());
    let s = &f.spec;
    for (list, rules, v6) in [
        ("exportV4", &s.export_v4, false),
        ("importV4", &s.import_v4, false),
        ("exportV6", &s.export_v6, true),
        ("importV6", &s.import_v6, true),
    ] {
        for (i, rule) in rules.iter().enumerate() {
            check_rule(&mut r, &format!("spec.{list}[{i}]"), rule, v6);
        }
    }
    r.finish()
}

fn check_rule(r: &mut Report, at: &str, rule: &BgpFilterRule, v6: bool) {
    let max_len: i32 = if v6 { 128 } else { 32 };
    r.known(
        &format!("{at}.action"),
        rule.action.as_str(),
        rule.action.is_known(),
        FilterAction::KNOWN,
    );
    if let Some(op) = &rule.match_operator {
        r.known(
            &format!("{at}.matchOperator"),
            op.as_str(),
            op.is_known(),
            MatchOperator::KNOWN,
        );
    }
    let mut net_len = None;
    if !rule.cidr.is_empty() {
        let family = if v6 { "an IPv6 CIDR" } else { "an IPv4 CIDR" };
        match rule.cidr.parse::<IpNet>() {
            Ok(n) if matches!(n, IpNet::V6(_)) != v6 => r.push(
                format!("{at}.cidr"),
                Problem::Malformed {
                    value: rule.cidr.clone(),
                    expected: family,
                },
            ),
            Ok(n) if n.trunc() != n => r.push(
                format!("{at}.cidr"),
                Problem::NotMasked {
                    cidr: rule.cidr.clone(),
                    masked: n.trunc().to_string(),
                },
            ),
            Ok(n) => net_len = Some(i32::from(n.prefix_len())),
            Err(_) => r.push(
                format!("{at}.cidr"),
                Problem::Malformed {
                    value: rule.cidr.clone(),
                    expected: family,
                },
            ),
        }
        if rule.match_operator.is_none() {
            r.push(format!("{at}.matchOperator"), Problem::Required);
        }
    } else {
        if rule.match_operator.is_some() {
            r.push(format!("{at}.cidr"), Problem::Required);
        }
        if rule.prefix_length.is_some() {
            r.push(format!("{at}.cidr"), Problem::Required);
        }
    }
    if let Some(pl) = &rule.prefix_length {
        for (name, v) in [("min", pl.min), ("max", pl.max)] {
            if let Some(v) = v
                && !(0..=max_len).contains(&v)
            {
                r.push(
                    format!("{at}.prefixLength.{name}"),
                    Problem::Malformed {
                        value: v.to_string(),
                        expected: if v6 {
                            "a length from 0 to 128"
                        } else {
                            "a length from 0 to 32"
                        },
                    },
                );
            }
        }
        if let Some(len) = net_len {
            // As Calico renders it: min raised to the CIDR's length.
            let lo = pl.min.unwrap_or(len).max(len);
            let hi = pl.max.unwrap_or(max_len).min(max_len);
            if lo > hi {
                r.push(
                    format!("{at}.prefixLength"),
                    Problem::Unsupported(format!(
                        "no prefix of {} has a length from {lo} to {hi} (BIRD would refuse the whole configuration Calico renders from it)",
                        rule.cidr
                    )),
                );
            }
        }
    }
    if !rule.interface.is_empty() && !interface_ok(&rule.interface) {
        r.push(
            format!("{at}.interface"),
            Problem::Malformed {
                value: rule.interface.clone(),
                expected: "an interface name or glob of 1 to 15 of a-z A-Z 0-9 _ . * -",
            },
        );
    }
    for key in rule.extra.keys() {
        r.push(
            format!("{at}.{key}"),
            Problem::Unsupported(
                "manul does not implement this BGPFilter field (cidr, matchOperator, prefixLength, source, interface, peerType and action are)".into(),
            ),
        );
    }
    if let Some(pl) = &rule.prefix_length {
        for key in pl.extra.keys() {
            r.push(
                format!("{at}.prefixLength.{key}"),
                Problem::Unsupported("not a prefixLength field (min and max are)".into()),
            );
        }
    }
    if let Some(src) = &rule.source
        && !src.is_known()
    {
        r.push(
            format!("{at}.source"),
            Problem::UnknownValue {
                value: src.as_str().to_owned(),
                expected: "RemotePeers".into(),
            },
        );
    }
    if let Some(pt) = &rule.peer_type
        && !pt.is_known()
    {
        r.push(
            format!("{at}.peerType"),
            Problem::UnknownValue {
                value: pt.as_str().to_owned(),
                expected: "eBGP, iBGP".into(),
            },
        );
    }
}

/// Calico's `bgpFilterInterfaceRegex`: `^[a-zA-Z0-9_.*-]{1,15}$`.
fn interface_ok(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.*-".contains(&b))
}
