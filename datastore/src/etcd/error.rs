//! What can go wrong talking to etcd, typed so callers can branch: retry a
//! compare-and-swap on [`Error::Conflict`], re-list on
//! [`Error::Compacted`], back off on [`Error::Unavailable`], skip (and log)
//! a [`Error::Malformed`] value.

use tonic::Code;

/// A boxed underlying error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of datastore calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A datastore failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A guarded write lost: the key exists (create) or changed since the
    /// given revision (update, delete). Re-read and retry.
    #[error("conflict on {key}: it exists or changed since it was read")]
    Conflict {
        /// The key.
        key: String,
    },
    /// The key to update or delete does not exist.
    #[error("{key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// No member answered in time: connection refused, deadline exceeded,
    /// no leader. The outcome of a write that fails so is unknown.
    #[error("etcd unavailable at {}: {source}", endpoints.join(","))]
    Unavailable {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// What the client saw.
        #[source]
        source: BoxError,
    },
    /// A value that is not the JSON its key calls for.
    #[error("malformed value at {key}: {error}")]
    Malformed {
        /// The key.
        key: String,
        /// What was wrong with it.
        error: String,
    },
    /// The revision a list asked for has been compacted away; list again
    /// at the current revision. (A watch reports this as
    /// [`super::WatchEvent::Compacted`].)
    #[error("etcd revision {revision} has been compacted")]
    Compacted {
        /// The revision asked for.
        revision: i64,
    },
    /// TLS with etcd does not work with these settings: `problem` says
    /// what (see [`super::diagnose`]). Not transient: fix the settings.
    #[error("TLS with etcd failed at {problem}")]
    Tls {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// The endpoint and what is wrong, e.g. "etcd requires a client
        /// certificate and none is set ...".
        problem: String,
    },
    /// The etcd settings are unusable (see [`super::EtcdConfig`]).
    #[error("etcd config: {0}")]
    Config(String),
    /// etcd refused the credentials or the permission.
    #[error("etcd refused access: {source}")]
    Auth {
        /// etcd's answer.
        #[source]
        source: BoxError,
    },
    /// Any other failure etcd reported.
    #[error("etcd request failed: {source}")]
    Etcd {
        /// etcd's answer.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether this is [`Error::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Whether this is a failure a TLS problem may hide behind: a
    /// certificate error, or a connection closed, reset or cancelled under
    /// the client (how a refused client certificate reaches the gRPC
    /// client, depending on timing).
    pub(crate) fn may_be_tls(&self) -> bool {
        let Error::Unavailable { source, .. } = self else {
            return false;
        };
        let text = format!("{source:?}").to_ascii_lowercase();
        [
            "certificate",
            "connection closed",
            "canceled",
            "handshake",
            "tls",
            "broken pipe",
            "connection reset",
            "transport error",
        ]
        .iter()
        .any(|m| text.contains(m))
    }

    /// An [`Error::Unavailable`] for a request that ran out of time.
    pub(crate) fn deadline(endpoints: &[String], timeout: std::time::Duration) -> Self {
        Error::Unavailable {
            endpoints: endpoints.to_vec(),
            source: format!("no answer within {timeout:?}").into(),
        }
    }

    /// Map an etcd-client error. `revision` is the revision the request
    /// asked for, reported by [`Error::Compacted`].
    pub(crate) fn from_client(
        err: etcd_client::Error,
        endpoints: &[String],
        revision: Option<i64>,
    ) -> Self {
        use etcd_client::Error as E;
        let unavailable = |source: BoxError| Error::Unavailable {
            endpoints: endpoints.to_vec(),
            source,
        };
        match err {
            E::GRpcStatus(status) => {
                let message = status.message().to_string();
                match classify(status.code(), &message) {
                    Kind::Unavailable => unavailable(Box::new(status)),
                    Kind::Compacted => Error::Compacted {
                        revision: revision.unwrap_or_default(),
                    },
                    Kind::Auth => Error::Auth {
                        source: Box::new(status),
                    },
                    Kind::Other => Error::Etcd {
                        source: Box::new(status),
                    },
                }
            }
            E::TransportError(e) => unavailable(Box::new(e)),
            E::IoError(e) => unavailable(Box::new(e)),
            E::InvalidArgs(m) => Error::Config(m),
            E::InvalidUri(e) => Error::Config(format!("invalid etcd endpoint: {e}")),
            other => Error::Etcd {
                source: Box::new(other),
            },
        }
    }
}

/// What a gRPC status means to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Compacted,
    Auth,
    Other,
}

fn classify(code: Code, message: &str) -> Kind {
    match code {
        // etcd's "no leader", "leader changed", "request timed out" and
        // tonic's connect failures are all Unavailable.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Kind::Unavailable,
        Code::OutOfRange if message.contains("compacted") => Kind::Compacted,
        Code::Unauthenticated | Code::PermissionDenied => Kind::Auth,
        // A connection torn down mid-call reaches tonic as Unknown.
        Code::Unknown
            if [
                "transport",
                "connect",
                "broken pipe",
                "h2 protocol",
                "connection",
            ]
            .iter()
            .any(|m| message.contains(m)) =>
        {
            Kind::Unavailable
        }
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_grpc_codes() {
        assert_eq!(
            classify(Code::Unavailable, "etcdserver: no leader"),
            Kind::Unavailable
        );
        assert_eq!(classify(Code::DeadlineExceeded, ""), Kind::Unavailable);
        assert_eq!(
            classify(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            ),
            Kind::Compacted
        );
        assert_eq!(
            classify(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision"
            ),
            Kind::Other
        );
        assert_eq!(classify(Code::PermissionDenied, ""), Kind::Auth);
        assert_eq!(classify(Code::InvalidArgument, ""), Kind::Other);
    }
}
