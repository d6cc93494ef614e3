//! Route writes in bulk: many `RTM_NEWROUTE` / `RTM_DELROUTE` requests
//! packed into one `sendmsg(2)` on a dedicated netlink socket. The kernel
//! runs every request of the datagram in order (`netlink_rcv_skb`), inside
//! the `sendmsg` call, and answers a request only when it fails or asks for
//! an acknowledgement (`NLM_F_ACK`). Only the last request of a chunk asks:
//! its acknowledgement closes the chunk, and the error answers before it
//! are the failures, mapped back to their routes by sequence number. So a
//! chunk of a few thousand routes costs one system call to send and one or
//! two to read the answers, instead of one round trip (or one queued
//! acknowledgement, each a datagram of its own) per route.
//! `NETLINK_CAP_ACK` keeps error answers short (no echoed request).
//!
//! The socket is blocking; the reconciler drives it from a blocking task.

use std::io;
use std::path::Path;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::kernel::KernelRoute;
use crate::netlink::NetlinkError;
use crate::netns::in_netns;

/// Bytes of requests per `sendmsg`; the answers to a chunk must fit the
/// receive buffer (an ACK is 36 bytes; a /32 route request about 60).
const CHUNK_BYTES: usize = 96 * 1024;
/// Room kept for one more request when deciding a chunk's last one.
const MAX_REQUEST: usize = 1024;
/// Receive buffer asked for (root may exceed `rmem_max` with SO_RCVBUFFORCE).
const RCVBUF: usize = 4 << 20;

/// One write.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create or replace.
    Upsert(KernelRoute),
    /// Delete (already gone counts as done).
    Delete(KernelRoute),
}

impl Write {
    /// The route written.
    pub fn route(&self) -> &KernelRoute {
        match self {
            Write::Upsert(r) | Write::Delete(r) => r,
        }
    }
}

/// A netlink socket for bulk route writes.
#[derive(Debug)]
pub struct BatchWriter {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// Deletes of the last [`BatchWriter::write`] whose route was gone
    /// already (done, but the kernel changed nothing and notified nobody).
    silent: usize,
}

impl BatchWriter {
    /// Open the socket in `netns` (or here).
    pub fn open(netns: Option<&Path>) -> io::Result<Self> {
        let socket = in_netns(netns, || {
            let mut s = Socket::new(NETLINK_ROUTE)?;
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))?;
            let _ = s.set_cap_ack(true);
            force_rcvbuf(&s, RCVBUF);
            Ok(s)
        })?;
        Ok(BatchWriter {
            socket,
            seq: 1,
            buf: Vec::with_capacity(CHUNK_BYTES + 4096),
            silent: 0,
        })
    }

    /// Send every write; the result of each, in order.
    pub fn write(&mut self, writes: &[Write]) -> Vec<Result<(), NetlinkError>> {
        self.silent = 0;
        let mut results = vec![Ok(()); writes.len()];
        let mut start = 0;
        while start < writes.len() {
            self.buf.clear();
            let first_seq = self.seq;
            let mut end = start;
            loop {
                // The chunk's last request asks for the acknowledgement that
                // closes it (a route request is well under MAX_REQUEST).
                let last = end + 1 == writes.len() || self.buf.len() + MAX_REQUEST >= CHUNK_BYTES;
                let (msg, flags) = match &writes[end] {
                    Write::Upsert(r) => (
                        RouteNetlinkMessage::NewRoute(r.to_message()),
                        NLM_F_CREATE | NLM_F_REPLACE,
                    ),
                    Write::Delete(r) => (RouteNetlinkMessage::DelRoute(r.to_delete_message()), 0),
                };
                let mut nl = NetlinkMessage::from(msg);
                nl.header.flags = NLM_F_REQUEST | flags | if last { NLM_F_ACK } else { 0 };
                nl.header.sequence_number = self.seq;
                self.seq = self.seq.wrapping_add(1);
                nl.finalize();
                let at = self.buf.len();
                self.buf.resize(at + nl.buffer_len(), 0);
                nl.serialize(&mut self.buf[at..]);
                end += 1;
                if last {
                    break;
                }
            }
            if let Err(e) = self.socket.send(&self.buf, 0) {
                let code = e.raw_os_error().unwrap_or(libc::EIO);
                for r in &mut results[start..end] {
                    *r = Err(NetlinkError::Errno(code));
                }
            } else {
                self.collect(first_seq, &writes[start..end], &mut results[start..end]);
            }
            start = end;
        }
        results
    }

    /// Read one chunk's answers: error answers for failed requests, then
    /// the acknowledgement (or error) of its last request.
    fn collect(
        &mut self,
        first_seq: u32,
        writes: &[Write],
        results: &mut [Result<(), NetlinkError>],
    ) {
        let last = writes.len() - 1;
        let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
        loop {
            buf.clear();
            if let Err(e) = self.socket.recv(&mut buf, 0) {
                // ENOBUFS: answers were dropped; which requests failed is
                // unknown, so all count as failed (they are retried).
                let code = e.raw_os_error().unwrap_or(libc::EIO);
                for r in results.iter_mut() {
                    *r = Err(NetlinkError::Errno(code));
                }
                return;
            }
            let mut off = 0;
            while off + 16 <= buf.len() {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or_default()) as usize;
                if len < 16 || off + len > buf.len() {
                    break;
                }
                if let Ok(msg) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len])
                {
                    let i = msg.header.sequence_number.wrapping_sub(first_seq) as usize;
                    if let (NetlinkPayload::Error(e), true) = (&msg.payload, i < writes.len()) {
                        results[i] = match e.code.map(|c| -c.get()) {
                            None => Ok(()),
                            Some(libc::ESRCH) if matches!(writes[i], Write::Delete(_)) => {
                                self.silent += 1;
                                Ok(())
                            }
                            Some(code) => Err(NetlinkError::Errno(code)),
                        };
                        if i == last {
                            return;
                        }
                    }
                }
                off += (len + 3) & !3;
            }
        }
    }
}

impl BatchWriter {
    /// How many deletes of the last write found their route gone already.
    pub fn silent(&self) -> usize {
        self.silent
    }
}

/// Ask for a `size`-byte receive buffer, beyond `rmem_max` when allowed
/// (SO_RCVBUFFORCE needs CAP_NET_ADMIN), else as much as SO_RCVBUF gives.
pub(crate) fn force_rcvbuf(s: &Socket, size: usize) {
    use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    if setsockopt(s, RcvBufForce, &(size as usize)).is_err() {
        let _ = s.set_rx_buf_sz(size);
    }
}
