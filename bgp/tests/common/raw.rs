//! A hand-driven BGP speaker over a plain TCP socket: it completes the
//! OPEN/KEEPALIVE exchange with the capabilities a test gives it and then
//! sends whatever bytes the test crafts, so tests can play peers no real
//! daemon would be (a malformed sender, a peer that never sends End-of-RIB).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use manul_bgp::types::Family;
use manul_bgp::wire::{Capability, Context, Message, Open, frame};
use manul_tests::Netns;

const T: Duration = Duration::from_secs(20);

pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect from inside `ns` to `to` and complete the OPEN/KEEPALIVE
    /// exchange as AS `asn` with identifier `id`, announcing IPv4 unicast,
    /// the 4-octet AS capability and `more`.
    pub fn establish(
        ns: &Netns,
        to: &str,
        asn: u32,
        id: [u8; 4],
        more: Vec<Capability>,
    ) -> anyhow::Result<Raw> {
        let to = to.parse()?;
        let stream = ns.run(|| TcpStream::connect_timeout(&to, T))?;
        stream.set_read_timeout(Some(T))?;
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        let mut capabilities = vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ];
        capabilities.extend(more);
        let open = Open {
            version: 4,
            asn,
            hold_time: 90,
            router_id: id.into(),
            capabilities,
        };
        raw.send(&Message::Open(open).to_bytes(&Context::default())?)?;
        anyhow::ensure!(
            matches!(raw.recv()?, Some(Message::Open(_))),
            "expected OPEN"
        );
        raw.send(&Message::Keepalive.to_bytes(&Context::default())?)?;
        anyhow::ensure!(
            matches!(raw.recv()?, Some(Message::Keepalive)),
            "expected KEEPALIVE"
        );
        Ok(raw)
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next message; `None` when the connection closes.
    pub fn recv(&mut self) -> anyhow::Result<Option<Message>> {
        let ctx = Context {
            four_octet_as: true,
            ..Default::default()
        };
        loop {
            if let Some(len) = frame(&self.buf, &ctx)? {
                if self.buf.len() >= len {
                    let msg: Vec<u8> = self.buf.drain(..len).collect();
                    return Ok(Some(Message::decode(&msg, &ctx)?));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait at most `timeout` for the next message.
    pub fn recv_within(&mut self, timeout: Duration) -> anyhow::Result<Option<Message>> {
        self.stream.set_read_timeout(Some(timeout))?;
        let got = self.recv();
        self.stream.set_read_timeout(Some(T))?;
        got
    }

    /// The first NOTIFICATION before the connection closes: (code, subcode).
    pub fn notification(&mut self) -> anyhow::Result<(u8, u8)> {
        while let Some(msg) = self.recv()? {
            if let Message::Notification(n) = msg {
                // And then the connection is closed.
                while self.recv()?.is_some() {}
                return Ok((n.code, n.subcode));
            }
        }
        anyhow::bail!("connection closed without a NOTIFICATION")
    }
}

/// An UPDATE from raw path attribute and NLRI bytes.
pub fn update(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let len = 19 + 2 + 2 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}
