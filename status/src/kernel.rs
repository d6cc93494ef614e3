//! felix's kernel routes, as `/status` shows them: what the kernel holds
//! (routes with felix's protocol, 80, in its table, as felix sees them
//! from its dump and the kernel's notifications), what felix wants, and
//! whether it is holding its writes.
//!
//! felix holds after the agent starts, until BGP has converged, so that
//! a restart does not withdraw the routes the last run left while the
//! sessions come back; and after a speaker restart, when it keeps the
//! remote routes it has until the new speaker has converged. A hold ends
//! at `until` at the latest.

use serde::{Deserialize, Serialize};

/// felix's routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRoutes {
    /// Routes the kernel holds that felix owns, by family.
    pub kernel: FamilyCount,
    /// Routes felix wants; `None` before its first desired set (while
    /// holding after a start).
    pub desired: Option<usize>,
    /// Remote prefixes felix routes to (learned over BGP, or from IPAM
    /// blocks for VXLAN pools).
    pub remote_prefixes: usize,
    /// Desired routes whose write failed (retried every second).
    pub failed: usize,
    /// Desired routes another owner's route blocks.
    pub blocked: usize,
    /// Route writes since start.
    pub writes: u64,
    /// Set while felix holds its writes.
    pub holding: Option<Hold>,
    /// Pools whose remote routes felix does not program, and why (an
    /// IPIP pool: manul builds no IPIP tunnels).
    #[serde(default)]
    pub refused_pools: Vec<RefusedPool>,
}

/// A pool felix does not program routes for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPool {
    /// The IPPool's name.
    pub pool: String,
    /// Why, for an operator.
    pub reason: String,
}

/// A count per address family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCount {
    pub ipv4: usize,
    pub ipv6: usize,
}

impl FamilyCount {
    /// Both families.
    pub fn total(&self) -> usize {
        self.ipv4 + self.ipv6
    }
}

/// felix is holding its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Why.
    pub reason: HoldReason,
    /// Since when (Unix seconds).
    pub since: u64,
    /// Until BGP has converged, at the latest this (Unix seconds);
    /// `None` while that is not known yet (the agent waits for its first
    /// sync with etcd before it starts the speaker).
    pub until: Option<u64>,
}

/// Why felix holds its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldReason {
    /// The agent started: nothing is written before BGP has converged.
    Start,
    /// The speaker restarted: remote routes are kept as they are until
    /// the new one has converged.
    SpeakerRestart,
}

impl HoldReason {
    /// What an operator reads.
    pub fn describe(self) -> &'static str {
        match self {
            HoldReason::Start => "agent start: nothing is written before BGP has converged",
            HoldReason::SpeakerRestart => {
                "speaker restart: remote routes are kept until the new speaker has converged"
            }
        }
    }
}
