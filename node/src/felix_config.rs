//! FelixConfiguration, read live: confd's effective spec for this node
//! (`node.<name>` over `default`, [`manul_confd::felix_config`]) mapped to
//! what the agent does with each field.
//!
//! As in Calico, the agent's own settings win over the datastore's
//! (felix: environment > config file > `node.<name>` > `default`): a field
//! whose setting the agent was given (its environment variable) is
//! reported as overridden and left alone. Every other field set is
//! reported as not supported — once in the log when the set changes, and
//! always on `/status` — never dropped silently.
//!
//! Honoured today: `logSeverityScreen` (the agent's log level, through the
//! tracing reload handle; `RUST_LOG` wins); `vxlanMTU` and `vxlanMTUV6`
//! (felix reads them from the same snapshot, `manul_felix::mtu`; the
//! VXLAN devices and the pod MTU follow; `FELIX_VXLANMTU[V6]` wins);
//! `routeRefreshInterval` (the route reconciler's full resync period; 0:
//! none; manul has no environment variable for it).

use manul_confd::felix_config::FelixSpec;
use manul_status::FelixConfigurationStatus;
use serde_json::Value;
use std::time::Duration;

/// The field that sets the agent's log level.
pub const LOG_SEVERITY_SCREEN: &str = "logSeverityScreen";

/// What the agent does with an effective FelixConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The tracing filter `logSeverityScreen` asks for, if it is applied.
    pub log_filter: Option<String>,
    /// The route resync period `routeRefreshInterval` asks for (zero:
    /// none), if it is applied.
    pub route_refresh: Option<Duration>,
    /// The fields, sorted into what is applied and what is not.
    pub status: FelixConfigurationStatus,
}

/// What the agent's own settings fix (they win over FelixConfiguration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `RUST_LOG` is set (not empty): it sets the log level, not
    /// `logSeverityScreen`.
    pub log: bool,
    /// `FELIX_VXLANMTU` / `--vxlan-mtu` is set (non-zero).
    pub vxlan_mtu: bool,
    /// `FELIX_VXLANMTUV6` / `--vxlan-mtu-v6` is set (non-zero).
    pub vxlan_mtu_v6: bool,
}

/// Calico's log level (`Trace`, `Debug`, `Info`, `Warning`, `Error`,
/// `Fatal`, `None`; felix parses it case-insensitively) as a tracing
/// level directive. `Fatal` is `error` (tracing has no fatal level).
fn tracing_level(calico: &str) -> Option<&'static str> {
    Some(match calico.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "fatal" => "error",
        "none" => "off",
        _ => return None,
    })
}

/// The tracing filter for a level: the agent's crates at `level`, the
/// libraries it uses (HTTP/2, gRPC to etcd) no chattier than `info`, as
/// felix's `logSeverityScreen` sets felix's own logging.
fn log_filter(level: &str) -> String {
    let libs = match level {
        "trace" | "debug" => "info",
        other => other,
    };
    format!("{level},h2={libs},tonic={libs},tower={libs},hyper={libs},etcd_client={libs}")
}

/// Sort `spec`'s fields into what the agent applies and what it does not.
pub fn plan(spec: &FelixSpec, overrides: Overrides) -> Plan {
    let mut out = Plan::default();
    for (field, value) in spec {
        match field.as_str() {
            LOG_SEVERITY_SCREEN if overrides.log => out.status.overridden.push(field.clone()),
            LOG_SEVERITY_SCREEN => match value.as_str().and_then(tracing_level) {
                Some(level) => {
                    out.log_filter = Some(log_filter(level));
                    out.status.applied.push(field.clone());
                }
                None => out
                    .status
                    .invalid
                    .push(format!("{field}: {} is not a log level", shown(value))),
            },
            "vxlanMTU" | "vxlanMTUV6" => {
                let env = if field == "vxlanMTU" {
                    overrides.vxlan_mtu
                } else {
                    overrides.vxlan_mtu_v6
                };
                match manul_confd::felix_config::mtu(spec, field) {
                    _ if env => out.status.overridden.push(field.clone()),
                    Some(Err(why)) => out.status.invalid.push(why),
                    // felix reads it from confd's snapshot (MtuInputs).
                    _ => out.status.applied.push(field.clone()),
                }
            }
            "routeRefreshInterval" => match manul_confd::felix_config::duration(spec, field) {
                Some(Ok(d)) => {
                    out.route_refresh = Some(d);
                    out.status.applied.push(field.clone());
                }
                Some(Err(why)) => out.status.invalid.push(why),
                None => {}
            },
            _ => out.status.not_supported.push(field.clone()),
        }
    }
    out
}

fn shown(v: &Value) -> String {
    v.to_string()
}

