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

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap, Map, MapData, PerCpuHashMap};
use aya::programs::links::FdLink;
use aya::programs::tc::TcAttachOptions;
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType};
use aya::util::KernelVersion;
use aya::{EbpfLoader, include_bytes_aligned};
use ipnet::IpNet;
use manul_ebpf_common::{
    COUNTERS, Counters, DEFAULT_ENDPOINTS, DEFAULT_ROUTES, ENDPOINTS, EndpointValue,
    PROG_UPLINK_INGRESS, PROG_WORKLOAD_INGRESS, ROUTES_V4, ROUTES_V6, RouteValue,
};

use crate::desired::Pool;
use crate::ebpf::entries::{
    Endpoint, EndpointEntries, Hosts, RouteEntries, diff, endpoint_entries, route_entries,
};
use crate::ebpf::error::EbpfError;
use crate::ebpf::legacy;
use crate::ebpf::link::links_in;
use crate::ebpf::map_batch::{self, Batching};
use crate::netns::in_netns;
use crate::route::DesiredRoutes;

/// Where felix pins by default.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/manul";
/// The programs' pins, under the pin directory.
const PROG_PINS: [(&str, &str); 2] = [
    (PROG_WORKLOAD_INGRESS, "prog_workload_ingress"),
    (PROG_UPLINK_INGRESS, "prog_uplink_ingress"),
];
/// The links' directory, under the pin directory.
const LINKS_DIR: &str = "links";
/// bpffs's `statfs` magic.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The programs, as built by `build.rs` from `ebpf/programs`.
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/manul-tc"));

/// How programs are attached to interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX where the kernel has it (6.6 and later), else legacy TC.
    #[default]
    Auto,
    /// TCX links (pinned), Linux 6.6 and later.
    Tcx,
    /// A `clsact` qdisc and a `cls_bpf` filter ([`crate::ebpf::legacy`]),
    /// for older kernels (5.10 and later: `bpf_redirect_peer`).
    Tc,
}

impl std::str::FromStr for AttachMode {
    type Err = String;

    /// Calico's `BPFAttachType` spelling: `auto`, `tcx`, `tc` (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AttachMode::Auto),
            "tcx" => Ok(AttachMode::Tcx),
            "tc" => Ok(AttachMode::Tc),
            other => Err(format!("attach mode {other:?}: expected auto, tcx or tc")),
        }
    }
}

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

/// What [`Dataplane::attach`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// A new link now runs the program on the interface.
    Attached,
    /// Our program was already attached there (pinned link kept).
    AlreadyAttached,
}

/// What one [`Dataplane::sync_attachments`] did.
#[derive(Debug, Default)]
pub struct AttachReport {
    /// Interfaces that got a new link.
    pub attached: Vec<String>,
    /// Interfaces whose link was removed.
    pub detached: Vec<String>,
    /// Interfaces where attaching or detaching failed.
    pub failed: Vec<(String, EbpfError)>,
}

/// What one [`Dataplane::sync`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Route entries put (new or changed).
    pub routes_put: usize,
    /// Route entries deleted.
    pub routes_deleted: usize,
    /// Endpoint entries put.
    pub endpoints_put: usize,
    /// Endpoint entries deleted.
    pub endpoints_deleted: usize,
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
    /// Whether route writes go in batches (see [`map_batch`]).
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

/// Whether to attach with TCX under `mode` on this kernel.
pub fn use_tcx(mode: AttachMode) -> Result<bool, EbpfError> {
    let kernel = KernelVersion::current()
        .map_err(|e| EbpfError::Unsupported(format!("kernel version unknown: {e}")))?;
    let has_tcx = kernel >= KernelVersion::new(6, 6, 0);
    match mode {
        AttachMode::Auto => Ok(has_tcx),
        AttachMode::Tc => Ok(false),
        AttachMode::Tcx if has_tcx => Ok(true),
        AttachMode::Tcx => Err(EbpfError::Unsupported(format!(
            "kernel {kernel:?} is older than 6.6 (no TCX attachments; attach mode tc or auto uses legacy TC)"
        ))),
    }
}

