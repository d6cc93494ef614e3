//! felix's eBPF dataplane, as `/status` shows it (felix's
//! `EbpfObserver` fills it; its metrics are rendered from it too).

use serde::{Deserialize, Serialize};

/// Which dataplane felix runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EbpfMode {
    /// The eBPF dataplane is not enabled: kernel routes only, by choice.
    #[default]
    Off,
    /// Enabled, but this host cannot run it (see the reason): kernel routes only.
    RoutesOnly,
    /// Programs loaded, maps written, attached to workload interfaces.
    Ebpf,
}

impl EbpfMode {
    /// Every mode, for metrics that show each.
    pub const ALL: [EbpfMode; 3] = [EbpfMode::Off, EbpfMode::RoutesOnly, EbpfMode::Ebpf];

    /// The name in JSON, tables and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EbpfMode::Off => "off",
            EbpfMode::RoutesOnly => "routes-only",
            EbpfMode::Ebpf => "ebpf",
        }
    }
}

/// The eBPF dataplane's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbpfStatus {
    /// The mode.
    pub mode: EbpfMode,
    /// Why not `ebpf`, when enabled.
    pub reason: Option<String>,
    /// How programs are attached: `tcx`, or `tc` (clsact, legacy).
    pub attach_mode: Option<String>,
    /// Interfaces with a program attached (workloads and uplinks).
    pub attached_interfaces: usize,
    /// Route map entries (IPv4 and IPv6).
    pub route_entries: usize,
    /// Endpoint map entries.
    pub endpoint_entries: usize,
    /// Interfaces where attaching or detaching failed at the last sync.
    pub attach_failures: Vec<String>,
}
