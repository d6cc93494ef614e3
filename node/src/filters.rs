//! A peer's BGPFilters, compiled to the speaker's rules the way Calico's
//! confd renders them into BIRD (confd `resource/template/template_funcs.go`
//! `BGPFilterBIRDFuncs`, `backends/calico/bird_bgp_config.go`
//! `buildImportFilter` / `buildExportFilter`):
//!
//! - each BGPFilter the peer names, in the order of its `filters`, gives
//!   its rules of the family, in order; the first rule that matches
//!   decides (BIRD's `accept` / `reject` end the filter). A filter that
//!   does not exist gives nothing (Calico skips it), and is noted;
//! - on **import** what no rule decides is accepted (`accept;` after the
//!   filters: Calico's import was `import all` before BGPFilter); on
//!   **export** it falls through to Calico's default (the speaker's
//!   export mode: what this node originates, and what it reflects);
//! - a rule's conditions all hold for it to match: `cidr` with
//!   `matchOperator` `Equal` (`net = cidr`), `NotEqual` (`!=`), `In`
//!   (`net ~ cidr`: the CIDR or inside it), `NotIn` (`!~`); with
//!   `prefixLength` the CIDR becomes BIRD's prefix set `[cidr{min,max}]`,
//!   `min` raised to the CIDR's length and `max` lowered to the family's
//!   (`In`/`NotIn`: inside the CIDR with a length in the range; BIRD's
//!   `=` / `!=` against a set compare unequal, so `Equal` never matches
//!   and `NotEqual` always does — tried on BIRD 2.0.12, noted);
//!   `source: RemotePeers` (`source ~ [RTS_BGP]`: learned from a BGP
//!   peer; on import, every route); `peerType` (the newest Calico's
//!   `is_same_as` guard: iBGP when the peer's AS is ours);
//! - `interface` (`ifname ~ "…"`) matches routes of interfaces, which
//!   manul neither learns nor exports (it exports only its blocks and
//!   what it reflects): the rule never matches, and that is noted.
//!
//! What Calico would not render — a CIDR of the wrong family or with host
//! bits, an unknown operator or action, a CIDR without an operator, an
//! empty prefix-length range — or what manul does not implement (newer
//! fields kept verbatim in the rule: `communities`, `asPathPrefix`,
//! `priority`, `operations`) makes the rule inert (it never matches) and
//! is noted: `manulctl apply` refuses all of these, but a filter written
//! by another client still reaches the node.

use manul_bgp::policy::{Condition, PrefixMatch, Rule};
use manul_bgp::rib::PeerKind;
use manul_bgp::types::Family;
use manul_confd::bgp::view::FilterRef;
use manul_datastore::resources::{
    BgpFilterRule, FilterAction, FilterMatchSource, FilterPeerType, MatchOperator,
};

/// A peer's filters as the speaker's rules, and what to tell about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// Tried before the import mode's default (accept).
    pub import: Vec<Rule>,
    /// Tried before the export mode's rules (Calico's default export).
    pub export: Vec<Rule>,
    /// Rules that cannot do what they say, filters that do not exist.
    pub notes: Vec<String>,
}

/// Compile `filters`, in order.
pub fn compile(filters: &[FilterRef]) -> Compiled {
    let mut out = Compiled::default();
    for f in filters {
        let Some(spec) = &f.spec else {
            out.notes.push(format!(
                "BGPFilter {} does not exist: it filters nothing (as in Calico) until it is created",
                f.name
            ));
            continue;
        };
        for (list, rules, family, import) in [
            ("importV4", &spec.import_v4, Family::Ipv4Unicast, true),
            ("importV6", &spec.import_v6, Family::Ipv6Unicast, true),
            ("exportV4", &spec.export_v4, Family::Ipv4Unicast, false),
            ("exportV6", &spec.export_v6, Family::Ipv6Unicast, false),
        ] {
            for (i, r) in rules.iter().enumerate() {
                let mut notes = Vec::new();
                let rule = compile_rule(r, family, &mut notes);
                out.notes.extend(
                    notes
                        .into_iter()
                        .map(|n| format!("BGPFilter {} {list}[{i}]: {n}", f.name)),
                );
                if import {
                    out.import.push(rule);
                } else {
                    out.export.push(rule);
                }
            }
        }
    }
    out
}

