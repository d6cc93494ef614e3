//! The loaded eBPF dataplane: programs and maps pinned under one bpffs
//! directory (default [`DEFAULT_PIN_DIR`]), TCX ingress links on workload
//! interfaces pinned beside them, maps written by difference.
//!
//! ```text
//! <pin_dir>/prog_workload_ingress   the TC program for workload interfaces
//! <pin_dir>/prog_uplink_ingress     the TC program for the host's uplink
//! <pin_dir>/routes_v4 routes_v6 endpoints counters
//! <pin_dir>/links/<interface>       one TCX ingress link per interface, or
//!                                   an empty directory marking felix's legacy
//!                                   TC filter there (kernels before 6.6)
//! ```
//!
//! [`Dataplane::open`] reuses whatever is pinned (a felix restart neither
//! reloads the program nor detaches anything), else loads the object built
//! by felix's build script and pins it. Unpinning a link detaches it;
//! [`cleanup`] removes the whole directory, so every attachment, program
//! and map goes with it. An [`EbpfError::Unsupported`] (or any error of
//! `open`) leaves felix on kernel routes only
//! ([`crate::ebpf::EbpfDriver::start`] logs it once).
//!
//! Its parts, one job each (this file: the type, its configuration, `open`):
//!
//! - `probe.rs`: whether this host can run the programs (kernel, bpffs).
//! - `load.rs`: load the object and pin it; [`cleanup`] unpins everything.
//! - `attach.rs`: attach and detach the programs on interfaces.
//! - `sync.rs`: write the maps by difference from felix's desired state.
//! - `counters.rs`: read the per-endpoint counters.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::PathBuf;

use aya::maps::lpm_trie::LpmTrie;
use aya::maps::{HashMap, Map, MapData, PerCpuHashMap};
use aya::programs::SchedClassifier;
use manul_ebpf_common::{
    COUNTERS, Counters, DEFAULT_ENDPOINTS, DEFAULT_ROUTES, ENDPOINTS, EndpointValue, ROUTES_V4,
    ROUTES_V6, RouteValue,
};

use crate::ebpf::entries::{EndpointEntries, RouteEntries};
use crate::ebpf::error::EbpfError;
use crate::ebpf::map_batch::Batching;

mod attach;
mod counters;
mod load;
mod probe;
mod sync;

pub use attach::{Attach, AttachMode, AttachReport, use_tcx};
pub use load::cleanup;
pub use probe::probe;
pub use sync::SyncStats;

use load::PROG_PINS;

/// Where felix pins by default.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/manul";
/// The links' directory, under the pin directory.
const LINKS_DIR: &str = "links";

/// Where and how big.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// The bpffs directory everything is pinned in.
    pub pin_dir: PathBuf,
    /// The network namespace of the workload interfaces (`None`: felix's own).
    pub netns: Option<PathBuf>,
    /// Entries per route map (each family); applies when maps are created.
    pub route_capacity: u32,
    /// Entries in the endpoint and counter maps; applies when created.
    pub endpoint_capacity: u32,
    /// TCX, legacy TC, or whichever the kernel has.
    pub attach: AttachMode,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            netns: None,
            route_capacity: DEFAULT_ROUTES,
            endpoint_capacity: DEFAULT_ENDPOINTS,
            attach: AttachMode::Auto,
        }
    }
}

/// The loaded dataplane; see the module docs.
pub struct Dataplane {
    config: DataplaneConfig,
    reused: bool,
    /// TCX links (else legacy TC filters).
    tcx: bool,
    /// `workload_ingress`, for workload interfaces.
    workload: SchedClassifier,
    /// `uplink_ingress`, for the host's uplinks.
    uplink: SchedClassifier,
    routes_v4: LpmTrie<MapData, [u8; 4], RouteValue>,
    routes_v6: LpmTrie<MapData, [u8; 16], RouteValue>,
    /// Whether route writes go in batches (see [`crate::ebpf::map_batch`]).
    batching: Batching,
    endpoints: HashMap<MapData, u32, EndpointValue>,
    counters: PerCpuHashMap<MapData, u32, Counters>,
    /// What the route maps hold (as last read or written).
    routes: RouteEntries,
    /// What the endpoint map holds.
    eps: EndpointEntries,
    /// The endpoints' interface names by index, as of the last
    /// [`Dataplane::sync_desired`] (for metrics).
    names: BTreeMap<u32, String>,
}

impl fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataplane")
            .field("pin_dir", &self.config.pin_dir)
            .field("reused", &self.reused)
            .field("routes", &self.routes.len())
            .field("endpoints", &self.eps.len())
            .finish()
    }
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |e| EbpfError::Map {
        map,
        reason: chain(&e),
    }
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Dataplane {
    /// Load or reuse; see the module docs.
    pub fn open(config: DataplaneConfig) -> Result<Self, EbpfError> {
        probe(&config.pin_dir)?;
        let tcx = use_tcx(config.attach)?;
        fs::create_dir_all(config.pin_dir.join(LINKS_DIR))?;
        let reused = PROG_PINS
            .iter()
            .all(|(_, pin)| config.pin_dir.join(pin).exists());
        if !reused {
            Self::load_and_pin(&config)?;
        }
        let prog = |pin: &str| {
            let path = config.pin_dir.join(pin);
            SchedClassifier::from_pin(&path).map_err(|e| EbpfError::Pinned {
                path,
                reason: chain(&e),
            })
        };
        let workload = prog(PROG_PINS[0].1)?;
        let uplink = prog(PROG_PINS[1].1)?;
        let map = |name: &'static str| -> Result<Map, EbpfError> {
            let path = config.pin_dir.join(name);
            MapData::from_pin(&path)
                .and_then(Map::from_map_data)
                .map_err(|e| EbpfError::Pinned {
                    path,
                    reason: e.to_string(),
                })
        };
        let mut dp = Dataplane {
            routes_v4: LpmTrie::try_from(map(ROUTES_V4)?).map_err(map_err(ROUTES_V4))?,
            routes_v6: LpmTrie::try_from(map(ROUTES_V6)?).map_err(map_err(ROUTES_V6))?,
            batching: Batching::default(),
            endpoints: HashMap::try_from(map(ENDPOINTS)?).map_err(map_err(ENDPOINTS))?,
            counters: PerCpuHashMap::try_from(map(COUNTERS)?).map_err(map_err(COUNTERS))?,
            workload,
            uplink,
            reused,
            tcx,
            config,
            routes: RouteEntries::new(),
            eps: EndpointEntries::new(),
            names: BTreeMap::new(),
        };
        let (routes, eps) = dp.dump()?;
        dp.routes = routes;
        dp.eps = eps;
        Ok(dp)
    }

    /// Whether `open` found everything pinned (a restart) rather than loading.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// How programs are attached: `tcx`, or `tc` (legacy).
    pub fn attach_mode(&self) -> &'static str {
        if self.tcx { "tcx" } else { "tc" }
    }

    /// The configuration.
    pub fn config(&self) -> &DataplaneConfig {
        &self.config
    }
}
