//! What can go wrong when driving the speaker.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// Why the speaker refused a change to its peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// `add_peer` for an address that already has a peer (configured, or
    /// dynamic from a listen range).
    #[error("peer {0} already exists")]
    Exists(IpAddr),
    /// `update_peer` or `remove_peer` for an address with no peer.
    #[error("no peer {0}")]
    Unknown(IpAddr),
}

/// A call to the [`crate::speaker::Speaker`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// The speaker stopped (its task ended).
    #[error("the BGP speaker has stopped")]
    Stopped,
    /// The speaker refused a change to its peers.
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("starting the speaker's core thread: {0}")]
    Runtime(io::Error),
}
