//! The core's inputs and outputs, and the time it is given.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use ipnet::IpNet;

use crate::rib::{BestChange, PeerIndex};
use crate::session::events::{PeerCommand, PeerEvent};
use crate::speaker::{PeerChange, PeerConfig};
use crate::wire::{Community, LargeCommunity};

/// The time an input happens at: the monotonic clock for timers, the wall
/// clock (Unix seconds) for what status shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub unix_secs: u64,
}

impl Now {
    /// The system's clocks.
    pub fn system() -> Self {
        Self {
            instant: Instant::now(),
            unix_secs: crate::speaker::status::unix_now(),
        }
    }
}

/// A timer the core asked for ([`Output::SetTimer`]) and is told about
/// when it expires ([`Input::Timer`]). Timers are never cancelled: one that
/// no longer applies is ignored when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A restarting peer's stale routes are kept until then (RFC 4724
    /// §4.2). `generation`: which loss of its session it is for.
    Stale { peer: PeerIndex, generation: u64 },
    /// Our own restart: advertise now, whatever peers' End-of-RIB (RFC
    /// 4724 §4.1, the deferral timer).
    Deferral,
}

/// What the core is told.
#[derive(Debug)]
pub enum Input {
    /// Add a configured peer; its session starts at once.
    AddPeer(PeerConfig),
    /// Change a peer (restarting its session only if what shapes it changed).
    UpdatePeer(PeerConfig),
    /// Remove a peer (Cease / Administrative Shutdown) and its routes.
    RemovePeer(IpAddr),
    /// Originate (or change the communities of) a prefix.
    Originate {
        prefix: IpNet,
        communities: Vec<Community>,
        large_communities: Vec<LargeCommunity>,
    },
    /// Stop originating a prefix.
    Withdraw(IpNet),
    /// A listener accepted a connection from `remote`; the driver holds
    /// it until the core says whose it is ([`Output::Accept`]) or drops it.
    Incoming(SocketAddr),
    /// Something a peer's session reports.
    Peer(PeerEvent),
    /// A timer the core set has expired.
    Timer(Timer),
}

/// What the core asks the driver to do, in order.
#[derive(Debug)]
pub enum Output {
    /// Start a session for `peer` with `cfg`. `after`: a peer whose session
    /// was just stopped ([`Output::StopSession`]) and must end first, so
    /// that its Cease reaches the neighbour before the new OPEN.
    StartSession {
        peer: PeerIndex,
        cfg: Box<PeerConfig>,
        after: Option<PeerIndex>,
    },
    /// Stop `peer`'s session: with a Cease / Administrative Shutdown
    /// carrying `notify`, or, with `None`, silently (graceful restart:
    /// the neighbour keeps our routes).
    StopSession {
        peer: PeerIndex,
        notify: Option<String>,
    },
    /// Give the connection of the last [`Input::Incoming`] to `peer`'s session.
    Accept { peer: PeerIndex },
    /// Tell `peer`'s session what to send or change.
    ToPeer {
        peer: PeerIndex,
        command: PeerCommand,
    },
    /// Report [`Input::Timer`] with `timer` at `at`.
    SetTimer { timer: Timer, at: Instant },
    /// Set (`Some`) or clear the TCP-MD5 key (RFC 2385) for connections
    /// from `address` on every listener.
    ListenerKey {
        address: IpAddr,
        key: Option<String>,
    },
    /// Best-path changes, for best-path subscribers (only while
    /// [`crate::speaker::core::Core::set_watch_best`] is on).
    BestChanges(Vec<BestChange>),
    /// Peers whose status changed, for peer subscribers (only while
    /// watched, [`crate::speaker::core::Core::watch_peers`]).
    PeerChanges(Vec<PeerChange>),
}
