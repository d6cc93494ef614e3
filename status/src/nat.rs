//! NAT outgoing (Calico's `natOutgoing`), as `/status` shows it: which
//! pools masquerade, and whether felix's nftables table (`inet manul`)
//! holds them.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// felix's NAT table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatStatus {
    /// Whether felix has been told the pools yet (before that it writes
    /// nothing).
    pub desired: bool,
    /// Pools with `natOutgoing`: traffic from them to outside every pool is
    /// masqueraded to the host's address.
    pub nat_pools: Vec<IpNet>,
    /// Every pool (destinations never masqueraded), disabled ones included.
    pub pools: Vec<IpNet>,
    /// Whether the kernel held the table as wanted at the last check.
    pub in_sync: bool,
    /// The last failure, while it lasts.
    pub last_error: Option<String>,
    /// Failed attempts to program the table since start.
    pub failures: u64,
    /// Times the table was found changed by someone else and put right.
    pub repairs: u64,
}
