//! CNI errors: the JSON object a runtime reads on stdout when a plugin
//! fails (`{"cniVersion","code","msg","details"}`), with the spec's
//! well-known codes and manul's own (100 and up).

use serde::Serialize;

/// The spec's code 1: the runtime asked for a version this plugin lacks.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// The spec's code 4: a `CNI_*` variable is missing or wrong.
pub const INVALID_ENV: u32 = 4;
/// The spec's code 5: an I/O failure (netlink, namespaces).
pub const IO_FAILURE: u32 = 5;
/// The spec's code 6: stdin is not JSON.
pub const DECODE_FAILURE: u32 = 6;
/// The spec's code 7: the network configuration is invalid.
pub const INVALID_CONFIG: u32 = 7;
/// The spec's code 11: try again later (etcd unreachable, a conflict).
pub const TRY_AGAIN_LATER: u32 = 11;
/// STATUS: the plugin cannot serve ADD now (spec 1.1.0).
pub const NOT_AVAILABLE: u32 = 50;
/// manul: IPAM could not assign (pool exhausted, no pool, block limit).
pub const IPAM_FAILURE: u32 = 100;
/// manul: etcd refused or failed a request that is not transient.
pub const DATASTORE_FAILURE: u32 = 101;
/// manul: CHECK found the container's network not as ADD left it.
pub const CHECK_FAILED: u32 = 102;

/// A failed command: a code and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniError {
    /// One of the constants of this module.
    pub code: u32,
    /// What went wrong, one line.
    pub msg: String,
    /// Underlying details (the error chain), may be empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with a code and message.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with details.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The JSON the runtime reads, for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["cniVersion"] = cni_version.into();
        v.to_string()
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)
    }
}

impl std::error::Error for CniError {}

impl From<manul_ipam::IpamError> for CniError {
    fn from(e: manul_ipam::IpamError) -> Self {
        use manul_ipam::IpamError as E;
        let code = match &e {
            E::Datastore(d) => return datastore(d, "IPAM"),
            E::PoolExhausted { .. } | E::NoPools { .. } | E::BlockLimit { .. } => IPAM_FAILURE,
            E::UnknownPool(_) => INVALID_CONFIG,
            _ => IPAM_FAILURE,
        };
        CniError::new(code, format!("IPAM: {e}"))
    }
}

/// An etcd failure during `what`: transient ones are "try again later".
pub fn datastore(e: &manul_datastore::etcd::Error, what: &str) -> CniError {
    use manul_datastore::etcd::Error as E;
    let code = match e {
        E::Unavailable { .. } | E::Conflict { .. } => TRY_AGAIN_LATER,
        E::Config(_) | E::Tls { .. } => INVALID_CONFIG,
        _ => DATASTORE_FAILURE,
    };
    CniError::new(code, format!("{what}: {e}"))
}

/// A netlink or namespace failure during `what`.
pub fn io(what: &str, e: impl std::fmt::Display) -> CniError {
    CniError::new(IO_FAILURE, format!("{what}: {e}"))
}

/// The result type of this crate.
pub type Result<T, E = CniError> = std::result::Result<T, E>;
