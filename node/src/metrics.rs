//! `/metrics`: Prometheus text (prometheus-client). The gauges are filled
//! at scrape time from the node's [`NodeStatus`], the value `/status`
//! serves, so the two never disagree.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `manul_bgp_peer_established` | `peer`, `type` | 1 when the session is Established |
//! | `manul_bgp_peer_prefixes_received` | `peer`, `type` | prefixes accepted from the peer |
//! | `manul_bgp_peer_prefixes_advertised` | `peer`, `type` | prefixes sent to the peer |
//! | `manul_bgp_peer_prefixes_unsendable` | `peer`, `type` | prefixes the export would send that cannot be encoded for the session (`/status` says why) |
//! | `manul_bgp_malformed_total` | `peer`, `action` (`treat-as-withdraw`, `attribute-discard`, `session-reset`) | malformed UPDATEs from the peer, by RFC 7606 action |
//! | `manul_bgp_originated_prefixes` | | prefixes this node originates |
//! | `manul_routes_kernel` | `family` (`ipv4`, `ipv6`) | routes felix owns that the kernel holds |
//! | `manul_routes_desired` | | kernel routes felix wants (0 before its first desired set) |
//! | `manul_routes_holding` | | 1 while felix holds its writes (after a start or a speaker restart, until BGP has converged) |
//! | `manul_pool_refused` | `pool` | 1 for each IP pool whose remote routes felix does not program (an IPIP pool: manul builds no IPIP tunnels; `/status` says why) |
//! | `manul_routes_remote_prefixes` | | remote prefixes felix routes to (learned over BGP, or from IPAM for VXLAN pools) |
//! | `manul_route_writes` | | route writes since start |
//! | `manul_routes_failed`, `manul_routes_blocked` | | routes not written now |
//! | `manul_datastore_in_sync` | | 1 when confd is in sync with etcd |
//! | `manul_datastore_resumes` | | watches resumed after an etcd failure |
//! | `manul_datastore_errors_total` | `operation` (`list`, `watch`) | etcd failures of confd's sync |
//! | `manul_felix_reconcile_seconds` | | histogram: from a desired route set handed to felix to the kernel holding it |
//! | `manul_ipam_operations_total` | `operation` | IPAM operations on this node seen in etcd: `block_claim`, `block_release`, `address_assign`, `address_release` |
//! | `manul_bgp_speaker_restarts` | | speaker restarts (this node's AS, router ID or cluster ID changed) |
//! | `manul_ebpf_*` | | felix's eBPF dataplane (`manul_felix::ebpf::observe`) |
//! | `manul_nat_failures_total` | | failed attempts to program the NAT table (nftables `inet manul`) |
//! | `manul_nat_repairs_total` | | times the NAT table was found changed by someone else and put right |
//! | `manul_nat_in_sync` | | 1 when the kernel holds the NAT table felix wants |
//! | `manul_nat_pools` | | pools with `natOutgoing` |
//!
//! The gauges are filled at scrape time; the counters and the histogram
//! as things happen. IPAM operations are done by the CNI plugin (a process
//! per call, with no endpoint of its own); the agent counts their results
//! as they reach etcd ([`ipam_operations`]), so a failed one is not seen
//! here (its error is in the container runtime's log).

use std::sync::Arc;
use std::time::Instant;

use manul_bgp::fsm::State;
use manul_confd::{Delta, Item, ItemKey};
use manul_datastore::ipam::AffinityState;
use manul_felix::Update;
use manul_status::NodeStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The registry and its metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    established: Family<Labels, Gauge>,
    received: Family<Labels, Gauge>,
    advertised: Family<Labels, Gauge>,
    unsendable: Family<Labels, Gauge>,
    malformed: Family<Labels, Counter>,
    kernel: Family<Labels, Gauge>,
    refused: Family<Labels, Gauge>,
    plain: Vec<(&'static str, Gauge)>,
    datastore_errors: Family<Labels, Counter>,
    reconcile: Histogram,
    ipam: Family<Labels, Counter>,
    nat: NatMetrics,
}

/// NAT outgoing: counters brought up to felix's counts at scrape time.
#[derive(Debug, Default)]
struct NatMetrics {
    failures: Counter,
    repairs: Counter,
    in_sync: Gauge,
    pools: Gauge,
}

