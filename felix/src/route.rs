//! What felix wants in the kernel: a destination and how to reach it,
//! naming interfaces by name (the reconciler resolves them to indexes).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One next hop of a routed destination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NextHop {
    /// The gateway.
    pub gateway: IpAddr,
    /// The interface to leave by; `None` lets the kernel pick it from its
    /// routes to the gateway.
    pub device: Option<String>,
    /// The gateway is reachable on `device` whatever its addresses say
    /// (overlays route to remote tunnel addresses this way).
    pub onlink: bool,
}

/// How a destination is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Dropped here (a local block's unassigned addresses).
    Blackhole,
    /// Directly on an interface (a workload's host-side veth).
    Device(String),
    /// Through gateways; several = ECMP.
    Via(Vec<NextHop>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Blackhole => f.write_str("blackhole"),
            Target::Device(d) => write!(f, "dev {d}"),
            Target::Via(hops) => {
                for (i, h) in hops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "via {}", h.gateway)?;
                    if let Some(d) = &h.device {
                        write!(f, " dev {d}")?;
                    }
                    if h.onlink {
                        f.write_str(" onlink")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The routes felix wants, by destination.
pub type DesiredRoutes = BTreeMap<IpNet, Target>;
