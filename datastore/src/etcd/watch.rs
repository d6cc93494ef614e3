//! [`Watch`]: the changes under a prefix from a revision on, as a stream.
//!
//! The usual loop (what confd does): [`Datastore::list`] at revision `R`,
//! then [`Datastore::watch`] from `R + 1`. Events arrive in revision order.
//! The stream ends after a [`WatchEvent::Compacted`] (the start revision is
//! gone: list again) or after an `Err` (the connection or the leader was
//! lost: watch again from [`Watch::revision`]` + 1`, or list again).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use etcd_client::{EventType, WatchOptions, WatchResponse, WatchStream, Watcher};
use futures_util::Stream;

use super::client::{Datastore, Retry, prefix_end, retry};
use super::error::{Error, Result};
use super::kv::KeyValue;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or written.
    Put(KeyValue),
    /// A key was deleted.
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        mod_revision: i64,
    },
    /// Nothing changed under the prefix up to `revision` (etcd's progress
    /// notification); resuming from `revision + 1` misses nothing.
    Progress {
        /// The store's revision when sent.
        revision: i64,
    },
    /// The start revision has been compacted away; nothing more follows.
    /// List again (the oldest revision still held is `compact_revision`).
    Compacted {
        /// etcd's compaction revision.
        compact_revision: i64,
    },
}

/// A running watch; a [`Stream`] of `Result<WatchEvent>`. Dropping it
/// ends the watch.
pub struct Watch {
    inner: WatchStream,
    /// The request side; kept so the stream stays open.
    watcher: Watcher,
    prefix: String,
    endpoints: Vec<String>,
    pending: VecDeque<WatchEvent>,
    /// The last revision known to be fully delivered.
    revision: i64,
    done: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("prefix", &self.prefix)
            .field("revision", &self.revision)
            .field("pending", &self.pending.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Datastore {
    /// Watch every key under `prefix` from `from_revision` on (inclusive;
    /// `0` means from now). Returns once etcd has confirmed the watch
    /// (etcd-client waits for the "created" answer), within the request
    /// timeout, retried while unavailable. A start revision already
    /// compacted gives a watch whose first item is
    /// [`WatchEvent::Compacted`].
    pub async fn watch(&self, prefix: &str, from_revision: i64) -> Result<Watch> {
        let endpoints = self.endpoints().to_vec();
        let timeout = self.request_timeout();
        let client = self.client().clone();
        let options = WatchOptions::new()
            .with_range(prefix_end(prefix.as_bytes()))
            .with_start_revision(from_revision.max(0))
            .with_progress_notify();
        let (watcher, inner) = retry(
            &endpoints,
            timeout,
            Some(from_revision),
            Some(self.probe()),
            Retry::Unavailable,
            || {
                let (mut watch, options) = (client.watch_client(), options.clone());
                let key = prefix.to_string();
                async move { watch.watch(key, Some(options)).await }
            },
        )
        .await?;
        let watch = Watch {
            inner,
            watcher,
            prefix: prefix.to_string(),
            endpoints,
            pending: VecDeque::new(),
            revision: (from_revision - 1).max(0),
            done: false,
        };
        tracing::debug!(prefix, from_revision, "etcd watch created");
        Ok(watch)
    }
}

impl Watch {
    /// The prefix watched.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The last revision whose changes have all been received (queued or
    /// handed out): after an error, watch again from this plus one. Starts
    /// at `from_revision - 1` (0 for a watch from now, until the first
    /// event or progress notification).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Ask etcd for a progress notification (etcd 3.4+): once every event
    /// up to the store's current revision has been sent on this watch, a
    /// [`WatchEvent::Progress`] follows. etcd answers only while the watch
    /// is caught up, so a caller waiting to be in sync asks again later if
    /// none comes.
    pub async fn request_progress(&mut self) -> Result<()> {
        self.watcher
            .request_progress()
            .await
            .map_err(|e| Error::from_client(e, &self.endpoints, None))
    }

    /// The next event; `None` once the watch has ended.
    pub async fn recv(&mut self) -> Option<Result<WatchEvent>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Queue what `resp` carries; an error for a refusal other than
    /// compaction (which is queued as an event).
    fn absorb(&mut self, resp: WatchResponse) -> Option<Error> {
        if resp.compact_revision() != 0 {
            self.pending.push_back(WatchEvent::Compacted {
                compact_revision: resp.compact_revision(),
            });
            return None;
        }
        if resp.canceled() {
            let reason = resp.cancel_reason();
            let source = format!("etcd cancelled the watch on {}: {reason}", self.prefix).into();
            return Some(if reason.contains("leader") {
                Error::Unavailable {
                    endpoints: self.endpoints.clone(),
                    source,
                }
            } else {
                Error::Etcd { source }
            });
        }
        let header_revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        let events = resp.events();
        for event in events {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    if let Some(kv) = KeyValue::from_client(kv) {
                        self.pending.push_back(WatchEvent::Put(kv));
                    }
                }
                EventType::Delete => match std::str::from_utf8(kv.key()) {
                    Ok(key) => self.pending.push_back(WatchEvent::Delete {
                        key: key.to_string(),
                        mod_revision: kv.mod_revision(),
                    }),
                    Err(_) => tracing::warn!("skipping deletion of a key that is not UTF-8"),
                },
            }
        }
        match events.last().and_then(|e| e.kv()) {
            Some(kv) => self.revision = self.revision.max(kv.mod_revision()),
            // No events: a creation answer or a progress notification;
            // both say everything up to the header's revision is sent.
            None if header_revision > 0 && !resp.created() => {
                self.revision = self.revision.max(header_revision);
                self.pending.push_back(WatchEvent::Progress {
                    revision: header_revision,
                });
            }
            None => {}
        }
        None
    }

    fn closed(&self) -> Error {
        Error::Unavailable {
            endpoints: self.endpoints.clone(),
            source: format!("etcd closed the watch stream on {}", self.prefix).into(),
        }
    }
}

impl Stream for Watch {
    type Item = Result<WatchEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                if matches!(event, WatchEvent::Compacted { .. }) {
                    this.pending.clear();
                    this.done = true;
                }
                return Poll::Ready(Some(Ok(event)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let item = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            };
            let err = match item {
                Some(Ok(resp)) => match this.absorb(resp) {
                    None => continue,
                    Some(err) => err,
                },
                Some(Err(e)) => Error::from_client(e, &this.endpoints, None),
                None => this.closed(),
            };
            this.done = true;
            return Poll::Ready(Some(Err(err)));
        }
    }
}