/// Changes the agent's log filter (the tracing reload handle).
pub type SetLogFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Follow confd: on each change of the effective FelixConfiguration, apply
/// the plan (the log filter; back to `default_filter` when
/// `logSeverityScreen` goes) and publish its status; log the field lists
/// once per change.
pub fn spawn(
    me: String,
    mut sub: manul_confd::Subscription,
    overrides: Overrides,
    default_filter: String,
    set_log: SetLogFilter,
    felix: std::sync::Arc<manul_felix::Felix>,
    status: tokio::sync::watch::Sender<FelixConfigurationStatus>,
) -> tokio::task::JoinHandle<()> {
    let default_refresh = manul_felix::ReconcilerConfig::default().resync_interval;
    tokio::spawn(async move {
        let mut last: Option<Plan> = None;
        loop {
            while sub.try_recv().is_some() {}
            let p = plan(&sub.snapshot().effective_felix_config(&me), overrides);
            if last.as_ref() != Some(&p) {
                // With `RUST_LOG` set the filter is the environment's, never
                // replaced (not even by the default at the first pass).
                if !overrides.log && last.as_ref().map(|l| &l.log_filter) != Some(&p.log_filter) {
                    let filter = p.log_filter.as_deref().unwrap_or(&default_filter);
                    if let Err(error) = set_log(filter) {
                        tracing::warn!(%error, filter, "could not change the log filter");
                    }
                }
                if last.as_ref().map(|l| l.route_refresh) != Some(p.route_refresh) {
                    felix.set_route_refresh_interval(p.route_refresh.unwrap_or(default_refresh));
                }
                let s = &p.status;
                if s.applied.is_empty()
                    && s.overridden.is_empty()
                    && s.not_supported.is_empty()
                    && s.invalid.is_empty()
                {
                    tracing::info!("FelixConfiguration: no field set for this node");
                } else {
                    tracing::info!(
                        applied = ?s.applied,
                        overridden_by_environment = ?s.overridden,
                        not_supported = ?s.not_supported,
                        invalid = ?s.invalid,
                        "FelixConfiguration for this node (node.<name> over default)"
                    );
                }
                status.send_replace(p.status.clone());
                last = Some(p);
            }
            if sub.recv().await.is_none() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> FelixSpec {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn log_severity_is_applied_and_other_fields_reported() {
        let p = plan(
            &spec(json!({"logSeverityScreen": "Debug", "chainInsertMode": "Append"})),
            Overrides::default(),
        );
        assert_eq!(p.status.applied, ["logSeverityScreen"]);
        assert_eq!(p.status.not_supported, ["chainInsertMode"]);
        assert!(p.status.overridden.is_empty());
        assert!(p.log_filter.unwrap().starts_with("debug,h2=info"));
    }

    #[test]
    fn calico_levels_map_to_tracing() {
        for (calico, level) in [
            ("Trace", "trace"),
            ("Debug", "debug"),
            ("Info", "info"),
            ("Warning", "warn"),
            ("Error", "error"),
            ("Fatal", "error"),
            ("None", "off"),
            ("debug", "debug"),
        ] {
            assert_eq!(tracing_level(calico), Some(level), "{calico}");
        }
        assert_eq!(tracing_level("Loud"), None);
        assert_eq!(
            log_filter("warn"),
            "warn,h2=warn,tonic=warn,tower=warn,hyper=warn,etcd_client=warn"
        );
    }

    #[test]
    fn vxlan_mtus_applied_refused_or_overridden() {
        let s = spec(json!({"vxlanMTU": 1300, "vxlanMTUV6": "big"}));
        let p = plan(&s, Overrides::default());
        assert_eq!(p.status.applied, ["vxlanMTU"]);
        assert_eq!(p.status.invalid, ["vxlanMTUV6: \"big\" is not an MTU"]);
        let p = plan(
            &s,
            Overrides {
                vxlan_mtu: true,
                vxlan_mtu_v6: true,
                ..Default::default()
            },
        );
        assert_eq!(p.status.overridden, ["vxlanMTU", "vxlanMTUV6"]);
        assert!(p.status.applied.is_empty() && p.status.invalid.is_empty());
    }

    #[test]
    fn every_honoured_field_is_applied_and_no_other() {
        let mut all = FelixSpec::new();
        for f in manul_status::HONOURED_FIELDS {
            let v = match *f {
                LOG_SEVERITY_SCREEN => json!("Info"),
                "routeRefreshInterval" => json!("90s"),
                _ => json!(1400),
            };
            all.insert(f.to_string(), v);
        }
        let p = plan(&all, Overrides::default());
        let mut applied = p.status.applied.clone();
        applied.sort();
        let mut honoured: Vec<String> = manul_status::HONOURED_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect();
        honoured.sort();
        assert_eq!(applied, honoured);
        assert!(p.status.not_supported.is_empty() && p.status.invalid.is_empty());
    }

    #[test]
    fn route_refresh_interval_applied_or_refused() {
        let p = plan(
            &spec(json!({"routeRefreshInterval": "30s"})),
            Overrides::default(),
        );
        assert_eq!(p.route_refresh, Some(Duration::from_secs(30)));
        assert_eq!(p.status.applied, ["routeRefreshInterval"]);
        let p = plan(
            &spec(json!({"routeRefreshInterval": "soon"})),
            Overrides::default(),
        );
        assert_eq!(p.route_refresh, None);
        assert_eq!(p.status.invalid.len(), 1);
    }

    #[test]
    fn the_environment_wins() {
        let p = plan(
            &spec(json!({"logSeverityScreen": "Debug"})),
            Overrides {
                log: true,
                ..Default::default()
            },
        );
        assert_eq!(p.log_filter, None);
        assert_eq!(p.status.overridden, ["logSeverityScreen"]);
        assert!(p.status.applied.is_empty());
    }

    #[test]
    fn a_bad_level_is_invalid_not_applied() {
        let p = plan(&spec(json!({"logSeverityScreen": 3})), Overrides::default());
        assert_eq!(p.log_filter, None);
        assert_eq!(
            p.status.invalid,
            ["logSeverityScreen: 3 is not a log level"]
        );
    }

    #[test]
    fn nothing_set_is_nothing_reported() {
        assert_eq!(
            plan(&FelixSpec::new(), Overrides::default()),
            Plan::default()
        );
    }
}