/// Check that this host can run the programs: Linux 5.10 (the
/// `bpf_redirect_peer` helper) and a bpf filesystem under `pin_dir`. As
/// Calico's felix does, bpffs is mounted at `/sys/fs/bpf` when `pin_dir`
/// is under it and nothing is mounted there.
pub fn probe(pin_dir: &Path) -> Result<(), EbpfError> {
    let kernel = KernelVersion::current()
        .map_err(|e| EbpfError::Unsupported(format!("kernel version unknown: {e}")))?;
    if kernel < KernelVersion::new(5, 10, 0) {
        return Err(EbpfError::Unsupported(format!(
            "kernel {kernel:?} is older than 5.10 (no bpf_redirect_peer)"
        )));
    }
    let mut dir = pin_dir;
    while !dir.exists() {
        dir = dir.parent().unwrap_or(Path::new("/"));
    }
    if is_bpffs(dir)? {
        return Ok(());
    }
    let root = Path::new(BPFFS_ROOT);
    if pin_dir.starts_with(root) && dir == root {
        // Several processes starting at once (tests) must not stack mounts:
        // pins made under a lower one would vanish from view. Whoever holds
        // the lock on the directory checks again and mounts at most once.
        let lock = fs::File::open(root)?;
        // SAFETY: flock on an fd we own; released when `lock` closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            return Err(EbpfError::Io(io::Error::last_os_error()));
        }
        if !is_bpffs(root)? {
            mount_bpffs(root)?;
            tracing::info!(path = BPFFS_ROOT, "mounted the bpf filesystem");
        }
        drop(lock);
        if is_bpffs(root)? {
            return Ok(());
        }
    }
    Err(EbpfError::Unsupported(format!(
        "{} is not on a bpf filesystem (mount -t bpf bpf {BPFFS_ROOT})",
        dir.display()
    )))
}

/// Where bpffs is normally mounted.
const BPFFS_ROOT: &str = "/sys/fs/bpf";

fn c_path(path: &Path) -> Result<std::ffi::CString, EbpfError> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| EbpfError::Unsupported(e.to_string()))
}

