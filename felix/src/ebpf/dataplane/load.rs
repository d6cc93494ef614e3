//! Loading the programs (the verifier runs here) and pinning them and
//! their maps under the pin directory; [`cleanup`] removes every pin, so
//! every attachment, program and map goes with it.

use std::fs;
use std::io;
use std::path::Path;

use aya::programs::SchedClassifier;
use aya::{EbpfLoader, include_bytes_aligned};
use manul_ebpf_common::{
    COUNTERS, ENDPOINTS, PROG_UPLINK_INGRESS, PROG_WORKLOAD_INGRESS, ROUTES_V4, ROUTES_V6,
};

use super::{Dataplane, DataplaneConfig, LINKS_DIR, chain};
use crate::ebpf::error::EbpfError;
use crate::ebpf::legacy;
use crate::netns::in_netns;

/// The programs' pins, under the pin directory.
pub(super) const PROG_PINS: [(&str, &str); 2] = [
    (PROG_WORKLOAD_INGRESS, "prog_workload_ingress"),
    (PROG_UPLINK_INGRESS, "prog_uplink_ingress"),
];

/// The programs, as built by `build.rs` from `ebpf/programs`.
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/manul-tc"));

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

impl Dataplane {
    /// Load the object (the verifier runs here), pin its maps (reusing
    /// pinned ones) and its programs (replacing pinned ones).
    pub(super) fn load_and_pin(config: &DataplaneConfig) -> Result<(), EbpfError> {
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
}
