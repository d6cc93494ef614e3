//! The FelixConfiguration in effect for this node: the global one
//! (`default`) with this node's (`node.<name>`) over it, field by field.
//!
//! Calico's felix reads its settings from, highest first: environment
//! variables, its config file, the host-specific FelixConfiguration
//! (`node.<nodename>`), the global one (`default`); "the value of any
//! configuration parameter is the value read from the *first* location
//! containing a value" (Calico docs, reference/felix/configuration). This
//! module does the two datastore layers; the node agent puts its own
//! options (environment, command line) over the result.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::snapshot::Snapshot;
use crate::{Item, ItemKey};
use manul_datastore::resources::{GLOBAL_NAME, node_config_name};

/// A FelixConfiguration spec: field name (as in the resource, e.g.
/// `vxlanMTU`) to its JSON value.
pub type FelixSpec = Map<String, Value>;

/// `node` over `global`, field by field. A field that is `null` is unset
/// (Go's decoder leaves the pointer nil), so it does not hide the global
/// value.
pub fn merge(global: Option<&FelixSpec>, node: Option<&FelixSpec>) -> FelixSpec {
    let mut out = FelixSpec::new();
    for layer in [global, node].into_iter().flatten() {
        for (field, value) in layer {
            if !value.is_null() {
                out.insert(field.clone(), value.clone());
            }
        }
    }
    out
}

/// An MTU field (`vxlanMTU`, `vxlanMTUV6`): `None` when not set, else the
/// value or why it is refused (not an integer from 0 to 2³²−1; 0 is
/// felix's "compute it from the uplink").
pub fn mtu(spec: &FelixSpec, field: &str) -> Option<Result<u32, String>> {
    let v = spec.get(field)?;
    Some(
        v.as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| format!("{field}: {v} is not an MTU")),
    )
}

/// A duration field (`routeRefreshInterval`: Kubernetes' `metav1.Duration`,
/// written as Go's `time.Duration` string: `90s`, `1m30s`, `500ms`, `0`):
/// `None` when not set, else the value or why it is refused (negative, or
/// not a Go duration).
pub fn duration(spec: &FelixSpec, field: &str) -> Option<Result<Duration, String>> {
    let v = spec.get(field)?;
    Some(
        v.as_str()
            .and_then(go_duration)
            .ok_or_else(|| format!("{field}: {v} is not a duration (like 90s)")),
    )
}

/// Go's `time.ParseDuration` for non-negative values.
fn go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let (unit, seconds) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

impl Snapshot {
    /// The FelixConfiguration named `name`'s spec, if kept.
    pub fn felix_config(&self, name: &str) -> Option<&FelixSpec> {
        match self.get(&ItemKey::FelixConfig(name.to_owned())) {
            Some(Item::FelixConfig(r)) => Some(&r.spec),
            _ => None,
        }
    }

    /// The effective FelixConfiguration for node `me` ([`merge`]).
    pub fn effective_felix_config(&self, me: &str) -> FelixSpec {
        merge(
            self.felix_config(GLOBAL_NAME),
            self.felix_config(&node_config_name(me)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> FelixSpec {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn node_wins_field_by_field() {
        let global = spec(json!({"logSeverityScreen": "Debug", "vxlanMTU": 1400}));
        let node = spec(json!({"vxlanMTU": 1350, "bpfEnabled": true}));
        let m = merge(Some(&global), Some(&node));
        assert_eq!(
            Value::Object(m),
            json!({"logSeverityScreen": "Debug", "vxlanMTU": 1350, "bpfEnabled": true})
        );
    }

    #[test]
    fn either_layer_alone_and_none() {
        let global = spec(json!({"vxlanMTU": 1400}));
        assert_eq!(merge(Some(&global), None), global);
        assert_eq!(merge(None, Some(&global)), global);
        assert!(merge(None, None).is_empty());
    }

    #[test]
    fn mtus_parse_or_are_refused() {
        let s = spec(json!({"vxlanMTU": 1300, "vxlanMTUV6": "big", "ipipMTU": -1}));
        assert_eq!(mtu(&s, "vxlanMTU"), Some(Ok(1300)));
        assert_eq!(
            mtu(&s, "vxlanMTUV6"),
            Some(Err("vxlanMTUV6: \"big\" is not an MTU".into()))
        );
        assert!(matches!(mtu(&s, "ipipMTU"), Some(Err(_))));
        assert_eq!(mtu(&s, "wireguardMTU"), None);
    }

    #[test]
    fn durations_as_go_writes_them() {
        let d = |v: Value| {
            duration(
                &spec(json!({ "routeRefreshInterval": v })),
                "routeRefreshInterval",
            )
        };
        assert_eq!(d(json!("90s")), Some(Ok(Duration::from_secs(90))));
        assert_eq!(d(json!("1m30s")), Some(Ok(Duration::from_secs(90))));
        assert_eq!(d(json!("500ms")), Some(Ok(Duration::from_millis(500))));
        assert_eq!(d(json!("1.5h")), Some(Ok(Duration::from_secs(5400))));
        assert_eq!(d(json!("0")), Some(Ok(Duration::ZERO)));
        for bad in [json!("-1s"), json!("90"), json!("s"), json!(90), json!("")] {
            assert!(matches!(d(bad.clone()), Some(Err(_))), "{bad}");
        }
        assert_eq!(duration(&FelixSpec::new(), "routeRefreshInterval"), None);
    }

    #[test]
    fn null_in_node_does_not_hide_global() {
        let global = spec(json!({"vxlanMTU": 1400}));
        let node = spec(json!({"vxlanMTU": null}));
        assert_eq!(merge(Some(&global), Some(&node)), global);
    }

    #[test]
    fn snapshot_merges_default_and_own_node_only() {
        let raw = |name: &str, v: Value| {
            let bytes = serde_json::to_vec(&json!({
                "kind": "FelixConfiguration",
                "apiVersion": "projectcalico.org/v3",
                "metadata": {"name": name},
                "spec": v,
            }))
            .unwrap();
            Item::FelixConfig(Arc::new(
                manul_datastore::resources::decode_raw(
                    manul_datastore::ResourceKind::FelixConfiguration,
                    &bytes,
                )
                .unwrap(),
            ))
        };
        let mut snap = Snapshot::new();
        snap.set(
            ItemKey::FelixConfig("default".into()),
            Some(raw(
                "default",
                json!({"vxlanMTU": 1400, "ipv6Support": false}),
            )),
        );
        snap.set(
            ItemKey::FelixConfig("node.a".into()),
            Some(raw("node.a", json!({"vxlanMTU": 1300}))),
        );
        assert_eq!(
            Value::Object(snap.effective_felix_config("a")),
            json!({"vxlanMTU": 1300, "ipv6Support": false})
        );
        assert_eq!(
            Value::Object(snap.effective_felix_config("b")),
            json!({"vxlanMTU": 1400, "ipv6Support": false})
        );
    }
}
