//! What can go wrong with the eBPF dataplane.

use std::path::PathBuf;

/// An eBPF dataplane error. [`EbpfError::Unsupported`] means this kernel
/// or host cannot run the programs: felix goes on with kernel routes only.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The kernel or host lacks a feature the programs need.
    #[error("eBPF dataplane unsupported here: {0}; felix continues with kernel routes only")]
    Unsupported(String),
    /// Loading (the verifier) or pinning failed.
    #[error("loading the eBPF programs: {0}")]
    Load(String),
    /// A pinned object exists but is not what manul pins there.
    #[error("pinned object {path} is unusable: {reason} (remove it with felix's cleanup)")]
    Pinned { path: PathBuf, reason: String },
    /// Attaching or detaching on an interface failed.
    #[error("interface {interface}: {reason}")]
    Attach { interface: String, reason: String },
    /// Reading or writing a map failed.
    #[error("map {map}: {reason}")]
    Map { map: &'static str, reason: String },
    /// An I/O error (bpffs, namespaces).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
