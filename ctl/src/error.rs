//! What can go wrong, as exit codes a script can branch on, and the
//! translation of datastore errors into messages that say what to do.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | general failure or bad usage (unknown flag, bad etcd settings) |
//! | 2 | invalid input: a file that does not parse or validate, an unknown kind |
//! | 3 | not found: the named object does not exist |
//! | 4 | conflict: the object changed since it was read (`resourceVersion`) |
//! | 5 | etcd unavailable: no member answered in time |
//! | 6 | etcd refused access: credentials or certificate rejected |
//! | 7 | `ipam check` found problems |
//!
//! Commands return `anyhow::Error`s; the code comes from the first
//! [`CtlError`] or datastore [`Error`] found in the error's chain (1 when
//! there is none). IPAM errors are translated by [`ipam_error`].

use std::fmt;

use manul_datastore::etcd::Error;
use manul_ipam::IpamError;

/// The failure classes, one exit code each (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 1: anything else, and bad usage.
    General,
    /// 2: input that does not parse or validate.
    Invalid,
    /// 3: the named object does not exist.
    NotFound,
    /// 4: the object changed since it was read.
    Conflict,
    /// 5: no etcd member answered.
    Unavailable,
    /// 6: etcd refused the credentials.
    Auth,
    /// 7: `ipam check` found problems.
    Problems,
}

impl Failure {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Failure::General => 1,
            Failure::Invalid => 2,
            Failure::NotFound => 3,
            Failure::Conflict => 4,
            Failure::Unavailable => 5,
            Failure::Auth => 6,
            Failure::Problems => 7,
        }
    }
}

/// The exit-code table as shown in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  general failure or bad usage (unknown flag, unusable etcd settings)
  2  invalid input (a file that does not parse or validate, an unknown kind)
  3  not found (the named object does not exist; replace of an absent object)
  4  conflict (the object changed since it was read, a stale resourceVersion:
     re-read and retry; create of an object that exists)
  5  etcd unavailable (no member answered: check --etcd-endpoints)
  6  etcd refused access (check --etcd-username/--etcd-password or the certificate)
  7  `ipam check` found problems (the report lists them)";

/// An error with its failure class; its message is complete (what was
/// wrong and what to do).
#[derive(Debug)]
pub struct CtlError {
    /// Which exit code.
    pub failure: Failure,
    /// The whole message, possibly several lines.
    pub message: String,
}

