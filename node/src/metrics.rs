//! `/metrics`: Prometheus text (prometheus-client), filled at scrape time
//! from the same data `/status` shows, so the two never disagree.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `manul_bgp_peer_established` | `peer`, `type` | 1 when the session is Established |
//! | `manul_bgp_peer_prefixes_received` | `peer`, `type` | prefixes accepted from the peer |
//! | `manul_bgp_peer_prefixes_advertised` | `peer`, `type` | prefixes sent to the peer |
//! | `manul_bgp_originated_prefixes` | | prefixes this node originates |
//! | `manul_routes_desired` | | kernel routes felix wants |
//! | `manul_routes_remote_prefixes` | | remote prefixes learned over BGP |
//! | `manul_route_writes` | | route writes since start |
//! | `manul_routes_failed`, `manul_routes_blocked` | | routes not written now |
//! | `manul_datastore_in_sync` | | 1 when confd is in sync with etcd |
//! | `manul_datastore_resumes` | | watches resumed after an etcd failure |
//! | `manul_ebpf_*` | | felix's eBPF dataplane (`manul_felix::ebpf::observe`) |

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

type Labels = Vec<(String, String)>;

/// The registry and its metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    established: Family<Labels, Gauge>,
    received: Family<Labels, Gauge>,
    advertised: Family<Labels, Gauge>,
    plain: Vec<(&'static str, Gauge)>,
}

const PLAIN: [(&str, &str); 7] = [
    (
        "manul_bgp_originated_prefixes",
        "Prefixes this node originates",
    ),
    ("manul_routes_desired", "Kernel routes felix wants"),
    (
        "manul_routes_remote_prefixes",
        "Remote prefixes learned over BGP",
    ),
    ("manul_route_writes", "Route writes since start"),
    ("manul_routes_failed", "Routes whose write failed (retried)"),
    ("manul_routes_blocked", "Routes another owner holds"),
    ("manul_datastore_in_sync", "1 when in sync with etcd"),
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let established = Family::<Labels, Gauge>::default();
        let received = Family::<Labels, Gauge>::default();
        let advertised = Family::<Labels, Gauge>::default();
        registry.register(
            "manul_bgp_peer_established",
            "1 when the BGP session is Established",
            established.clone(),
        );
        registry.register(
            "manul_bgp_peer_prefixes_received",
            "Prefixes accepted from the peer",
            received.clone(),
        );
        registry.register(
            "manul_bgp_peer_prefixes_advertised",
            "Prefixes advertised to the peer",
            advertised.clone(),
        );
        let mut plain = Vec::new();
        for (name, help) in PLAIN.into_iter().chain([(
            "manul_datastore_resumes",
            "Watches resumed after an etcd failure",
        )]) {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            plain.push((name, g));
        }
        Metrics {
            registry,
            established,
            received,
            advertised,
            plain,
        }
    }
}

impl Metrics {
    /// Add a collector read at each scrape (felix's eBPF counters).
    pub fn register(&mut self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.register_collector(collector);
    }

    fn set(&self, name: &str, v: i64) {
        if let Some((_, g)) = self.plain.iter().find(|(n, _)| *n == name) {
            g.set(v);
        }
    }

    /// Render, from the routing status JSON and the datastore state.
    pub fn render(&self, routing: &Value, in_sync: bool, resumes: u64) -> String {
        for f in [&self.established, &self.received, &self.advertised] {
            f.clear();
        }
        for p in routing["peers"].as_array().into_iter().flatten() {
            let labels = vec![
                (
                    "peer".to_string(),
                    p["address"].as_str().unwrap_or("").to_string(),
                ),
                (
                    "type".to_string(),
                    p["type"].as_str().unwrap_or("").to_string(),
                ),
            ];
            self.established
                .get_or_create(&labels)
                .set(i64::from(p["state"] == "Established"));
            self.received
                .get_or_create(&labels)
                .set(p["prefixes_received"].as_i64().unwrap_or(0));
            self.advertised
                .get_or_create(&labels)
                .set(p["prefixes_advertised"].as_i64().unwrap_or(0));
        }
        let num = |v: &Value| v.as_i64().unwrap_or(0);
        self.set(
            "manul_bgp_originated_prefixes",
            routing["originated"]
                .as_array()
                .map_or(0, |a| a.len() as i64),
        );
        let r = &routing["routes"];
        self.set("manul_routes_desired", num(&r["desired"]));
        self.set("manul_routes_remote_prefixes", num(&r["remote_prefixes"]));
        self.set("manul_route_writes", num(&r["writes"]));
        self.set("manul_routes_failed", num(&r["failed"]));
        self.set("manul_routes_blocked", num(&r["blocked"]));
        self.set("manul_datastore_in_sync", i64::from(in_sync));
        self.set("manul_datastore_resumes", resumes as i64);
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_peers_and_routes() {
        let m = Metrics::default();
        let status = serde_json::json!({
            "peers": [{"address": "10.0.0.2", "type": "mesh", "state": "Established",
                       "prefixes_received": 3, "prefixes_advertised": 1}],
            "originated": ["10.65.0.0/26"],
            "routes": {"desired": 4, "remote_prefixes": 3, "writes": 9, "failed": 0, "blocked": 0},
        });
        let text = m.render(&status, true, 0);
        assert!(
            text.contains(r#"manul_bgp_peer_established{peer="10.0.0.2",type="mesh"} 1"#),
            "{text}"
        );
        assert!(text.contains("manul_routes_desired 4"), "{text}");
        assert!(text.contains("manul_datastore_in_sync 1"), "{text}");
        // A peer that is gone disappears.
        let text = m.render(&serde_json::json!({"peers": []}), false, 1);
        assert!(!text.contains("10.0.0.2"), "{text}");
    }
}
