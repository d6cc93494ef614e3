//! NLRI: a prefix, with a path identifier when ADD-PATH is on (RFC 7911).

use ipnet::IpNet;

/// One reachability entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    /// Present exactly when ADD-PATH is negotiated for the family and direction.
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Self {
            prefix,
            path_id: None,
        }
    }
}
