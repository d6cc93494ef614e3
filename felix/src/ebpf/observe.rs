//! What the running eBPF dataplane looks like from outside: an
//! [`EbpfObserver`] the agent holds before felix starts, which felix's
//! eBPF task fills in. It answers two questions:
//!
//! - **metrics**: it is a prometheus-client [`Collector`]; each scrape
//!   reads the per-CPU counters from the kernel and sums them:
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `manul_ebpf_forwarded_packets_total`, `_bytes_total` | `interface` | what the workload sent that the programs redirected themselves |
//! | `manul_ebpf_spoofed_packets_total`, `_bytes_total` | `interface` | dropped: source not the workload's |
//! | `manul_ebpf_passed_packets_total`, `_bytes_total` | `interface` | handed to the kernel's stack |
//! | `manul_ebpf_delivered_packets_total`, `_bytes_total` | `interface` | redirected into the workload from the uplink |
//! | `manul_ebpf_mode` | `mode` (`off`, `routes-only`, `ebpf`) | 1 for the current mode |
//! | `manul_ebpf_attached_interfaces` | | interfaces with a program attached |
//! | `manul_ebpf_route_entries`, `manul_ebpf_endpoint_entries` | | entries in the maps |
//!
//! - **status**: [`EbpfObserver::summary`], the [`EbpfStatus`] part of
//!   the agent's `/status` (`manul_status`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use manul_ebpf_common::Counters;
use manul_status::{EbpfMode, EbpfStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::ebpf::dataplane::Dataplane;

#[derive(Debug, Default)]
struct Observed {
    summary: EbpfStatus,
    dataplane: Option<Arc<Mutex<Dataplane>>>,
}

/// See the module docs. Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone, Default)]
pub struct EbpfObserver(Arc<Mutex<Observed>>);

impl EbpfObserver {
    /// The current summary.
    pub fn summary(&self) -> EbpfStatus {
        self.lock().summary.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// felix runs routes only because of `reason`.
    pub(crate) fn routes_only(&self, reason: String) {
        let mut o = self.lock();
        o.summary.mode = EbpfMode::RoutesOnly;
        o.summary.reason = Some(reason);
        o.dataplane = None;
    }

    /// felix runs `dataplane`.
    pub(crate) fn running(&self, dataplane: Arc<Mutex<Dataplane>>, attach_mode: &str) {
        let mut o = self.lock();
        o.summary.mode = EbpfMode::Ebpf;
        o.summary.reason = None;
        o.summary.attach_mode = Some(attach_mode.to_string());
        o.dataplane = Some(dataplane);
    }

    /// Record the state after a sync.
    pub(crate) fn synced(&self, attached: usize, entries: (usize, usize), failures: Vec<String>) {
        let mut o = self.lock();
        o.summary.attached_interfaces = attached;
        (o.summary.route_entries, o.summary.endpoint_entries) = entries;
        o.summary.attach_failures = failures;
    }

    /// Every endpoint's counters by interface name, summed over CPUs.
    pub fn counters(&self) -> BTreeMap<String, Counters> {
        let Some(dp) = self.lock().dataplane.clone() else {
            return BTreeMap::new();
        };
        let dp = dp.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(all) = dp.all_counters() else {
            return BTreeMap::new();
        };
        let names = dp.endpoint_names();
        all.into_iter()
            .filter_map(|(ifindex, c)| Some((names.get(&ifindex)?.clone(), c)))
            .collect()
    }
}

/// A counter metric: name (without `_total`), help, field.
type CounterMetric = (&'static str, &'static str, fn(&Counters) -> u64);

const COUNTERS: [CounterMetric; 8] = [
    (
        "manul_ebpf_forwarded_packets",
        "Packets the workload sent that the eBPF programs forwarded",
        |c| c.forwarded_packets,
    ),
    (
        "manul_ebpf_forwarded_bytes",
        "Bytes the workload sent that the eBPF programs forwarded",
        |c| c.forwarded_bytes,
    ),
    (
        "manul_ebpf_spoofed_packets",
        "Packets dropped because their source is not the workload's",
        |c| c.spoofed_packets,
    ),
    (
        "manul_ebpf_spoofed_bytes",
        "Bytes dropped because their source is not the workload's",
        |c| c.spoofed_bytes,
    ),
    (
        "manul_ebpf_passed_packets",
        "Packets the workload sent that were handed to the kernel's stack",
        |c| c.passed_packets,
    ),
    (
        "manul_ebpf_passed_bytes",
        "Bytes the workload sent that were handed to the kernel's stack",
        |c| c.passed_bytes,
    ),
    (
        "manul_ebpf_delivered_packets",
        "Packets redirected from the uplink into the workload",
        |c| c.delivered_packets,
    ),
    (
        "manul_ebpf_delivered_bytes",
        "Bytes redirected from the uplink into the workload",
        |c| c.delivered_bytes,
    ),
];

/// Encode `summary` and `counters` (by interface) as metrics.
fn encode(
    mut encoder: DescriptorEncoder,
    summary: &EbpfStatus,
    counters: &BTreeMap<String, Counters>,
) -> Result<(), fmt::Error> {
    for (name, help, field) in COUNTERS {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (interface, c) in counters {
            let labels = [("interface", interface.as_str())];
            ConstCounter::new(field(c)).encode(family.encode_family(&labels)?)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "manul_ebpf_mode",
        "1 for the dataplane felix runs: off, routes-only or ebpf",
        None,
        MetricType::Gauge,
    )?;
    for mode in EbpfMode::ALL {
        let labels = [("mode", mode.as_str())];
        ConstGauge::new(i64::from(summary.mode == mode)).encode(family.encode_family(&labels)?)?;
    }
    for (name, help, value) in [
        (
            "manul_ebpf_attached_interfaces",
            "Interfaces with an eBPF program attached",
            summary.attached_interfaces,
        ),
        (
            "manul_ebpf_route_entries",
            "Entries in the eBPF route maps",
            summary.route_entries,
        ),
        (
            "manul_ebpf_endpoint_entries",
            "Entries in the eBPF endpoint map",
            summary.endpoint_entries,
        ),
    ] {
        let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value as i64).encode(m)?;
    }
    Ok(())
}

impl Collector for EbpfObserver {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let summary = self.summary();
        encode(encoder, &summary, &self.counters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[derive(Debug)]
    struct Fixed(EbpfStatus, BTreeMap<String, Counters>);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
            encode(encoder, &self.0, &self.1)
        }
    }

    fn render(c: Fixed) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(c));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn counters_are_per_interface_and_the_mode_is_one_hot() {
        let summary = EbpfStatus {
            mode: EbpfMode::Ebpf,
            attached_interfaces: 3,
            route_entries: 7,
            endpoint_entries: 2,
            ..EbpfStatus::default()
        };
        let c = Counters {
            forwarded_packets: 5,
            forwarded_bytes: 500,
            spoofed_packets: 2,
            passed_bytes: 9,
            ..Counters::default()
        };
        let text = render(Fixed(summary, [("cali1".to_string(), c)].into()));
        for line in [
            r#"manul_ebpf_forwarded_packets_total{interface="cali1"} 5"#,
            r#"manul_ebpf_forwarded_bytes_total{interface="cali1"} 500"#,
            r#"manul_ebpf_spoofed_packets_total{interface="cali1"} 2"#,
            r#"manul_ebpf_passed_bytes_total{interface="cali1"} 9"#,
            r#"manul_ebpf_mode{mode="ebpf"} 1"#,
            r#"manul_ebpf_mode{mode="routes-only"} 0"#,
            "manul_ebpf_attached_interfaces 3",
            "manul_ebpf_route_entries 7",
            "manul_ebpf_endpoint_entries 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn routes_only_shows_no_counters() {
        let o = EbpfObserver::default();
        assert_eq!(o.summary().mode, EbpfMode::Off);
        o.routes_only("kernel 5.10".into());
        assert_eq!(o.summary().mode, EbpfMode::RoutesOnly);
        assert!(o.counters().is_empty());
        let text = render(Fixed(o.summary(), BTreeMap::new()));
        assert!(
            text.contains(r#"manul_ebpf_mode{mode="routes-only"} 1"#),
            "{text}"
        );
        assert!(!text.contains("interface="), "{text}");
    }
}
