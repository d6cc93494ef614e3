//! [`Datastore`]: reads, paged lists at one revision, and Calico's
//! compare-and-swap writes.
//!
//! Writes are the transactions Calico's libcalico-go uses, so both can
//! write the same keys side by side:
//!
//! | call | compare | then | else |
//! |---|---|---|---|
//! | [`Datastore::create`] | `version(key) == 0` | put | [`Error::Conflict`] |
//! | [`Datastore::update`] | `mod_revision(key) == rev`, `version(key) > 0` | put | get: [`Error::NotFound`] if absent, else [`Error::Conflict`] |
//! | [`Datastore::delete`] | same as update | delete | same as update |
//!
//! Each returns the revision its write made. A write that fails with
//! [`Error::Unavailable`] may or may not have happened; re-read to know.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::config::EtcdConfig;
use super::diagnose::TlsProbe;
use super::error::{Error, Result};
use super::kv::{KeyValue, Versioned};

/// Keys fetched per range request by [`Datastore::list`].
pub const DEFAULT_PAGE_SIZE: i64 = 500;
/// First pause before a read is retried on an unavailable cluster; it
/// doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A connection to etcd. Cloning is cheap and clones share connections.
#[derive(Clone)]
pub struct Datastore {
    client: Client,
    endpoints: Arc<[String]>,
    request_timeout: Duration,
    page_size: i64,
    probe: Arc<TlsProbe>,
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datastore")
            .field("endpoints", &self.endpoints)
            .field("request_timeout", &self.request_timeout)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl Datastore {
    /// Set up a client for `config`. Connections are made lazily, so this
    /// succeeds while etcd is down (requests then fail with
    /// [`Error::Unavailable`]) unless a user name is set: logging in is a
    /// request, made here within the dial timeout plus the request timeout.
    pub async fn connect(config: &EtcdConfig) -> Result<Self> {
        let options = config.connect_options()?;
        let endpoints: Arc<[String]> = config.endpoints.clone().into();
        let limit = config.dial_timeout + config.request_timeout;
        let client = match tokio::time::timeout(
            limit,
            Client::connect(config.endpoints.clone(), Some(options)),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(Error::from_client(e, &endpoints, None)),
            Err(_) => return Err(Error::deadline(&endpoints, limit)),
        };
        tracing::debug!(endpoints = ?config.endpoints, tls = config.tls(), "etcd client ready");
        Ok(Datastore {
            client,
            endpoints,
            request_timeout: config.request_timeout,
            page_size: DEFAULT_PAGE_SIZE,
            probe: Arc::new(TlsProbe::new(config)),
        })
    }

    /// The same client, listing `page_size` keys per request (at least 1).
    pub fn with_page_size(mut self, page_size: i64) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The configured endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The deadline of each request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn probe(&self) -> &TlsProbe {
        &self.probe
    }

    /// One key; `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .read(None, |mut kv| {
                let key = key.to_string();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(resp.kvs().first().and_then(KeyValue::from_client))
    }

    /// One key's value decoded as JSON; [`Error::Malformed`] naming the key
    /// when it is not a `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        self.get(key).await?.map(|kv| kv.decode()).transpose()
    }

    /// Every key under `prefix` (plain string prefix: end it with `/` to
    /// keep siblings out), in key order, all read at one revision:
    /// `at_revision`, or the current one. Returns that revision too, so a
    /// watch can resume from the next one. Fetched in pages (see
    /// [`Datastore::with_page_size`]), each page within the request
    /// timeout. [`Error::Compacted`] when `at_revision` is gone.
    pub async fn list(
        &self,
        prefix: &str,
        at_revision: Option<i64>,
    ) -> Result<(Vec<KeyValue>, i64)> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut revision = at_revision.filter(|r| *r > 0);
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(self.page_size);
            if let Some(r) = revision {
                options = options.with_revision(r);
            }
            let resp = self
                .read(revision, |mut kv| {
                    let (start, options) = (start.clone(), options.clone());
                    async move { kv.get(start, Some(options)).await }
                })
                .await?;
            let header_revision = resp.header().map(|h| h.revision()).unwrap_or_default();
            let revision = *revision.get_or_insert(header_revision);
            let kvs = resp.kvs();
            out.extend(kvs.iter().filter_map(KeyValue::from_client));
            match kvs.last() {
                Some(last) if resp.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok((out, revision)),
            }
        }
    }

    /// The store's current revision (a count-only read of one key), e.g.
    /// to know when a resumed watch has caught up.
    pub async fn current_revision(&self) -> Result<i64> {
        let resp = self
            .read(None, |mut kv| async move {
                kv.get("/", Some(GetOptions::new().with_count_only())).await
            })
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Write `value` at `key` if the key does not exist; the write's
    /// revision, or [`Error::Conflict`].
    pub async fn create(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.write(txn).await?;
        if resp.succeeded() {
            Ok(txn_revision(&resp))
        } else {
            Err(Error::Conflict { key: key.into() })
        }
    }

    /// Replace `key`'s value if it was last written at
    /// `expected_mod_revision`; the write's revision, or
    /// [`Error::Conflict`] / [`Error::NotFound`].
    pub async fn update(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        expected_mod_revision: i64,
    ) -> Result<i64> {
        self.guarded(key, expected_mod_revision, TxnOp::put(key, value, None))
            .await
    }

    /// Delete `key` if it was last written at `expected_mod_revision`; the
    /// deletion's revision, or [`Error::Conflict`] / [`Error::NotFound`].
    pub async fn delete(&self, key: &str, expected_mod_revision: i64) -> Result<i64> {
        self.guarded(key, expected_mod_revision, TxnOp::delete(key, None))
            .await
    }

    /// [`Datastore::create`] with `value` as JSON.
    pub async fn create_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<i64> {
        self.create(key, to_json(key, value)?).await
    }

    /// [`Datastore::update`] with `value` as JSON.
    pub async fn update_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expected_mod_revision: i64,
    ) -> Result<i64> {
        self.update(key, to_json(key, value)?, expected_mod_revision)
            .await
    }

    async fn guarded(&self, key: &str, expected_mod_revision: i64, op: TxnOp) -> Result<i64> {
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key, CompareOp::Equal, expected_mod_revision),
                // Absent keys have mod_revision 0: never let 0 match them.
                Compare::version(key, CompareOp::Greater, 0),
            ])
            .and_then([op])
            .or_else([TxnOp::get(key, Some(GetOptions::new().with_keys_only()))]);
        let resp = self.write(txn).await?;
        if resp.succeeded() {
            return Ok(txn_revision(&resp));
        }
        let exists = resp.op_responses().iter().any(|op| match op {
            TxnOpResponse::Get(get) => !get.kvs().is_empty(),
            _ => false,
        });
        Err(if exists {
            Error::Conflict { key: key.into() }
        } else {
            Error::NotFound { key: key.into() }
        })
    }

    /// One transaction within the deadline, retried only when it surely
    /// never reached etcd's log (see [`Retry::NotSent`]).
    pub(crate) async fn write(&self, txn: Txn) -> Result<etcd_client::TxnResponse> {
        retry(
            &self.endpoints,
            self.request_timeout,
            None,
            Some(&self.probe),
            Retry::NotSent,
            || {
                let (mut kv, txn) = (self.client.kv_client(), txn.clone());
                async move { kv.txn(txn).await }
            },
        )
        .await
    }

    /// Run an idempotent request within the deadline, retrying while the
    /// cluster is unavailable (another member, or a new leader, may answer).
    async fn read<T, F, Fut>(&self, revision: Option<i64>, call: F) -> Result<T>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        retry(
            &self.endpoints,
            self.request_timeout,
            revision,
            Some(&self.probe),
            Retry::Unavailable,
            || call(self.client.kv_client()),
        )
        .await
    }
}