/// Only what to tell about `filters` (for status).
pub fn notes(filters: &[FilterRef]) -> Vec<String> {
    compile(filters).notes
}

fn compile_rule(r: &BgpFilterRule, family: Family, notes: &mut Vec<String>) -> Rule {
    let mut c = vec![Condition::Family(family)];
    let mut inert = |c: &mut Vec<Condition>, why: String| {
        notes.push(format!("{why}; the rule never matches"));
        c.push(Condition::Never);
    };
    if !r.cidr.is_empty() {
        match prefix_condition(r, family) {
            Ok(Some(cond)) => c.push(cond),
            Ok(None) => {}
            Err(why) => inert(&mut c, why),
        }
    }
    match &r.source {
        None => {}
        Some(FilterMatchSource::RemotePeers) => c.push(Condition::Learned),
        Some(other) => inert(
            &mut c,
            format!("source {other:?} is not one Calico renders (RemotePeers)"),
        ),
    }
    if !r.interface.is_empty() {
        inert(
            &mut c,
            format!(
                "interface {:?} matches routes of interfaces, and manul learns and exports none (only its blocks and what it reflects)",
                r.interface
            ),
        );
    }
    match &r.peer_type {
        None => {}
        Some(FilterPeerType::Ibgp) => c.push(Condition::PeerKind(PeerKind::Ibgp)),
        Some(FilterPeerType::Ebgp) => c.push(Condition::PeerKind(PeerKind::Ebgp)),
        Some(other) => inert(&mut c, format!("peerType {other:?} is not eBGP or iBGP")),
    }
    if !r.extra.is_empty() {
        let fields: Vec<&str> = r.extra.keys().map(String::as_str).collect();
        inert(
            &mut c,
            format!("manul does not implement {}", fields.join(", ")),
        );
    }
    match &r.action {
        FilterAction::Accept => Rule::accept(c),
        FilterAction::Reject => Rule::reject(c),
        FilterAction::Other(a) => {
            inert(
                &mut c,
                format!("action {a:?} is not Accept or Reject (Calico refuses to render it)"),
            );
            Rule::reject(c)
        }
    }
}