fn is_bpffs(path: &Path) -> Result<bool, EbpfError> {
    let c = c_path(path)?;
    // SAFETY: statfs is plain data; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(EbpfError::Io(io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(path: &Path) -> Result<(), EbpfError> {
    let target = c_path(path)?;
    let fstype = c"bpf";
    // SAFETY: NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(EbpfError::Unsupported(format!(
            "mounting bpffs on {}: {}",
            path.display(),
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Remove everything pinned under `pin_dir`: links (so programs detach),
/// legacy TC filters (in `netns`, where the interfaces are), the programs
/// and the maps. `Ok(false)` if there was nothing.
pub fn cleanup(pin_dir: &Path, netns: Option<&Path>) -> io::Result<bool> {
    // Detach now rather than when the kernel gets round to releasing the
    // unpinned links.
    if let Ok(links) = fs::read_dir(pin_dir.join(LINKS_DIR)) {
        for entry in links.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                in_netns(netns, || legacy::detach(&name))?;
            } else if let Ok(fd) = crate::ebpf::sys::obj_get(&path) {
                let _ = crate::ebpf::sys::link_detach(&fd);
            }
        }
    }
    match fs::remove_dir_all(pin_dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn key_v4(net: &IpNet) -> Option<Key<[u8; 4]>> {
    match net {
        IpNet::V4(n) => Some(Key::new(u32::from(n.prefix_len()), n.addr().octets())),
        IpNet::V6(_) => None,
    }
}

fn key_v6(net: &IpNet) -> Option<Key<[u8; 16]>> {
    match net {
        IpNet::V6(n) => Some(Key::new(u32::from(n.prefix_len()), n.addr().octets())),
        IpNet::V4(_) => None,
    }
}

fn net_of(addr: IpAddr, len: u32) -> Option<IpNet> {
    IpNet::new(addr, u8::try_from(len).ok()?).ok()
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

    /// Load the object (the verifier runs here), pin its maps (reusing
    /// pinned ones) and its programs (replacing pinned ones).
    fn load_and_pin(config: &DataplaneConfig) -> Result<(), EbpfError> {
        let load = |e: &dyn std::error::Error| EbpfError::Load(chain(e));
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&config.pin_dir)
            .map_max_entries(ROUTES_V4, config.route_capacity)
            .map_max_entries(ROUTES_V6, config.route_capacity)
            .map_max_entries(ENDPOINTS, config.endpoint_capacity)
            .map_max_entries(COUNTERS, config.endpoint_capacity)
            .load(OBJECT)
            .map_err(|e| load(&e))?;
        for (name, pin) in PROG_PINS {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or_else(|| EbpfError::Load(format!("no program {name}")))?
                .try_into()
                .map_err(|e| load(&e))?;
            prog.load().map_err(|e| match e {
                aya::programs::ProgramError::LoadError {
                    io_error,
                    verifier_log,
                } => EbpfError::Load(format!("verifier, {name}: {io_error}\n{verifier_log}")),
                e => load(&e),
            })?;
            let path = config.pin_dir.join(pin);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            prog.pin(&path).map_err(|e| load(&e))?;
        }
        Ok(())
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

    fn link_pin(&self, interface: &str) -> PathBuf {
        self.config.pin_dir.join(LINKS_DIR).join(interface)
    }

    /// Attach the workload program at TCX ingress of workload interface
    /// `interface` (in the configured namespace) and pin the link; a no-op
    /// when it is already there.
    pub fn attach(&mut self, interface: &str) -> Result<Attach, EbpfError> {
        self.attach_program(false, interface)
    }

    /// Attach the uplink program at TCX ingress of the host's uplink
    /// `interface`, as [`Dataplane::attach`] does.
    pub fn attach_uplink(&mut self, interface: &str) -> Result<Attach, EbpfError> {
        self.attach_program(true, interface)
    }

    fn attach_program(&mut self, uplink: bool, interface: &str) -> Result<Attach, EbpfError> {
        let err = |reason: String| EbpfError::Attach {
            interface: interface.to_string(),
            reason,
        };
        let pin = self.link_pin(interface);
        // Attached the other way (the attach mode changed): detach first.
        if pin.exists() && pin.is_dir() == self.tcx {
            self.detach(interface)?;
        }
        if !self.tcx {
            return self.attach_legacy(uplink, interface).map_err(err);
        }
        let prog = if uplink {
            &mut self.uplink
        } else {
            &mut self.workload
        };
        let prog_id = prog
            .info()
            .map_err(|e| err(format!("program info: {e}")))?
            .id();
        let netns = self.config.netns.clone();
        in_netns(netns.as_deref(), || {
            let attached = SchedClassifier::query_tcx(interface, TcAttachType::Ingress)
                .map(|(_, progs)| progs.iter().any(|p| p.id() == prog_id))
                .unwrap_or(false);
            if attached && pin.exists() {
                return Ok(Ok(Attach::AlreadyAttached));
            }
            // A pin left from an interface of the same name that is gone.
            let _ = fs::remove_file(&pin);
            let r = (|| -> Result<Attach, String> {
                let id = prog
                    .attach_with_options(
                        interface,
                        TcAttachType::Ingress,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )
                    .map_err(|e| format!("attach: {e}"))?;
                let link = prog.take_link(id).map_err(|e| e.to_string())?;
                let fd: FdLink = link
                    .try_into()
                    .map_err(|e: aya::programs::links::LinkError| e.to_string())?;
                fd.pin(&pin).map_err(|e| format!("pin: {e}"))?;
                Ok(Attach::Attached)
            })();
            Ok(r)
        })?
        .map_err(err)
    }

    /// [`Dataplane::attach_program`] with a legacy TC filter; its marker
    /// is made once the filter is there.
    fn attach_legacy(&mut self, uplink: bool, interface: &str) -> Result<Attach, String> {
        let pin = self.link_pin(interface);
        let marked = pin.is_dir();
        let prog = if uplink {
            &mut self.uplink
        } else {
            &mut self.workload
        };
        let netns = self.config.netns.clone();
        let new = in_netns(netns.as_deref(), || {
            Ok(legacy::attach(prog, interface, marked))
        })
        .map_err(|e| e.to_string())??;
        match fs::create_dir(&pin) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(format!("marker {}: {e}", pin.display()));
            }
            _ => {}
        }
        Ok(if new {
            Attach::Attached
        } else {
            Attach::AlreadyAttached
        })
    }

    /// Detach from `interface`, workload or uplink (unpin its link); `false`
    /// if not attached.
    /// Done when it returns: the link is detached explicitly, not left to
    /// the kernel's deferred release of an unpinned link.
    pub fn detach(&mut self, interface: &str) -> Result<bool, EbpfError> {
        let pin = self.link_pin(interface);
        if pin.is_dir() {
            in_netns(self.config.netns.as_deref(), || legacy::detach(interface)).map_err(|e| {
                EbpfError::Attach {
                    interface: interface.to_string(),
                    reason: format!("detach (tc): {e}"),
                }
            })?;
            fs::remove_dir(&pin)?;
            return Ok(true);
        }
        let link = crate::ebpf::sys::obj_get(&pin);
        match fs::remove_file(&pin) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if let Ok(fd) = link {
            // A link whose interface is gone is defunct already: no error.
            if let Err(e) = crate::ebpf::sys::link_detach(&fd)
                && e.raw_os_error() != Some(libc::ENOLINK)
            {
                return Err(EbpfError::Attach {
                    interface: interface.to_string(),
                    reason: format!("detach: {e}"),
                });
            }
        }
        Ok(true)
    }

    /// Make the attachments follow the interfaces: attach the workload
    /// program to each of `workloads` and the uplink program to each of
    /// `uplinks` that exists in the namespace (an interface deleted and made
    /// again gets a new link), and detach every other pinned link (its
    /// interface is gone or no longer wanted). One interface's failure does
    /// not stop the others; it is reported.
    pub fn sync_attachments(
        &mut self,
        workloads: &[String],
        uplinks: &[String],
    ) -> Result<AttachReport, EbpfError> {
        let names: Vec<String> = workloads.iter().chain(uplinks).cloned().collect();
        let exists: Vec<bool> = links_in(self.config.netns.as_deref(), &names)?
            .iter()
            .map(Option::is_some)
            .collect();
        let mut report = AttachReport::default();
        let mut wanted = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if !exists[i] {
                continue;
            }
            wanted.push(name.clone());
            let r = if i < workloads.len() {
                self.attach(name)
            } else {
                self.attach_uplink(name)
            };
            match r {
                Ok(Attach::Attached) => report.attached.push(name.clone()),
                Ok(Attach::AlreadyAttached) => {}
                Err(e) => report.failed.push((name.clone(), e)),
            }
        }
        for name in self.attached()? {
            if !wanted.contains(&name) {
                match self.detach(&name) {
                    Ok(_) => report.detached.push(name),
                    Err(e) => report.failed.push((name, e)),
                }
            }
        }
        Ok(report)
    }

    /// The interfaces with a pinned link.
    pub fn attached(&self) -> Result<Vec<String>, EbpfError> {
        let mut v: Vec<String> = fs::read_dir(self.config.pin_dir.join(LINKS_DIR))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    /// Make the maps hold felix's desired state: routes from `routes` (the
    /// same desired routes as the kernel's) and the host addresses `hosts`,
    /// endpoints from `endpoints`,
    /// interfaces resolved in the configured namespace. Writes only the
    /// difference.
    pub fn sync_desired(
        &mut self,
        routes: &DesiredRoutes,
        hosts: &Hosts,
        pools: &[Pool],
        local_subnets: &[IpNet],
        endpoints: &[Endpoint],
    ) -> Result<SyncStats, EbpfError> {
        let mut names: Vec<String> = routes
            .values()
            .filter_map(|t| match t {
                crate::route::Target::Device(d) => Some(d.clone()),
                _ => None,
            })
            .chain(endpoints.iter().map(|e| e.interface.clone()))
            .collect();
        names.sort();
        names.dedup();
        let links: BTreeMap<String, _> = names
            .iter()
            .cloned()
            .zip(links_in(self.config.netns.as_deref(), &names)?)
            .collect();
        let link = |n: &str| links.get(n).copied().flatten();
        let r = route_entries(routes, hosts, pools, local_subnets, link);
        let e = endpoint_entries(endpoints, link);
        self.names = endpoints
            .iter()
            .filter_map(|ep| Some((link(&ep.interface)?.ifindex, ep.interface.clone())))
            .collect();
        self.sync(&r, &e)
    }

    /// The endpoints' interface names by index (as of the last
    /// [`Dataplane::sync_desired`]).
    pub fn endpoint_names(&self) -> &BTreeMap<u32, String> {
        &self.names
    }

    /// How many route entries (both families) and endpoint entries the
    /// maps hold.
    pub fn entries(&self) -> (usize, usize) {
        (self.routes.len(), self.eps.len())
    }

    /// Make the maps hold exactly `routes` and `endpoints`, writing only the
    /// difference from what they hold.
    pub fn sync(
        &mut self,
        routes: &RouteEntries,
        endpoints: &EndpointEntries,
    ) -> Result<SyncStats, EbpfError> {
        let mut stats = SyncStats::default();
        // The cache is replaced whole once every write went through (cheaper
        // than an update per entry); after a failure it is read back from
        // the kernel, so the next sync writes exactly what is still missing.
        if let Err(e) = self.write_routes(routes, &mut stats) {
            if let Ok((kernel, _)) = self.dump() {
                self.routes = kernel;
            }
            return Err(e);
        }
        self.routes = routes.clone();
        let d = diff(&self.eps, endpoints);
        for k in &d.delete {
            tolerate_missing(self.endpoints.remove(k)).map_err(map_err(ENDPOINTS))?;
            tolerate_missing(self.counters.remove(k)).map_err(map_err(COUNTERS))?;
            self.eps.remove(k);
            stats.endpoints_deleted += 1;
        }
        for (k, v) in &d.put {
            self.endpoints.insert(k, v, 0).map_err(map_err(ENDPOINTS))?;
            self.eps.insert(*k, *v);
            stats.endpoints_put += 1;
        }
        Ok(stats)
    }

    /// The route map writes from the cache to `routes`, batched
    /// ([`map_batch`]).
    fn write_routes(
        &mut self,
        routes: &RouteEntries,
        stats: &mut SyncStats,
    ) -> Result<(), EbpfError> {
        let d = diff(&self.routes, routes);
        let (mut del4, mut del6) = (Vec::new(), Vec::new());
        for k in &d.delete {
            match (key_v4(k), key_v6(k)) {
                (Some(key), _) => del4.push(key),
                (_, Some(key)) => del6.push(key),
                _ => {}
            }
        }
        let (mut put4, mut val4, mut put6, mut val6) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, v) in &d.put {
            match (key_v4(k), key_v6(k)) {
                (Some(key), _) => {
                    put4.push(key);
                    val4.push(*v);
                }
                (_, Some(key)) => {
                    put6.push(key);
                    val6.push(*v);
                }
                _ => {}
            }
        }
        let b = &mut self.batching;
        map_batch::delete_all(&mut self.routes_v4, &del4, b).map_err(map_err(ROUTES_V4))?;
        map_batch::delete_all(&mut self.routes_v6, &del6, b).map_err(map_err(ROUTES_V6))?;
        stats.routes_deleted += d.delete.len();
        map_batch::put_all(&mut self.routes_v4, &put4, &val4, b).map_err(map_err(ROUTES_V4))?;
        map_batch::put_all(&mut self.routes_v6, &put6, &val6, b).map_err(map_err(ROUTES_V6))?;
        stats.routes_put += d.put.len();
        Ok(())
    }

    /// What the maps hold, read from the kernel.
    pub fn dump(&self) -> Result<(RouteEntries, EndpointEntries), EbpfError> {
        let mut routes = RouteEntries::new();
        for item in self.routes_v4.iter() {
            let (k, v) = item.map_err(map_err(ROUTES_V4))?;
            let addr = IpAddr::V4(Ipv4Addr::from(k.data()));
            if let Some(n) = net_of(addr, k.prefix_len()) {
                routes.insert(n, v);
            }
        }
        for item in self.routes_v6.iter() {
            let (k, v) = item.map_err(map_err(ROUTES_V6))?;
            let addr = IpAddr::V6(Ipv6Addr::from(k.data()));
            if let Some(n) = net_of(addr, k.prefix_len()) {
                routes.insert(n, v);
            }
        }
        let mut eps = EndpointEntries::new();
        for item in self.endpoints.iter() {
            let (k, v) = item.map_err(map_err(ENDPOINTS))?;
            eps.insert(k, v);
        }
        Ok((routes, eps))
    }

    /// The counters of the endpoint on host-side interface `ifindex`,
    /// summed over CPUs (zero if it has none yet).
    pub fn counters(&self, ifindex: u32) -> Result<Counters, EbpfError> {
        let mut sum = Counters::default();
        match self.counters.get(&ifindex, 0) {
            Ok(per_cpu) => per_cpu.iter().for_each(|c| sum.add(c)),
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(COUNTERS)(e)),
        }
        Ok(sum)
    }

    /// Every endpoint's counters, by interface index.
    pub fn all_counters(&self) -> Result<BTreeMap<u32, Counters>, EbpfError> {
        let mut out = BTreeMap::new();
        for item in self.counters.iter() {
            let (k, per_cpu) = item.map_err(map_err(COUNTERS))?;
            let e: &mut Counters = out.entry(k).or_default();
            per_cpu.iter().for_each(|c| e.add(c));
        }
        Ok(out)
    }
}

/// A delete of a key that is not there is no error.
fn tolerate_missing(r: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => other,
    }
}
