//! One TCP connection of a session: a framing reader and a writer task.
//!
//! Writes go through an unbounded queue to their own task so the session
//! never stops reading while a large advertisement drains (two speakers
//! both blocked writing to each other would deadlock).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;

use crate::wire::header::frame;
use crate::wire::{Context, DecodeError};

/// Bytes read per `read` call at most. Everything one read brings is
/// decoded and queued to the core as one event, so this bounds what a
/// session holds decoded ahead of the RIB (64 KiB: ~16k IPv4 prefixes;
/// 256 KiB cost ~10 MiB more peak memory on a full table, for no speed).
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct Connection {
    reader: OwnedReadHalf,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Connection {
    /// Take over a connected stream; spawns its writer task.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (reader, mut write_half) = stream.into_split();
        let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if write_half.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            // Sender dropped: everything queued is written; close our side.
            let _ = write_half.shutdown().await;
        });
        Ok(Self {
            reader,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            writer,
            local,
            remote,
        })
    }

    /// Queue bytes for sending.
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(bytes);
    }

    /// Read more bytes; `Ok(0)` is end of stream.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        self.reader.read_buf(&mut self.buf).await
    }

    /// The next whole message, if buffered; a header error is the
    /// NOTIFICATION to send (RFC 4271 §6.1).
    pub fn next_message(&mut self, ctx: &Context) -> Result<Option<&[u8]>, DecodeError> {
        let pending = &self.buf[self.start..];
        match frame(pending, ctx)? {
            Some(len) if len <= pending.len() => {
                let msg = &self.buf[self.start..self.start + len];
                self.start += len;
                Ok(Some(msg))
            }
            _ => Ok(None),
        }
    }
}
