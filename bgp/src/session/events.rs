//! What flows between a peer's task and the speaker core: the core's
//! [`PeerCommand`]s (plain values) reach the task wrapped in a
//! [`ToPeerTask`], next to what only the driver has (connections) or does
//! (stopping tasks); the task reports [`PeerEvent`]s.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::fsm::{DownReason, State};
use crate::rib::PeerIndex;
use crate::rib::adj_out::OutUpdate;
use crate::rib::change::RibChange;
use crate::speaker::PeerConfig;
use crate::types::Family;
use crate::wire::Notification;
use crate::wire::negotiate::Negotiated;

/// Core -> a peer's session: what to send or change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCommand {
    /// Routes to announce and withdraw.
    Send(OutUpdate),
    /// End-of-RIB marker for a family (RFC 4724 §2).
    EndOfRib(Family),
    /// Enhanced route refresh borders (RFC 7313): 1 = BoRR, 2 = EoRR.
    RefreshBorder { family: Family, subtype: u8 },
    /// Ask the peer to resend its routes (RFC 2918).
    RequestRefresh(Family),
    /// Close the session with this NOTIFICATION (max-prefix, ...).
    Reset(Notification),
    /// New settings that do not shape the session (see `PeerConfig::needs_reset`).
    Reconfigure(Box<PeerConfig>),
}

/// Driver -> peer task.
#[derive(Debug)]
pub enum ToPeerTask {
    /// From the core.
    Command(PeerCommand),
    /// A connection the listener accepted from this peer's address.
    Incoming(TcpStream),
    /// Stop the session and end the task. `notify`: send Cease /
    /// Administrative Shutdown with this message; `None` closes silently
    /// (graceful restart keeps routes).
    Stop { notify: Option<String> },
}

/// Peer task -> core.
#[derive(Debug)]
pub enum PeerEvent {
    State {
        peer: PeerIndex,
        state: State,
    },
    Up {
        peer: PeerIndex,
        negotiated: Box<Negotiated>,
        peer_router_id: std::net::Ipv4Addr,
        peer_asn: u32,
        local: SocketAddr,
        remote: SocketAddr,
        /// The addresses of the interface holding `local` (empty: not
        /// known), for next hops of the other family.
        interface: Vec<ipnet::IpNet>,
    },
    /// Routes received (post RFC 7606 handling; treat-as-withdraw already
    /// turned into withdrawals).
    Routes {
        peer: PeerIndex,
        changes: Vec<RibChange>,
    },
    EndOfRib {
        peer: PeerIndex,
        family: Family,
    },
    RouteRefresh {
        peer: PeerIndex,
        family: Family,
        subtype: u8,
    },
    Down {
        peer: PeerIndex,
        reason: DownReason,
    },
    /// Malformed UPDATEs handled (RFC 7606) since the last report.
    Malformed {
        peer: PeerIndex,
        counts: crate::speaker::MalformedCounts,
    },
    /// Something worth showing in the peer's status (last error).
    Problem {
        peer: PeerIndex,
        message: String,
    },
    /// The task is ending: nothing more comes from it, so its index may
    /// be given to another peer.
    Ended {
        peer: PeerIndex,
    },
}

impl PeerEvent {
    /// The peer whose session reports it.
    pub fn peer(&self) -> PeerIndex {
        match self {
            PeerEvent::State { peer, .. }
            | PeerEvent::Up { peer, .. }
            | PeerEvent::Routes { peer, .. }
            | PeerEvent::EndOfRib { peer, .. }
            | PeerEvent::RouteRefresh { peer, .. }
            | PeerEvent::Down { peer, .. }
            | PeerEvent::Problem { peer, .. }
            | PeerEvent::Malformed { peer, .. }
            | PeerEvent::Ended { peer } => *peer,
        }
    }
}
