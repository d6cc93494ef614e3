//! nfnetlink, as the NAT task speaks it: dumps of manul's table, writes
//! as one nftables transaction (a batch: every message applies or none
//! does), and the nftables notifications (`NFNLGRP_NFTABLES`) that tell
//! when someone else changed the table. Messages are built and read with
//! rust-netlink's `netlink-packet-netfilter` (see the README for why).

use std::io;
use std::path::Path;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    ChainMessage, NfTablesMessage, RuleAttribute, RuleMessage, SetAttribute, SetElementList,
    SetElementMessage, SetMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{
    AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_NETFILTER,
};

use super::rules::SetId;
use super::table::{Dump, Request, TABLE};
use crate::netns::in_netns;

/// `NFNLGRP_NFTABLES`: every change to nftables objects.
const NFNLGRP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`, the batch's resource id.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// How long the kernel may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Interrupted dumps are read again this many times.
const DUMP_ATTEMPTS: usize = 5;

/// A nfnetlink failure.
#[derive(Debug, thiserror::Error)]
pub enum NfnlError {
    /// The socket failed.
    #[error("nfnetlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel refused a message.
    #[error("the kernel refused {what}: {}", io::Error::from_raw_os_error(*errno))]
    Refused { errno: i32, what: String },
    /// The kernel did not answer in time.
    #[error("no answer from the kernel within {ANSWER_WITHIN:?}")]
    Timeout,
    /// A dump kept being interrupted by changes.
    #[error("the dump was interrupted {DUMP_ATTEMPTS} times in a row")]
    Interrupted,
}

impl NfnlError {
    /// The errno, when the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NfnlError::Refused { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn message(
    family: NetfilterProtoFamily,
    inner: impl Into<NetfilterMessageInner>,
) -> NetfilterMessage {
    let res_id = 0;
    NetfilterMessage::new(NetfilterHeader::new(family, 0, res_id), inner)
}

fn batch_marker(inner: ControlMessage) -> NetfilterMessage {
    NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
        inner,
    )
}

fn serialize(msg: NetfilterMessage, flags: u16, seq: u32, out: &mut Vec<u8>) {
    let mut m = NetlinkMessage::from(msg);
    m.header.flags = flags;
    m.header.sequence_number = seq;
    m.finalize();
    let at = out.len();
    out.resize(at + m.buffer_len(), 0);
    m.serialize(&mut out[at..]);
}

/// Split a datagram into its messages (undecodable ones as `Err`, with
/// their sequence number).
fn messages(datagram: &[u8]) -> Vec<Result<NetlinkMessage<NetfilterMessage>, u32>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= datagram.len() {
        let word = |i: usize| {
            u32::from_ne_bytes([
                datagram[off + i],
                datagram[off + i + 1],
                datagram[off + i + 2],
                datagram[off + i + 3],
            ])
        };
        let len = word(0) as usize;
        if len < 16 || off + len > datagram.len() {
            break;
        }
        let seq = word(8);
        out.push(NetlinkMessage::deserialize(&datagram[off..off + len]).map_err(|_| seq));
        off += (len + 3) & !3;
    }
    out
}

/// A request socket (dumps and writes) in a network namespace.
pub struct Nfnl {
    socket: TokioSocket,
    seq: u32,
}

impl std::fmt::Debug for Nfnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nfnl").field("seq", &self.seq).finish()
    }
}

impl Nfnl {
    /// A socket in `netns` (`None`: here).
    pub fn open(netns: Option<&Path>) -> io::Result<Nfnl> {
        let socket = in_netns(netns, || {
            let mut s = TokioSocket::new(NETLINK_NETFILTER)?;
            s.socket_mut().bind_auto()?;
            s.socket_mut().connect(&SocketAddr::new(0, 0))?;
            // Errors without the request echoed back.
            let _ = s.socket_mut().set_cap_ack(true);
            Ok(s)
        })?;
        Ok(Nfnl { socket, seq: 1 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    async fn recv(&self) -> Result<Vec<u8>, NfnlError> {
        match tokio::time::timeout(ANSWER_WITHIN, self.socket.recv_from_full()).await {
            Ok(Ok((d, _))) => Ok(d),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(NfnlError::Timeout),
        }
    }

    /// One dump: the messages, or the kernel's error; `true` when the
    /// kernel marked it interrupted.
    async fn dump_once(
        &mut self,
        family: NetfilterProtoFamily,
        msg: NfTablesMessage,
    ) -> Result<(Vec<NfTablesMessage>, bool), NfnlError> {
        let seq = self.next_seq();
        let what = format!("{:?} dump", msg.message_type());
        let mut buf = Vec::new();
        serialize(
            message(family, msg),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            &mut buf,
        );
        self.socket.send(&buf).await?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let datagram = self.recv().await?;
            for m in messages(&datagram) {
                let Ok(m) = m else { continue };
                if m.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok((out, interrupted)),
                    NetlinkPayload::Error(e) => match e.code {
                        Some(code) if code.get() == -libc::EINTR => return Ok((out, true)),
                        Some(code) => {
                            return Err(NfnlError::Refused {
                                errno: -code.get(),
                                what,
                            });
                        }
                        None => return Ok((out, interrupted)),
                    },
                    NetlinkPayload::InnerMessage(NetfilterMessage {
                        inner: NetfilterMessageInner::NfTables(t),
                        ..
                    }) => out.push(t),
                    _ => {}
                }
            }
        }
    }

    async fn dump(
        &mut self,
        family: NetfilterProtoFamily,
        msg: NfTablesMessage,
    ) -> Result<Vec<NfTablesMessage>, NfnlError> {
        for _ in 0..DUMP_ATTEMPTS {
            let (out, interrupted) = self.dump_once(family, msg.clone()).await?;
            if !interrupted {
                return Ok(out);
            }
        }
        Err(NfnlError::Interrupted)
    }

    /// Everything of manul's table (see [`Dump`]).
    pub async fn dump_table(&mut self) -> Result<Dump, NfnlError> {
        let inet = NetfilterProtoFamily::Inet;
        let tables = self
            .dump(
                inet,
                NfTablesMessage::GetTable(TableMessage { attributes: vec![] }),
            )
            .await?;
        let mut d = Dump {
            table: tables.into_iter().find_map(|m| match m {
                NfTablesMessage::NewTable(t)
                    if t.attributes.contains(&TableAttribute::Name(TABLE.into())) =>
                {
                    Some(t)
                }
                _ => None,
            }),
            ..Dump::default()
        };
        if d.table.is_none() {
            return Ok(d);
        }
        for m in self
            .dump(
                inet,
                NfTablesMessage::GetChain(ChainMessage { attributes: vec![] }),
            )
            .await?
        {
            if let NfTablesMessage::NewChain(c) = m {
                d.chains.push(c);
            }
        }
        let sets = self
            .dump(
                inet,
                NfTablesMessage::GetSet(SetMessage {
                    attributes: vec![SetAttribute::Table(TABLE.into())],
                }),
            )
            .await?;
        for m in sets {
            if let NfTablesMessage::NewSet(s) = m {
                d.sets.push(s);
            }
        }
        for m in self
            .dump(
                inet,
                NfTablesMessage::GetRule(RuleMessage {
                    attributes: vec![RuleAttribute::Table(TABLE.into())],
                }),
            )
            .await?
        {
            if let NfTablesMessage::NewRule(r) = m {
                d.rules.push(r);
            }
        }
        let present: Vec<SetId> = SetId::ALL
            .into_iter()
            .filter(|s| {
                d.sets.iter().any(|m| {
                    m.attributes.contains(&SetAttribute::Table(TABLE.into()))
                        && m.attributes.contains(&SetAttribute::Name(s.name().into()))
                })
            })
            .collect();
        for s in present {
            let msgs = self
                .dump(
                    inet,
                    NfTablesMessage::GetSetElement(SetElementMessage {
                        attributes: vec![
                            SetElementList::Table(TABLE.into()),
                            SetElementList::Set(s.name().into()),
                        ],
                    }),
                )
                .await?;
            d.elements.insert(
                s,
                msgs.into_iter()
                    .filter_map(|m| match m {
                        NfTablesMessage::NewSetElement(e) => Some(e),
                        _ => None,
                    })
                    .collect(),
            );
        }
        Ok(d)
    }

    /// Send `reqs` as one transaction and wait for the kernel's answer to
    /// each; the first refusal fails it (and then nothing was applied).
    pub async fn write(&mut self, reqs: &[Request]) -> Result<(), NfnlError> {
        if reqs.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        serialize(
            batch_marker(ControlMessage::BatchBegin),
            NLM_F_REQUEST,
            self.next_seq(),
            &mut buf,
        );
        let first = self.seq.wrapping_add(1);
        let mut seqs = Vec::with_capacity(reqs.len());
        for r in reqs {
            let seq = self.next_seq();
            seqs.push(seq);
            serialize(
                message(NetfilterProtoFamily::Inet, r.msg.clone()),
                NLM_F_REQUEST | NLM_F_ACK | r.flags,
                seq,
                &mut buf,
            );
        }
        serialize(
            batch_marker(ControlMessage::BatchEnd),
            NLM_F_REQUEST,
            self.next_seq(),
            &mut buf,
        );
        self.socket.send(&buf).await?;
        let mut answered = vec![false; reqs.len()];
        let mut refused: Option<NfnlError> = None;
        while answered.iter().any(|a| !a) {
            let datagram = self.recv().await?;
            for m in messages(&datagram) {
                let seq = match &m {
                    Ok(m) => m.header.sequence_number,
                    Err(seq) => *seq,
                };
                let Some(i) = seqs.iter().position(|s| *s == seq) else {
                    continue;
                };
                answered[i] = true;
                if let Ok(NetlinkMessage {
                    payload: NetlinkPayload::Error(e),
                    ..
                }) = &m
                    && let Some(code) = e.code
                    && refused.is_none()
                {
                    refused = Some(NfnlError::Refused {
                        errno: -code.get(),
                        what: format!(
                            "{:?} (message {} of the batch)",
                            reqs[i].msg.message_type(),
                            seq - first + 1
                        ),
                    });
                }
            }
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The nftables notifications of a namespace.
pub struct Notifications {
    socket: TokioSocket,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifications")
    }
}

/// What a batch of notifications said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// A change to manul's table (or one that could not be read).
    pub ours: bool,
    /// Notifications were lost (`ENOBUFS`): anything may have changed.
    pub overrun: bool,
}

/// Whether the nftables message `m` (of family `family`) is about manul's table.
pub fn about_our_table(family: NetfilterProtoFamily, m: &NfTablesMessage) -> bool {
    if family != NetfilterProtoFamily::Inet {
        return false;
    }
    let ours = |t: &str| t == TABLE;
    match m {
        NfTablesMessage::NewTable(t) | NfTablesMessage::DeleteTable(t) => t
            .attributes
            .iter()
            .any(|a| matches!(a, TableAttribute::Name(n) if ours(n))),
        NfTablesMessage::NewChain(c) | NfTablesMessage::DeleteChain(c) => {
            c.attributes.iter().any(|a| {
                matches!(a, netlink_packet_netfilter::nftables::ChainAttribute::Table(n) if ours(n))
            })
        }
        NfTablesMessage::NewRule(r) | NfTablesMessage::DeleteRule(r) => r
            .attributes
            .iter()
            .any(|a| matches!(a, RuleAttribute::Table(n) if ours(n))),
        NfTablesMessage::NewSet(s) | NfTablesMessage::DeleteSet(s) => s
            .attributes
            .iter()
            .any(|a| matches!(a, SetAttribute::Table(n) if ours(n))),
        NfTablesMessage::NewSetElement(e) | NfTablesMessage::DeleteSetElement(e) => e
            .attributes
            .iter()
            .any(|a| matches!(a, SetElementList::Table(n) if ours(n))),
        _ => false,
    }
}

impl Notifications {
    /// Subscribe in `netns` (`None`: here).
    pub fn open(netns: Option<&Path>) -> io::Result<Notifications> {
        let socket = in_netns(netns, || {
            let mut s = TokioSocket::new(NETLINK_NETFILTER)?;
            s.socket_mut().bind_auto()?;
            s.socket_mut().add_membership(NFNLGRP_NFTABLES)?;
            crate::batch::force_rcvbuf(s.socket_mut(), 4 << 20);
            Ok(s)
        })?;
        Ok(Notifications { socket })
    }

    /// Wait for notifications, then read every one already queued.
    pub async fn next(&mut self) -> io::Result<Seen> {
        let mut seen = Seen::default();
        let first = self.socket.recv_from_full().await;
        self.absorb(first, &mut seen)?;
        loop {
            let more = std::future::poll_fn(|cx| {
                use std::task::Poll;
                match self.socket.poll_recv_from_full(cx) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    Poll::Pending => Poll::Ready(None),
                }
            })
            .await;
            match more {
                Some(r) => self.absorb(r, &mut seen)?,
                None => return Ok(seen),
            }
        }
    }

    fn absorb(&self, r: io::Result<(Vec<u8>, SocketAddr)>, seen: &mut Seen) -> io::Result<()> {
        match r {
            Ok((datagram, _)) => {
                for m in messages(&datagram) {
                    seen.ours |= match m {
                        Ok(NetlinkMessage {
                            payload:
                                NetlinkPayload::InnerMessage(NetfilterMessage {
                                    header,
                                    inner: NetfilterMessageInner::NfTables(t),
                                    ..
                                }),
                            ..
                        }) => about_our_table(header.family, &t),
                        Ok(_) => false,
                        Err(_) => true, // unreadable: look
                    };
                }
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                seen.overrun = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_netfilter::nftables::{ChainAttribute, ChainMessage};

    fn bytes(family: NetfilterProtoFamily, m: NfTablesMessage, seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        serialize(message(family, m), NLM_F_REQUEST, seq, &mut out);
        out
    }

    fn table(name: &str) -> NfTablesMessage {
        NfTablesMessage::DeleteTable(TableMessage {
            attributes: vec![TableAttribute::Name(name.into())],
        })
    }

    #[test]
    fn a_datagram_splits_into_its_messages_and_only_manuls_table_counts() {
        let inet = NetfilterProtoFamily::Inet;
        let chain = NfTablesMessage::NewChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(TABLE.into()),
                ChainAttribute::Name("x".into()),
            ],
        });
        let datagram = [
            bytes(inet, table("theirs"), 1),
            bytes(inet, chain.clone(), 2),
            // An ip-family table of the same name is not manul's.
            bytes(NetfilterProtoFamily::IPv4, table(TABLE), 3),
            bytes(inet, table(TABLE), 4),
        ]
        .concat();
        let msgs = messages(&datagram);
        assert_eq!(msgs.len(), 4);
        let ours: Vec<bool> = msgs
            .iter()
            .map(|m| match m {
                Ok(NetlinkMessage {
                    payload:
                        NetlinkPayload::InnerMessage(NetfilterMessage {
                            header,
                            inner: NetfilterMessageInner::NfTables(t),
                            ..
                        }),
                    ..
                }) => about_our_table(header.family, t),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ours, [false, true, false, true]);
        let seqs: Vec<u32> = msgs
            .iter()
            .map(|m| m.as_ref().unwrap().header.sequence_number)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        // A truncated datagram yields what is whole.
        assert_eq!(messages(&datagram[..datagram.len() - 1]).len(), 3);
    }
}
