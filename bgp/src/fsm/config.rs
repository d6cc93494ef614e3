//! What the state machine needs to know about the session it runs.

use std::time::Duration;

use crate::types::{Asn, RouterId};
use crate::wire::Capability;

/// Timer settings (RFC 4271 §10, with the optional §8.1.1 attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    /// Hold time proposed in our OPEN, seconds; 0 disables keepalives (§4.2).
    pub hold_time: u16,
    /// Keepalive interval; `None` = a third of the negotiated hold time (§10).
    pub keepalive: Option<Duration>,
    /// Wait between connection attempts (§10 suggests 120 s; a node agent on
    /// a cluster fabric wants to reconnect faster: 5 s).
    pub connect_retry: Duration,
    /// First wait after the peer refused our connection
    /// ([`crate::fsm::Event::TcpConnectionRefused`]); doubles with each
    /// refusal in a row until it reaches `connect_retry`, after which
    /// refusals count as any other failure.
    pub refused_retry: Duration,
    /// Hold time while waiting for the peer's OPEN (§8.2.2: "a large value",
    /// suggested 4 minutes).
    pub open_hold: Duration,
    /// DelayOpen (§8.1.1): wait this long for the peer's OPEN before sending ours.
    pub delay_open: Option<Duration>,
    /// First idle-hold after a failed session (DampPeerOscillations, §8.1.1);
    /// doubles on each consecutive failure up to `idle_hold_max`.
    pub idle_hold: Duration,
    pub idle_hold_max: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            refused_retry: Duration::from_millis(100),
            open_hold: Duration::from_secs(240),
            delay_open: None,
            idle_hold: Duration::from_secs(1),
            idle_hold_max: Duration::from_secs(60),
        }
    }
}

/// The session's identity and behaviour.
#[derive(Debug, Clone)]
pub struct FsmConfig {
    pub local_asn: Asn,
    /// The AS the peer must announce; `None` accepts any (dynamic peers whose
    /// AS is learned from their OPEN).
    pub peer_asn: Option<Asn>,
    pub router_id: RouterId,
    /// Never initiate a connection; wait for the peer (§8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    /// Capabilities to put in our OPEN.
    pub capabilities: Vec<Capability>,
    pub timers: Timers,
}