/// Which failures a request may be sent again after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Any [`Error::Unavailable`]: for reads, which are idempotent.
    Unavailable,
    /// Only failures that prove the request was not applied: the
    /// connection could not be made (a stopped member: the client balances
    /// over endpoints and hands the caller one such failure before it
    /// routes around the member), or etcd refused it for want of a leader
    /// before proposing it. A timeout or a connection lost mid-call is
    /// not retried: the write may have happened.
    NotSent,
}

impl Retry {
    /// Whether `err` proves the request was not applied.
    fn not_sent(err: &etcd_client::Error) -> bool {
        match err {
            etcd_client::Error::GRpcStatus(s) => {
                s.code() == tonic::Code::Unavailable
                    && (s.message().contains("connect error")
                        || s.message().contains("Connection refused")
                        || s.message() == "etcdserver: no leader")
            }
            _ => false,
        }
    }
}

/// Run `call` until it succeeds, fails in a way `policy` does not retry,
/// or `timeout` passes; the deadline error carries the last failure. With
/// `probe`, the first failure that may hide a TLS problem is looked into
/// (see [`super::diagnose`]); a TLS problem found ends the call with
/// [`Error::Tls`].
pub(crate) async fn retry<T, F, Fut>(
    endpoints: &[String],
    timeout: Duration,
    revision: Option<i64>,
    mut probe: Option<&TlsProbe>,
    policy: Retry,
    call: F,
) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_RETRY_PAUSE;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, call()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let not_sent = Retry::not_sent(&e);
                let err = Error::from_client(e, endpoints, revision);
                if let Some(p) = probe.filter(|_| err.may_be_tls()) {
                    probe = None;
                    if let Some(problem) = p.explain().await {
                        return Err(Error::Tls {
                            endpoints: endpoints.to_vec(),
                            problem,
                        });
                    }
                }
                let allowed = match policy {
                    Retry::Unavailable => err.is_unavailable(),
                    Retry::NotSent => not_sent,
                };
                if !allowed || Instant::now() + pause >= deadline {
                    return Err(err);
                }
                tracing::debug!(error = %err, "etcd unavailable, retrying");
                last = Some(err);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
            Err(_) => {
                return Err(match last {
                    Some(Error::Unavailable { endpoints, source }) => Error::Unavailable {
                        endpoints,
                        source: format!("no answer within {timeout:?}; last error: {source}")
                            .into(),
                    },
                    _ => Error::deadline(endpoints, timeout),
                });
            }
        }
    }
}

pub(crate) fn txn_revision(resp: &etcd_client::TxnResponse) -> i64 {
    resp.header().map(|h| h.revision()).unwrap_or_default()
}

pub(crate) fn to_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Malformed {
        key: key.into(),
        error: e.to_string(),
    })
}

/// The end of the range of keys starting with `prefix` (exclusive): the
/// prefix with its last byte below 0xff incremented; `[0]` (meaning "to the
/// end") when there is none.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/calico/"), b"/calico0".to_vec());
        assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