const PLAIN: [(&str, &str); 8] = [
    (
        "manul_bgp_originated_prefixes",
        "Prefixes this node originates",
    ),
    ("manul_routes_desired", "Kernel routes felix wants"),
    (
        "manul_routes_holding",
        "1 while felix holds its writes until BGP has converged",
    ),
    (
        "manul_routes_remote_prefixes",
        "Remote prefixes felix routes to (from BGP, or IPAM for VXLAN pools)",
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
        let unsendable = Family::<Labels, Gauge>::default();
        registry.register(
            "manul_bgp_peer_prefixes_unsendable",
            "Prefixes the export would advertise that cannot be encoded for the session",
            unsendable.clone(),
        );
        // Per peer, set to the speaker's counts at scrape time.
        let malformed = Family::<Labels, Counter>::default();
        registry.register(
            "manul_bgp_malformed",
            "Malformed UPDATEs received, by peer and RFC 7606 action",
            malformed.clone(),
        );
        let kernel = Family::<Labels, Gauge>::default();
        registry.register(
            "manul_routes_kernel",
            "Routes felix owns that the kernel holds, by family",
            kernel.clone(),
        );
        let refused = Family::<Labels, Gauge>::default();
        registry.register(
            "manul_pool_refused",
            "1 for each IP pool whose remote routes felix does not program",
            refused.clone(),
        );
        // Brought up to confd's own count at scrape time.
        let datastore_errors = Family::<Labels, Counter>::default();
        registry.register(
            "manul_datastore_errors",
            "etcd failures of the sync, by operation",
            datastore_errors.clone(),
        );
        let reconcile = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "manul_felix_reconcile_seconds",
            "From a desired route set handed to felix to the kernel holding it",
            reconcile.clone(),
        );
        let ipam = Family::<Labels, Counter>::default();
        registry.register(
            "manul_ipam_operations",
            "IPAM operations on this node seen in etcd, by operation",
            ipam.clone(),
        );
        let nat = NatMetrics::default();
        registry.register(
            "manul_nat_failures",
            "Failed attempts to program the NAT table (nftables inet manul)",
            nat.failures.clone(),
        );
        registry.register(
            "manul_nat_repairs",
            "Times the NAT table was found changed by someone else and put right",
            nat.repairs.clone(),
        );
        registry.register(
            "manul_nat_in_sync",
            "1 when the kernel holds the NAT table felix wants",
            nat.in_sync.clone(),
        );
        registry.register(
            "manul_nat_pools",
            "Pools with natOutgoing",
            nat.pools.clone(),
        );
        let mut plain = Vec::new();
        for (name, help) in PLAIN.into_iter().chain([
            (
                "manul_datastore_resumes",
                "Watches resumed after an etcd failure",
            ),
            (
                "manul_bgp_speaker_restarts",
                "BGP speaker restarts for a changed AS, router ID or cluster ID",
            ),
        ]) {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            plain.push((name, g));
        }
        Metrics {
            registry,
            established,
            received,
            advertised,
            unsendable,
            malformed,
            kernel,
            refused,
            plain,
            datastore_errors,
            reconcile,
            ipam,
            nat,
        }
    }
}

/// The IPAM operations a batch of confd deltas shows on this node: a block
/// affinity becoming confirmed (claim) or leaving that state (release), a
/// WorkloadEndpoint's addresses appearing (assign) or going (release).
pub fn ipam_operations(deltas: &[Delta]) -> Vec<(&'static str, u64)> {
    let confirmed =
        |i: &Option<Item>| matches!(i, Some(Item::Affinity(Some(AffinityState::Confirmed))));
    let addresses = |i: &Option<Item>| match i {
        Some(Item::Workload(w)) => w.spec.ip_networks.len() as u64,
        _ => 0,
    };
    let mut out = Vec::new();
    for d in deltas {
        match d.key {
            ItemKey::Affinity(_) => match (confirmed(&d.old), confirmed(&d.new)) {
                (false, true) => out.push(("block_claim", 1)),
                (true, false) => out.push(("block_release", 1)),
                _ => {}
            },
            ItemKey::Workload { .. } => {
                let (old, new) = (addresses(&d.old), addresses(&d.new));
                if new > old {
                    out.push(("address_assign", new - old));
                } else if old > new {
                    out.push(("address_release", old - new));
                }
            }
            _ => {}
        }
    }
    out
}

impl Metrics {
    /// Add a collector read at each scrape (felix's eBPF counters).
    pub fn register(&mut self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.register_collector(collector);
    }

