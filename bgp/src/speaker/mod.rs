//! The speaker: the API the node agent (and `manul-bgpd`) drives.

pub mod config;

pub use config::{
    ExportMode, GracefulRestartConfig, ImportMode, ListenRange, PeerConfig, PeerOptions,
    SpeakerConfig,
};
