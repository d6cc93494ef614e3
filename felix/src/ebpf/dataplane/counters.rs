//! Reading the per-endpoint counters the programs keep (one entry per
//! host-side interface, per CPU), summed over CPUs.

use std::collections::BTreeMap;

use manul_ebpf_common::{COUNTERS, Counters};

use super::{Dataplane, map_err};
use crate::ebpf::error::EbpfError;

impl Dataplane {
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
