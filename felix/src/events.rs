//! rtnetlink notifications — felix's one way to follow the kernel (the
//! route reconciler, the VXLAN overlay, the eBPF attachments) — read from a
//! raw netlink socket subscribed to the groups asked for, and decoded only
//! when they are needed.
//!
//! A bulk write of N routes makes the kernel send N route notifications
//! back, which tell felix nothing its writer's acknowledgements did not:
//! before such a write the reconciler announces them ([`OwnWrites::expect_own`]),
//! and the reader drops that many route notifications carrying felix's
//! protocol by a look at their header, without decoding them; after the
//! write, the announcement is reduced by the writes that failed (they sent
//! nothing; [`OwnWrites::settle`]). Every notification of a write is queued
//! on the reader's socket before the write's `sendmsg` returns, so once the
//! write is settled and the reader finds its socket empty, what is left of
//! the announcement was never sent (a write that changed nothing) and is
//! dropped. Everything else is decoded and handed on.
//! The price: a change someone else makes with felix's protocol number while
//! a bulk write is in flight may be counted off as felix's own and only be
//! seen at the next resync. A socket overrun (`ENOBUFS`) is handed on as
//! [`NetlinkPayload::Overrun`].

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::netns::in_netns;

/// A notification.
pub type Event = NetlinkMessage<RouteNetlinkMessage>;

/// The multicast groups (`RTNLGRP_*`).
pub mod group {
    pub const LINK: u32 = 1;
    pub const NEIGH: u32 = 3;
    pub const IPV4_IFADDR: u32 = 5;
    pub const IPV4_ROUTE: u32 = 7;
    pub const IPV6_IFADDR: u32 = 9;
    pub const IPV6_ROUTE: u32 = 11;
}
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
/// Offset of `rtm_protocol` in a route message (16-byte header, then
/// family, dst_len, src_len, tos, table, protocol).
const PROTOCOL_AT: usize = 16 + 5;

/// The notifications; dropping it stops the reader.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    own: Arc<Own>,
    task: JoinHandle<()>,
}

/// felix's own bulk writes, as the writer announces them to the reader.
#[derive(Debug, Default)]
struct Own {
    /// Own route notifications still to count off.
    expected: AtomicU64,
    /// A bulk write is in flight.
    writing: AtomicBool,
    /// A write was settled: the reader checks for a leftover announcement.
    settled: Notify,
}

/// Whether the socket `fd` has nothing queued.
fn queue_empty(fd: &impl AsRawFd) -> bool {
    use nix::errno::Errno;
    use nix::sys::socket::{MsgFlags, recv};
    let mut b = [0u8; 1];
    let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(recv(fd.as_raw_fd(), &mut b, peek), Err(Errno::EAGAIN))
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the message at the start of `msg` is a route notification with
/// `protocol` (one that may be counted off as felix's own).
pub fn is_own_route(msg: &[u8], protocol: u8) -> bool {
    if msg.len() <= PROTOCOL_AT {
        return false;
    }
    let kind = u16::from_ne_bytes([msg[4], msg[5]]);
    (kind == RTM_NEWROUTE || kind == RTM_DELROUTE) && msg[PROTOCOL_AT] == protocol
}

/// Split a datagram into its messages, drop own route notifications (of
/// `protocol`) while `expected` allows, decode the rest.
pub fn split(datagram: &[u8], protocol: Option<u8>, expected: &AtomicU64) -> Vec<Event> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= datagram.len() {
        let len = u32::from_ne_bytes([
            datagram[off],
            datagram[off + 1],
            datagram[off + 2],
            datagram[off + 3],
        ]) as usize;
        if len < 16 || off + len > datagram.len() {
            break;
        }
        let msg = &datagram[off..off + len];
        let own = protocol.is_some_and(|p| is_own_route(msg, p))
            && expected
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
        if !own && let Ok(m) = Event::deserialize(msg) {
            out.push(m);
        }
        off += (len + 3) & !3;
    }
    out
}

fn overrun() -> Event {
    NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::Overrun(Vec::new()),
    )
}

