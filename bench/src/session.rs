//! The blocking BGP session plumbing the blaster and the sink share: a
//! framing reader over any `Read`, our OPEN, and the OPEN/KEEPALIVE
//! handshake up to Established (RFC 4271 §8.2.2, reduced to the happy path).

use std::io::{Read, Write};
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, bail};
use manul_bgp::types::Family;
use manul_bgp::wire::{Capability, Context, Message, Negotiated, Open, frame, negotiate};

/// Read buffer size; far above the largest message (65535 octets).
const BUF: usize = 1 << 20;

/// Splits a byte stream into whole BGP messages.
#[derive(Debug)]
pub struct MessageReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> MessageReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
        }
    }

    /// The next whole message (header included), `None` at end of stream.
    /// A header error is returned as an error naming it.
    pub fn next_message(&mut self, ctx: &Context) -> Result<Option<&[u8]>> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let len = frame(pending, ctx).map_err(|e| anyhow::anyhow!("bad header: {e:?}"))?;
            if let Some(len) = len.filter(|&l| l <= pending.len()) {
                let at = self.start;
                self.start += len;
                return Ok(Some(&self.buf[at..at + len]));
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.buf.len() - self.end < 65536 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            let n = self
                .inner
                .read(&mut self.buf[self.end..])
                .context("reading from the peer")?;
            if n == 0 {
                return Ok(None);
            }
            self.end += n;
        }
    }
}

/// Our OPEN: Multiprotocol for each family, 4-octet AS and, if asked,
/// extended messages.
pub fn our_open(
    asn: u32,
    router_id: Ipv4Addr,
    hold_time: u16,
    families: &[Family],
    extended_message: bool,
) -> Open {
    let mut caps: Vec<Capability> = families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    caps.push(Capability::FourOctetAs(asn));
    if extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    Open::new(asn, hold_time, router_id, caps)
}

/// A KEEPALIVE on the wire.
pub fn keepalive() -> Vec<u8> {
    Message::Keepalive
        .to_bytes(&Context::default())
        .expect("a KEEPALIVE always encodes")
}

/// Send our OPEN, read theirs, exchange KEEPALIVEs; returns what was
/// negotiated and the peer's OPEN. A NOTIFICATION from the peer, or a peer
/// AS other than `peer_asn` (when given), is an error.
pub fn handshake<R: Read, W: Write>(
    reader: &mut MessageReader<R>,
    writer: &mut W,
    ours: &Open,
    peer_asn: Option<u32>,
) -> Result<(Negotiated, Open)> {
    let base = Context::default();
    let mut open_bytes = Vec::new();
    ours.encode(&mut open_bytes)
        .map_err(|e| anyhow::anyhow!("encoding our OPEN: {e:?}"))?;
    writer.write_all(&open_bytes).context("sending OPEN")?;
    let theirs = match next(reader, &base)? {
        Message::Open(o) => o,
        other => bail!("expected OPEN, got {other:?}"),
    };
    if let Some(want) = peer_asn
        && theirs.asn != want
    {
        bail!("peer announced AS {}, expected {want}", theirs.asn);
    }
    let negotiated = negotiate(ours, &theirs);
    writer
        .write_all(&keepalive())
        .context("sending KEEPALIVE")?;
    match next(reader, &negotiated.context)? {
        Message::Keepalive => Ok((negotiated, theirs)),
        other => bail!("expected KEEPALIVE, got {other:?}"),
    }
}

/// The next message decoded; a NOTIFICATION or end of stream is an error.
fn next<R: Read>(reader: &mut MessageReader<R>, ctx: &Context) -> Result<Message> {
    let Some(bytes) = reader.next_message(ctx)? else {
        bail!("peer closed the connection during the handshake");
    };
    let msg = Message::decode(bytes, ctx).map_err(|e| anyhow::anyhow!("decoding: {e:?}"))?;
    if let Message::Notification(n) = &msg {
        bail!(
            "peer sent NOTIFICATION {}/{}: {}",
            n.code,
            n.subcode,
            String::from_utf8_lossy(&n.data)
        );
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_splits_messages_across_reads() {
        let ka = keepalive();
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&ka);
        }
        // A reader handing out 7 bytes at a time.
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = (self.0.len() - self.1).min(7).min(out.len());
                out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut r = MessageReader::new(Trickle(stream, 0));
        let ctx = Context::default();
        for _ in 0..3 {
            assert_eq!(r.next_message(&ctx).unwrap(), Some(&ka[..]));
        }
        assert_eq!(r.next_message(&ctx).unwrap(), None);
    }
}