/// The condition of `cidr` + `matchOperator` (+ `prefixLength`): `None`
/// when it always holds.
fn prefix_condition(r: &BgpFilterRule, family: Family) -> Result<Option<Condition>, String> {
    let net: ipnet::IpNet = r
        .cidr
        .parse()
        .map_err(|_| format!("cidr {:?} is not a CIDR", r.cidr))?;
    if Family::of(&net) != family {
        return Err(format!("cidr {net} is not of this list's family"));
    }
    if net.trunc() != net {
        return Err(format!("cidr {net} has host bits set (BIRD refuses it)"));
    }
    let op = r.match_operator.as_ref().ok_or_else(|| {
        "a cidr without a matchOperator (Calico refuses to render it)".to_string()
    })?;
    let Some(pl) = &r.prefix_length else {
        return Ok(Some(match op {
            MatchOperator::Equal => Condition::Prefix(PrefixMatch::exact(net)),
            MatchOperator::NotEqual => Condition::NotPrefix(PrefixMatch::exact(net)),
            MatchOperator::In => Condition::Prefix(PrefixMatch::orlonger(net)),
            MatchOperator::NotIn => Condition::NotPrefix(PrefixMatch::orlonger(net)),
            MatchOperator::Other(o) => return Err(format!("matchOperator {o:?} is unknown")),
        }));
    };
    // Calico's filterMatchPrefixLength.
    let len = i32::from(net.prefix_len());
    let max = i32::from(net.max_prefix_len());
    let lo = pl.min.map_or(len, |m| m.max(len));
    let hi = pl.max.map_or(max, |m| m.min(max));
    if lo > hi || lo < 0 {
        return Err(format!(
            "prefixLength {lo}..{hi} of {net} is empty (BIRD refuses the configuration Calico renders)"
        ));
    }
    let set = PrefixMatch {
        net,
        ge: u8::try_from(lo).ok(),
        le: u8::try_from(hi).ok(),
    };
    Ok(match op {
        MatchOperator::In => Some(Condition::Prefix(set)),
        MatchOperator::NotIn => Some(Condition::NotPrefix(set)),
        // BIRD: `net = [set]` is false and `net != [set]` true for every net.
        MatchOperator::Equal => Some(Condition::Never),
        MatchOperator::NotEqual => None,
        MatchOperator::Other(o) => return Err(format!("matchOperator {o:?} is unknown")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_bgp::policy::{Policy, PolicyContext, Verdict};
    use manul_bgp::rib::RouteSource;
    use manul_bgp::wire::PathAttributes;
    use manul_datastore::resources::BgpFilterSpec;

    fn spec(json: serde_json::Value) -> BgpFilterSpec {
        serde_json::from_value(json).unwrap()
    }

    fn filter(name: &str, json: serde_json::Value) -> FilterRef {
        FilterRef {
            name: name.into(),
            spec: Some(spec(json)),
        }
    }

    /// The import verdict on `prefix` (from an eBGP peer): rules, then accept.
    fn import(c: &Compiled, prefix: &str) -> Verdict {
        let p = Policy::new(c.import.clone(), Verdict::Accept);
        let ctx = PolicyContext {
            local_as: 64512,
            peer_kind: PeerKind::Ebgp,
            source: RouteSource::Ebgp,
            reflected: false,
        };
        p.decide(&prefix.parse().unwrap(), &PathAttributes::default(), &ctx)
            .unwrap()
    }

    /// The export verdict of the rules alone (`None`: no rule decides, the
    /// export mode does), for a route of `source`.
    fn export(c: &Compiled, prefix: &str, source: RouteSource) -> Option<Verdict> {
        let ctx = PolicyContext {
            local_as: 64512,
            peer_kind: PeerKind::Ebgp,
            source,
            reflected: false,
        };
        let attrs = PathAttributes::default();
        let prefix = prefix.parse().unwrap();
        c.export
            .iter()
            .find(|r| {
                r.conditions
                    .iter()
                    .all(|x| x.matches(&prefix, &attrs, &ctx))
            })
            .and_then(Rule::verdict)
    }

    #[test]
    fn operators_and_prefix_lengths_as_calico_renders_them() {
        let c = compile(&[filter(
            "f",
            serde_json::json!({"importV4": [
                {"action": "Reject", "matchOperator": "Equal", "cidr": "0.0.0.0/0"},
                {"action": "Reject", "matchOperator": "In", "cidr": "10.0.0.0/8",
                 "prefixLength": {"min": 25}},
                {"action": "Accept", "matchOperator": "In", "cidr": "10.0.0.0/8"},
                {"action": "Reject", "matchOperator": "NotIn", "cidr": "192.168.0.0/16"},
                {"action": "Accept", "matchOperator": "NotEqual", "cidr": "192.168.1.0/24"},
            ]}),
        )]);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        assert_eq!(import(&c, "0.0.0.0/0"), Verdict::Reject);
        assert_eq!(import(&c, "10.1.2.0/25"), Verdict::Reject);
        assert_eq!(import(&c, "10.1.2.0/24"), Verdict::Accept);
        assert_eq!(import(&c, "11.0.0.0/8"), Verdict::Reject);
        assert_eq!(import(&c, "192.168.2.0/24"), Verdict::Accept);
        // 192.168.1.0/24 passes every rule: the import default accepts.
        assert_eq!(import(&c, "192.168.1.0/24"), Verdict::Accept);
        // IPv6 routes meet none of the IPv4 rules.
        assert_eq!(import(&c, "2001:db8::/32"), Verdict::Accept);
    }

    #[test]
    fn a_prefix_length_clamps_to_the_cidr_and_equal_against_a_set_never_matches() {
        let c = compile(&[filter(
            "f",
            serde_json::json!({"importV6": [
                {"action": "Reject", "matchOperator": "Equal", "cidr": "2001:db8::/32",
                 "prefixLength": {"max": 48}},
                {"action": "Reject", "matchOperator": "In", "cidr": "2001:db8::/32",
                 "prefixLength": {"min": 8, "max": 200}},
                {"action": "Accept", "matchOperator": "NotEqual", "cidr": "2001:db8::/32",
                 "prefixLength": {"min": 33}},
            ]}),
        )]);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        // Rule 0 never matches; rule 1 is 2001:db8::/32{32,128}.
        assert_eq!(import(&c, "2001:db8::/32"), Verdict::Reject);
        assert_eq!(import(&c, "2001:db8:1::/128"), Verdict::Reject);
        // Rule 2 (NotEqual against a set) matches everything else.
        assert_eq!(import(&c, "2001:db9::/32"), Verdict::Accept);
    }

    #[test]
    fn filters_in_order_missing_ones_skipped_and_export_falls_through() {
        let a = filter(
            "a",
            serde_json::json!({"exportV4": [
                {"action": "Accept", "matchOperator": "In", "cidr": "198.51.100.0/24", "source": "RemotePeers"},
            ]}),
        );
        let b = filter(
            "b",
            serde_json::json!({"exportV4": [
                {"action": "Reject", "matchOperator": "In", "cidr": "198.51.0.0/16"},
                {"action": "Reject", "matchOperator": "In", "cidr": "10.65.1.0/26"},
            ]}),
        );
        let missing = FilterRef {
            name: "later".into(),
            spec: None,
        };
        let c = compile(&[missing, a, b]);
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("BGPFilter later does not exist"));
        assert!(c.import.is_empty());
        // A learned route in 198.51.100.0/24: filter a accepts it first.
        assert_eq!(
            export(&c, "198.51.100.0/24", RouteSource::Ebgp),
            Some(Verdict::Accept)
        );
        // The same prefix originated here is not from a remote peer: b rejects.
        assert_eq!(
            export(&c, "198.51.100.0/24", RouteSource::Local),
            Some(Verdict::Reject)
        );
        assert_eq!(
            export(&c, "10.65.1.0/26", RouteSource::Local),
            Some(Verdict::Reject)
        );
        // No rule decides: the export mode (Calico's default) does.
        assert_eq!(export(&c, "10.65.0.0/26", RouteSource::Local), None);
    }

    #[test]
    fn interface_rules_and_unimplemented_fields_never_match_and_are_noted() {
        let c = compile(&[filter(
            "f",
            serde_json::json!({
                "exportV4": [{"action": "Reject", "interface": "*.calico"}],
                "importV4": [
                    {"action": "Reject", "communities": {"values": ["65000:1"]}},
                    {"action": "Reject", "matchOperator": "In", "cidr": "10.0.0.1/8"},
                    {"action": "reject", "matchOperator": "In", "cidr": "10.0.0.0/8"},
                    {"action": "Reject", "peerType": "iBGP"},
                ]
            }),
        )]);
        assert_eq!(c.notes.len(), 4, "{:#?}", c.notes);
        assert!(c.notes[0].contains("importV4[0]") && c.notes[0].contains("communities"));
        assert!(c.notes[1].contains("host bits"));
        assert!(c.notes[2].contains("\"reject\""));
        assert!(c.notes[3].contains("exportV4[0]") && c.notes[3].contains("interface"));
        // Every inert rule passes: only peerType iBGP would reject (not this eBGP session).
        assert_eq!(import(&c, "10.0.0.0/8"), Verdict::Accept);
        assert_eq!(export(&c, "10.65.0.0/26", RouteSource::Local), None);
    }
}
