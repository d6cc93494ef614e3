//! NetworkPolicy, GlobalNetworkPolicy and Profile, as Calico validates them
//! (libcalico-go `validator.go`: `validateNetworkPolicySpec`,
//! `validateGlobalNetworkPolicySpec`, `validateProfileSpec`): order a
//! number, selectors that parse, `types` of Ingress/Egress covering the
//! rules given, each rule checked by [`super::rule`], and the GlobalNetworkPolicy
//! exclusions (`doNotTrack`/`preDNAT` need `applyOnForward`, not both,
//! `preDNAT` has no egress).

use serde_json::{Map, Value};

use super::rule::shown;
use super::{Problem, Report};

const TYPES: [&str; 2] = ["Ingress", "Egress"];

/// The rules of a policy or profile: `spec.ingress`, `spec.egress`.
/// Returns whether each list is non-empty.
fn rules(r: &mut Report, spec: &Map<String, Value>) -> (bool, bool) {
    let mut present = [false, false];
    for (i, dir) in ["ingress", "egress"].into_iter().enumerate() {
        let field = format!("spec.{dir}");
        let list = r.list(&field, spec.get(dir));
        present[i] = !list.is_empty();
        for (j, rule) in list.iter().enumerate() {
            r.rule(&format!("{field}[{j}]"), rule);
        }
    }
    (present[0], present[1])
}

/// What both policy kinds check.
fn policy_common(r: &mut Report, spec: &Map<String, Value>) -> Vec<String> {
    match spec.get("order") {
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(other) => r.push(
            "spec.order",
            Problem::Malformed {
                value: shown(other),
                expected: "a number",
            },
        ),
    }
    r.selector_field("spec.selector", spec.get("selector"));
    r.selector_field(
        "spec.serviceAccountSelector",
        spec.get("serviceAccountSelector"),
    );
    let (ingress, egress) = rules(r, spec);
    let mut types = Vec::new();
    let present = spec.get("types").is_some_and(|v| !v.is_null());
    for (i, t) in r.list("spec.types", spec.get("types")).iter().enumerate() {
        let f = format!("spec.types[{i}]");
        let Some(t) = r.string(&f, Some(t)) else {
            continue;
        };
        r.known(&f, t, TYPES.contains(&t), &TYPES);
        if types.iter().any(|seen| seen == t) {
            r.push(f, Problem::Rule(format!("{t} is listed twice")));
        } else {
            types.push(t.to_owned());
        }
    }
    if present {
        for (has, ty, dir) in [
            (ingress, "Ingress", "ingress"),
            (egress, "Egress", "egress"),
        ] {
            if has && !types.iter().any(|t| t == ty) {
                r.push(
                    format!("spec.{dir}"),
                    Problem::Rule(format!(
                        "{dir} rules are given but spec.types does not include {ty}"
                    )),
                );
            }
        }
    }
    types
}

/// A NetworkPolicy's spec.
pub(super) fn network_policy(r: &mut Report, spec: &Map<String, Value>) {
    policy_common(r, spec);
}

/// A GlobalNetworkPolicy's spec.
pub(super) fn global_network_policy(r: &mut Report, spec: &Map<String, Value>) {
    let types = policy_common(r, spec);
    r.selector_field("spec.namespaceSelector", spec.get("namespaceSelector"));
    let forward = r.boolean("spec.applyOnForward", spec.get("applyOnForward"));
    let untracked = r.boolean("spec.doNotTrack", spec.get("doNotTrack"));
    let pre_dnat = r.boolean("spec.preDNAT", spec.get("preDNAT"));
    if untracked && pre_dnat {
        r.push(
            "spec.preDNAT",
            Problem::Exclusive {
                other: "spec.doNotTrack",
            },
        );
    }
    if (untracked || pre_dnat) && !forward {
        r.push(
            "spec.applyOnForward",
            Problem::Rule("must be true when doNotTrack or preDNAT is true".into()),
        );
    }
    if pre_dnat {
        let egress = !r.list("spec.egress", spec.get("egress")).is_empty();
        if egress || types.iter().any(|t| t == "Egress") {
            r.push(
                "spec.egress",
                Problem::Rule("a preDNAT policy cannot have egress rules or type Egress".into()),
            );
        }
    }
}

/// A Profile's spec: rules, and `labelsToApply` of strings.
pub(super) fn profile(r: &mut Report, spec: &Map<String, Value>) {
    rules(r, spec);
    if let Some(labels) = r.map("spec.labelsToApply", spec.get("labelsToApply")) {
        for (k, v) in labels {
            r.string(&format!("spec.labelsToApply.{k}"), Some(v));
        }
    }
}