impl Events {
    /// Subscribe (in `netns`) to `groups` ([`group`]); `own_protocol`:
    /// felix's routing protocol number, when its bulk writes are to be
    /// counted off ([`Events::own_writes`]).
    pub fn open(
        netns: Option<&Path>,
        groups: &[u32],
        own_protocol: Option<u8>,
    ) -> io::Result<Events> {
        let protocol = own_protocol;
        let socket = in_netns(netns, || {
            let mut s = TokioSocket::new(NETLINK_ROUTE)?;
            s.socket_mut().bind(&SocketAddr::new(0, 0))?;
            for g in groups {
                s.socket_mut().add_membership(*g)?;
            }
            // Large enough for bursts; an overrun still only costs a resync.
            crate::batch::force_rcvbuf(s.socket_mut(), 16 << 20);
            Ok(s)
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let own = Arc::new(Own::default());
        let o = Arc::clone(&own);
        let task = tokio::spawn(async move {
            loop {
                if !o.writing.load(Ordering::Acquire)
                    && o.expected.load(Ordering::Acquire) > 0
                    && queue_empty(socket.socket_ref())
                {
                    o.expected.store(0, Ordering::Release);
                }
                let received = tokio::select! {
                    r = socket.recv_from_full() => r,
                    _ = o.settled.notified() => continue,
                };
                let events = match received {
                    Ok((datagram, _)) => split(&datagram, protocol, &o.expected),
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => vec![overrun()],
                    Err(e) => {
                        tracing::error!(error = %e, "felix: reading netlink notifications failed");
                        return;
                    }
                };
                for e in events {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Events { rx, own, task })
    }

    /// The next notification; `None` once the reader has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next notification if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The handle the writer announces its bulk writes with.
    pub fn own_writes(&self) -> OwnWrites {
        OwnWrites(Arc::clone(&self.own))
    }
}

/// Announces felix's own bulk writes to the reader (see the module docs).
#[derive(Debug, Clone)]
pub struct OwnWrites(Arc<Own>);

impl OwnWrites {
    /// A bulk write of `n` routes is about to go out: count off that many
    /// of felix's own route notifications.
    pub fn expect_own(&self, n: u64) {
        self.0.writing.store(true, Ordering::Release);
        self.0.expected.fetch_add(n, Ordering::AcqRel);
    }

    /// The bulk write is done and `failed` of its writes sent nothing.
    pub fn settle(&self, failed: u64) {
        let _ = self
            .0
            .expected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(failed))
            });
        self.0.writing.store(false, Ordering::Release);
        self.0.settled.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::LinkMessage;
    use netlink_packet_route::route::{RouteMessage, RouteProtocol};

    fn bytes(msg: RouteNetlinkMessage) -> Vec<u8> {
        let mut m = NetlinkMessage::from(msg);
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        b
    }

    fn route(new: bool, protocol: u8) -> Vec<u8> {
        let mut r = RouteMessage::default();
        r.header.protocol = RouteProtocol::from(protocol);
        bytes(if new {
            RouteNetlinkMessage::NewRoute(r)
        } else {
            RouteNetlinkMessage::DelRoute(r)
        })
    }

    #[test]
    fn own_route_notifications_are_counted_off_undecoded_and_the_rest_passes() {
        let link = bytes(RouteNetlinkMessage::NewLink(LinkMessage::default()));
        let datagram: Vec<u8> = [
            route(true, 80),
            route(true, 12), // BIRD's: always decoded
            link,
            route(false, 80),
            route(true, 80), // beyond what was announced: decoded
        ]
        .concat();
        let expected = AtomicU64::new(2);
        let got = split(&datagram, Some(80), &expected);
        assert_eq!(expected.load(Ordering::Acquire), 0);
        let kinds: Vec<String> = got
            .iter()
            .map(|m| match &m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                    format!("new {}", u8::from(r.header.protocol))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(_)) => "link".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["new 12", "link", "new 80"]);
        // Nothing announced: everything is decoded.
        let none = AtomicU64::new(0);
        assert_eq!(split(&datagram, Some(80), &none).len(), 5);
        // Not counting off at all: everything is decoded.
        assert_eq!(split(&datagram, None, &AtomicU64::new(9)).len(), 5);
    }
}