impl CtlError {
    /// A new error of class `failure`.
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        CtlError {
            failure,
            message: message.into(),
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

/// Shorthand: an `anyhow::Error` of class `failure`.
pub fn fail(failure: Failure, message: impl Into<String>) -> anyhow::Error {
    CtlError::new(failure, message).into()
}

/// The failure class of an error chain.
pub fn classify(err: &anyhow::Error) -> Failure {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CtlError>() {
            return e.failure;
        }
        if let Some(e) = cause.downcast_ref::<Error>() {
            return failure_of(e);
        }
    }
    Failure::General
}

fn failure_of(e: &Error) -> Failure {
    match e {
        Error::Conflict { .. } => Failure::Conflict,
        Error::NotFound { .. } => Failure::NotFound,
        Error::Unavailable { .. } => Failure::Unavailable,
        Error::Auth { .. } | Error::Tls { .. } => Failure::Auth,
        Error::Malformed { .. }
        | Error::Compacted { .. }
        | Error::Config(_)
        | Error::Etcd { .. } => Failure::General,
    }
}

/// The short reason inside a client error and its causes, e.g.
/// `connection refused`.
fn reason(source: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut next = Some(source);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    for (needle, short) in [
        ("connection refused", "connection refused"),
        ("no route to host", "no route to host"),
        ("name or service not known", "host name not known"),
        ("failed to lookup address", "host name not known"),
        ("no leader", "the cluster has no leader"),
        ("certificate", "TLS certificate problem"),
    ] {
        if lower.contains(needle) {
            return short.to_owned();
        }
    }
    // tonic's Status prints its fields; its message is the useful part.
    match text.split_once("message: \"") {
        Some((_, rest)) => rest.split('"').next().unwrap_or(rest).to_owned(),
        None => text,
    }
}

/// A datastore error as a message that says what to do, keeping its
/// failure class. `doing` says what manulctl was doing, e.g.
/// `reading IPPool "pool-a"`.
pub fn etcd_error(e: Error, doing: &str) -> anyhow::Error {
    let failure = failure_of(&e);
    let message = match &e {
        Error::Unavailable { endpoints, source } => format!(
            "cannot reach etcd at {} ({}) while {doing}: check that etcd is running and that \
             --etcd-endpoints / ETCD_ENDPOINTS name its client URLs",
            endpoints.join(","),
            reason(source.as_ref()),
        ),
        Error::Auth { source } => format!(
            "etcd refused access while {doing} ({source}): check --etcd-username / \
             --etcd-password (ETCD_USERNAME / ETCD_PASSWORD) or the client certificate"
        ),
        Error::Tls { problem, .. } => format!("TLS with etcd failed while {doing}: {problem}"),
        Error::Config(msg) => format!(
            "unusable etcd settings: {msg} (set by the --etcd-* flags or the ETCD_* variables)"
        ),
        Error::Conflict { key } => format!(
            "{key} changed while {doing}; someone else wrote it at the same time: run the \
             command again"
        ),
        Error::NotFound { key } => format!("{key} does not exist (while {doing})"),
        Error::Malformed { key, error } => format!(
            "the value stored at {key} is not valid ({error}) while {doing}: fix it or remove \
             it with etcdctl"
        ),
        other => format!("{other} while {doing}"),
    };
    CtlError::new(failure, message).into()
}

/// `map_err` helper: `ds.get(k).await.map_err(etcd(\"reading X\"))`.
pub fn etcd(doing: impl Into<String>) -> impl FnOnce(Error) -> anyhow::Error {
    let doing = doing.into();
    move |e| etcd_error(e, &doing)
}

/// An IPAM library error as a message that says what to do, with its
/// failure class. `doing` as for [`etcd_error`].
pub fn ipam_error(e: IpamError, doing: &str) -> anyhow::Error {
    let (failure, message) = match e {
        IpamError::Datastore(e) => return etcd_error(e, doing),
        e @ (IpamError::InvalidConfig(_) | IpamError::InvalidArgument(_)) => {
            (Failure::Invalid, e.to_string())
        }
        e @ IpamError::ReportRefused(_) => (
            Failure::Invalid,
            format!("{e}: take a new report on this cluster with `manulctl ipam check -o FILE`"),
        ),
        e @ IpamError::ReportAhead { .. } => (
            Failure::Invalid,
            format!(
                "{e}. Take a new report with `manulctl ipam check -o FILE`; or, if etcd was \
                 restored from a backup and you checked the report against it, apply it with \
                 --force"
            ),
        ),
        e @ IpamError::NotInPool(_) => (
            Failure::NotFound,
            format!("{e}: list the pools with `manulctl get ippools`"),
        ),
        e @ IpamError::TooManyRetries { .. } => (Failure::Conflict, e.to_string()),
        e @ IpamError::Malformed { .. } => (
            Failure::General,
            format!("{e} while {doing}: `manulctl ipam check` lists every such value"),
        ),
        e => (Failure::General, format!("{e} while {doing}")),
    };
    CtlError::new(failure, message).into()
}

/// `map_err` helper for IPAM calls, like [`etcd`].
pub fn ipam(doing: impl Into<String>) -> impl FnOnce(IpamError) -> anyhow::Error {
    let doing = doing.into();
    move |e| ipam_error(e, &doing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_names_the_endpoint_and_the_flag() {
        let e = etcd_error(
            Error::Unavailable {
                endpoints: vec!["http://127.0.0.1:2379".into()],
                source: "tcp connect error: Connection refused (os error 111)".into(),
            },
            "listing IPPools",
        );
        let msg = e.to_string();
        assert!(
            msg.contains("http://127.0.0.1:2379 (connection refused)"),
            "{msg}"
        );
        assert!(msg.contains("--etcd-endpoints"), "{msg}");
        assert_eq!(classify(&e), Failure::Unavailable);
        assert_eq!(classify(&e).code(), 5);
    }

    #[test]
    fn ipam_errors_keep_their_class() {
        let e = ipam_error(
            IpamError::InvalidConfig("maxBlocksPerHost requires strict_affinity".into()),
            "configuring IPAM",
        );
        assert_eq!(classify(&e).code(), 2);
        let e = ipam_error(
            IpamError::Datastore(Error::Auth {
                source: "denied".into(),
            }),
            "reading blocks",
        );
        assert_eq!(classify(&e).code(), 6);
        let e = ipam_error(
            IpamError::ReportAhead {
                report: 9,
                datastore: 3,
            },
            "applying",
        );
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(classify(&e).code(), 2);
    }

    #[test]
    fn classifies_through_context() {
        let e = anyhow::Error::from(Error::NotFound { key: "/k".into() }).context("deleting");
        assert_eq!(classify(&e), Failure::NotFound);
        let e = fail(Failure::Invalid, "bad").context("applying");
        assert_eq!(classify(&e).code(), 2);
        assert_eq!(classify(&anyhow::anyhow!("other")).code(), 1);
    }
}