    /// Count the IPAM operations in a batch of confd deltas.
    pub fn observe_ipam(&self, deltas: &[Delta]) {
        for (op, n) in ipam_operations(deltas) {
            self.ipam
                .get_or_create(&vec![("operation".to_string(), op.to_string())])
                .inc_by(n);
        }
    }

    /// felix was handed `update`: time it until the kernel (routes, and
    /// the eBPF maps and overlay when felix runs them) holds it.
    pub fn reconcile_started(self: &Arc<Self>, felix: &Arc<manul_felix::Felix>, update: Update) {
        let (me, felix, start) = (Arc::clone(self), Arc::clone(felix), Instant::now());
        tokio::spawn(async move {
            felix.wait(update).await;
            me.reconcile.observe(start.elapsed().as_secs_f64());
        });
    }

    fn set(&self, name: &str, v: i64) {
        if let Some((_, g)) = self.plain.iter().find(|(n, _)| *n == name) {
            g.set(v);
        }
    }

    /// Render, from the node's status.
    pub fn render(&self, status: &NodeStatus) -> String {
        let ds = &status.datastore;
        for (op, n) in &ds.errors {
            let c = self
                .datastore_errors
                .get_or_create(&vec![("operation".to_string(), op.clone())]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        for f in [
            &self.established,
            &self.received,
            &self.advertised,
            &self.unsendable,
            &self.refused,
        ] {
            f.clear();
        }
        // A peer's counters live as long as the peer: one that is gone
        // disappears, one configured again starts from 0 (a counter reset).
        self.malformed.clear();
        let routing = &status.routing;
        for p in &routing.peers {
            let labels = vec![
                ("peer".to_string(), p.address.to_string()),
                ("type".to_string(), p.kind.as_str().to_string()),
            ];
            self.established
                .get_or_create(&labels)
                .set(i64::from(p.state == State::Established));
            self.received
                .get_or_create(&labels)
                .set(p.prefixes_received as i64);
            self.advertised
                .get_or_create(&labels)
                .set(p.prefixes_advertised as i64);
            self.unsendable
                .get_or_create(&labels)
                .set(p.prefixes_unsendable as i64);
            let m = &p.malformed;
            for (action, n) in [
                ("treat-as-withdraw", m.treat_as_withdraw),
                ("attribute-discard", m.attribute_discard),
                ("session-reset", m.session_reset),
            ] {
                self.malformed
                    .get_or_create(&vec![
                        ("peer".to_string(), p.address.to_string()),
                        ("action".to_string(), action.to_string()),
                    ])
                    .inc_by(n);
            }
        }
        let r = &routing.routes;
        for p in &r.refused_pools {
            self.refused
                .get_or_create(&vec![("pool".to_string(), p.pool.clone())])
                .set(1);
        }
        for (family, n) in [("ipv4", r.kernel.ipv4), ("ipv6", r.kernel.ipv6)] {
            self.kernel
                .get_or_create(&vec![("family".to_string(), family.to_string())])
                .set(n as i64);
        }
        self.set(
            "manul_bgp_originated_prefixes",
            routing.originated.len() as i64,
        );
        self.set("manul_routes_desired", r.desired.unwrap_or(0) as i64);
        self.set("manul_routes_holding", i64::from(r.holding.is_some()));
        self.set("manul_routes_remote_prefixes", r.remote_prefixes as i64);
        self.set("manul_route_writes", r.writes as i64);
        self.set("manul_routes_failed", r.failed as i64);
        self.set("manul_routes_blocked", r.blocked as i64);
        self.set("manul_datastore_in_sync", i64::from(ds.in_sync));
        self.set("manul_datastore_resumes", ds.resumes as i64);
        self.set("manul_bgp_speaker_restarts", routing.bgp_restarts as i64);
        let nat = &status.nat;
        let m = &self.nat;
        m.failures
            .inc_by(nat.failures.saturating_sub(m.failures.get()));
        m.repairs
            .inc_by(nat.repairs.saturating_sub(m.repairs.get()));
        m.in_sync.set(i64::from(nat.in_sync));
        m.pools.set(nat.nat_pools.len() as i64);
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_operations_from_deltas() {
        let aff = |old: Option<AffinityState>, new: Option<AffinityState>| Delta {
            key: ItemKey::Affinity("10.65.0.0/26".parse().unwrap()),
            old: old.map(|s| Item::Affinity(Some(s))),
            new: new.map(|s| Item::Affinity(Some(s))),
        };
        let wep: manul_datastore::resources::WorkloadEndpoint =
            serde_json::from_value(serde_json::json!({
                "kind": "WorkloadEndpoint", "apiVersion": "projectcalico.org/v3",
                "metadata": {"name": "w", "namespace": "default"},
                "spec": {"node": "n1", "ipNetworks": ["10.65.0.1/32", "fd00::1/128"]}
            }))
            .unwrap();
        let key = ItemKey::Workload {
            namespace: "default".into(),
            name: "w".into(),
        };
        let w = Some(Item::Workload(Arc::new(wep)));
        let ops = ipam_operations(&[
            aff(Some(AffinityState::Pending), Some(AffinityState::Confirmed)),
            aff(None, Some(AffinityState::Pending)),
            Delta {
                key: key.clone(),
                old: None,
                new: w.clone(),
            },
        ]);
        assert_eq!(ops, vec![("block_claim", 1), ("address_assign", 2)]);
        let ops = ipam_operations(&[
            Delta {
                key,
                old: w,
                new: None,
            },
            aff(Some(AffinityState::Confirmed), None),
        ]);
        assert_eq!(ops, vec![("address_release", 2), ("block_release", 1)]);
    }

    #[test]
    fn renders_peers_and_routes() {
        use manul_status::{FamilyCount, KernelRoutes, PeerStatus, PeerType};
        let m = Metrics::default();
        let mut status = NodeStatus::default();
        status.datastore.in_sync = true;
        status.datastore.errors.insert("watch".into(), 2);
        status.routing.peers = vec![PeerStatus {
            address: "10.0.0.2".parse().unwrap(),
            asn: Some(64512),
            kind: PeerType::Mesh,
            state: State::Established,
            since: None,
            prefixes_received: 3,
            prefixes_advertised: 1,
            info: None,
            established_count: 1,
            notes: Vec::new(),
            prefixes_unsendable: 2,
            unsendable_reason: None,
            malformed: manul_status::MalformedCounts {
                treat_as_withdraw: 3,
                attribute_discard: 1,
                session_reset: 0,
            },
        }];
        status.routing.originated = vec!["10.65.0.0/26".parse().unwrap()];
        status.routing.routes = KernelRoutes {
            kernel: FamilyCount { ipv4: 4, ipv6: 1 },
            desired: Some(5),
            remote_prefixes: 3,
            writes: 9,
            refused_pools: vec![manul_status::RefusedPool {
                pool: "tunnelled".into(),
                reason: "ipipMode Always: ...".into(),
            }],
            ..Default::default()
        };
        let text = m.render(&status);
        for line in [
            r#"manul_bgp_peer_established{peer="10.0.0.2",type="mesh"} 1"#,
            r#"manul_bgp_peer_prefixes_received{peer="10.0.0.2",type="mesh"} 3"#,
            r#"manul_bgp_peer_prefixes_unsendable{peer="10.0.0.2",type="mesh"} 2"#,
            r#"manul_bgp_malformed_total{peer="10.0.0.2",action="treat-as-withdraw"} 3"#,
            r#"manul_bgp_malformed_total{peer="10.0.0.2",action="attribute-discard"} 1"#,
            r#"manul_bgp_malformed_total{peer="10.0.0.2",action="session-reset"} 0"#,
            r#"manul_routes_kernel{family="ipv4"} 4"#,
            r#"manul_routes_kernel{family="ipv6"} 1"#,
            "manul_routes_desired 5",
            "manul_routes_holding 0",
            "manul_bgp_originated_prefixes 1",
            "manul_datastore_in_sync 1",
            r#"manul_datastore_errors_total{operation="watch"} 2"#,
            r#"manul_pool_refused{pool="tunnelled"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A peer that is gone disappears; counters follow confd's.
        status.datastore.errors.insert("watch".into(), 3);
        status.routing.peers.clear();
        status.routing.routes.refused_pools.clear();
        let text = m.render(&status);
        assert!(
            text.contains(r#"manul_datastore_errors_total{operation="watch"} 3"#),
            "{text}"
        );
        assert!(!text.contains("10.0.0.2"), "{text}");
        assert!(!text.contains("tunnelled"), "{text}");
        // NAT outgoing: counters follow felix's.
        status.nat.failures = 2;
        status.nat.in_sync = true;
        status.nat.nat_pools = vec!["10.65.0.0/16".parse().unwrap()];
        let text = m.render(&status);
        for line in [
            "manul_nat_failures_total 2",
            "manul_nat_repairs_total 0",
            "manul_nat_in_sync 1",
            "manul_nat_pools 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
