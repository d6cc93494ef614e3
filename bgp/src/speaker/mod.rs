//! The speaker: the API the node agent (and `manul-bgpd`) drives.
//!
//! [`Speaker::start`] binds the listeners and starts the core on a thread
//! of its own: [`core`] decides (a state machine without I/O over the RIB
//! and the peers), `driver` does (channels, listeners, timers, a task per
//! peer, [`crate::session::peer`]). Peers can be added, changed and
//! removed live; prefixes originated and withdrawn; best-path and peer
//! status changes subscribed to.

pub mod config;
pub mod core;
mod driver;
mod error;
mod handle;
pub mod status;

pub use config::{
    AddPathConfig, AddPathSend, ExportMode, GracefulRestartConfig, ImportMode, ListenRange,
    PeerConfig, PeerOptions, SpeakerConfig,
};
pub use error::{PeerError, SpeakerError};
pub use handle::{PeerEdit, Speaker};
pub use status::{CapabilitySummary, MalformedCounts, PeerChange, PeerStatus};
