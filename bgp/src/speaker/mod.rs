//! The speaker: the API the node agent (and `manul-bgpd`) drives.
//!
//! [`Speaker::start`] binds the listeners and spawns the core task
//! (`core`): it owns the RIB and runs a task per peer
//! ([`crate::session::peer`]). Peers can be added, changed and removed
//! live; prefixes originated and withdrawn; best-path changes subscribed to.

pub mod config;
mod core;
mod error;
mod handle;
pub mod status;

pub use config::{
    ExportMode, GracefulRestartConfig, ImportMode, ListenRange, PeerConfig, PeerOptions,
    SpeakerConfig,
};
pub use error::{PeerError, SpeakerError};
pub use handle::Speaker;
pub use status::{CapabilitySummary, PeerChange, PeerStatus};
