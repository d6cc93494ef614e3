//! The machine's inputs (RFC 4271 §8.1 events) and outputs.

use std::time::Duration;

use crate::wire::{Notification, Open};

/// Session states (RFC 4271 §8.2.2). Serialised as the RFC names them
/// ([`State::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Inputs, named after the RFC 4271 §8.1 events they stand for. Timer
/// expiries (events 9-13) are not inputs: the machine keeps its timers and
/// fires them in [`crate::fsm::Fsm::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1/4/5: start the session (actively or passively per config).
    ManualStart,
    /// Event 2: stop. `notify` = send Cease/Administrative Shutdown (with an
    /// RFC 9003 message); a planned restart that relies on graceful restart
    /// must pass `None` so peers keep our routes.
    ManualStop {
        notify: Option<String>,
    },
    /// Event 16: our outgoing connection succeeded.
    TcpCrAcked,
    /// Event 17: we accepted the peer's connection.
    TcpConnectionConfirmed,
    /// Event 18: the connection failed or closed.
    TcpConnectionFails,
    /// Event 18 with proof that the peer's host is up but its BGP does
    /// not take us yet: our connection was refused (a RST to our SYN), or
    /// was closed before the peer sent anything (its speaker is not
    /// listening yet, or does not know us yet). In a cluster that starts
    /// together this is the normal case for a few hundred milliseconds,
    /// so the retry comes sooner ([`crate::fsm::Timers::refused_retry`]);
    /// otherwise it is [`Event::TcpConnectionFails`].
    TcpConnectionRefused,
    /// Event 19/20: a valid OPEN arrived.
    BgpOpen(Open),
    /// Event 21/22: a message header or OPEN error; the NOTIFICATION to send.
    BgpHeaderErr(Notification),
    BgpOpenMsgErr(Notification),
    /// Event 23: this connection lost a collision (§6.8).
    OpenCollisionDump,
    /// Event 24/25: a NOTIFICATION arrived.
    NotifMsg(Notification),
    /// Event 26: KEEPALIVE.
    KeepAliveMsg,
    /// Event 27: a valid UPDATE (or ROUTE-REFRESH: it also shows the peer alive).
    UpdateMsg,
    /// Event 28: an UPDATE error that resets the session; the NOTIFICATION to send.
    UpdateMsgErr(Notification),
    /// Not in the RFC: a local limit (max-prefix, Cease 6/1) or policy
    /// decided to close the session with this NOTIFICATION.
    LocalReset(Notification),
}

/// Why a session left Established (or never got there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We stopped it (ManualStop).
    Stopped,
    HoldTimerExpired,
    ConnectionLost,
    /// The peer sent this NOTIFICATION.
    PeerNotification(Notification),
    /// We sent this NOTIFICATION.
    LocalNotification(Notification),
    /// A connection collision was resolved against this connection.
    Collision,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an outgoing TCP connection to the peer.
    Connect,
    /// Close the TCP connection (after sending anything queued before it).
    DropConnection,
    SendOpen(Open),
    SendKeepalive,
    SendNotification(Notification),
    /// The session reached Established. Negotiated hold time and keepalive
    /// interval (zero = none) and the peer's OPEN, to negotiate capabilities.
    Established {
        peer_open: Open,
        hold_time: u16,
        keepalive: Duration,
    },
    /// A session that had been Established went down; release its routes
    /// (or keep them stale for graceful restart).
    Down(DownReason),
}
