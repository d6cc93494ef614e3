//! The rtnetlink calls felix makes: dump routes and links (retried when the
//! kernel marks a dump interrupted, `NLM_F_DUMP_INTR`: the table changed
//! while it was being read), and write one route, returning the kernel's
//! error code.

use std::collections::HashMap;

use futures_util::StreamExt;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REPLACE, NLM_F_REQUEST,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::Handle;

use crate::kernel::KernelRoute;

/// Dumps retried this many times when interrupted, then used as they are
/// (the next resync reads again).
pub const DUMP_ATTEMPTS: usize = 5;

/// A netlink failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetlinkError {
    /// The connection is gone.
    #[error("netlink connection closed")]
    Closed,
    /// The kernel refused: errno.
    #[error("kernel refused: {}", std::io::Error::from_raw_os_error(*.0))]
    Errno(i32),
}

impl NetlinkError {
    /// The errno, if the kernel answered one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Errno(e) => Some(*e),
            NetlinkError::Closed => None,
        }
    }
}

/// A dump's messages, and whether the kernel said it was interrupted.
async fn dump_once(
    handle: &mut Handle,
    msg: RouteNetlinkMessage,
) -> Result<(Vec<RouteNetlinkMessage>, bool), NetlinkError> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let resp = handle.request(req).map_err(|_| NetlinkError::Closed)?;
    collect_dump(resp).await
}

/// Read one dump's replies: the messages, and whether any reply carried
/// `NLM_F_DUMP_INTR` (or the dump ended in `EINTR`). Another error code
/// fails the dump.
pub async fn collect_dump(
    mut replies: impl futures_util::Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + Unpin,
) -> Result<(Vec<RouteNetlinkMessage>, bool), NetlinkError> {
    let mut out = Vec::new();
    let mut interrupted = false;
    while let Some(m) = replies.next().await {
        if m.header.flags & NLM_F_DUMP_INTR != 0 {
            interrupted = true;
        }
        match m.payload {
            NetlinkPayload::InnerMessage(inner) => out.push(inner),
            NetlinkPayload::Error(e) => match e.code {
                Some(code) if code.get() == -libc::EINTR => interrupted = true,
                Some(code) => return Err(NetlinkError::Errno(-code.get())),
                None => {}
            },
            _ => {}
        }
    }
    Ok((out, interrupted))
}

/// Run `attempt` (one dump) again while it reports itself interrupted, at
/// most [`DUMP_ATTEMPTS`] times in all; the last attempt's messages are
/// used even if interrupted (the next resync reads again). Returns the
/// messages and how many attempts were retried.
pub async fn retry_interrupted<T, F, Fut>(mut attempt: F) -> Result<(Vec<T>, usize), NetlinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, bool), NetlinkError>>,
{
    let mut retries = 0;
    loop {
        let (msgs, interrupted) = attempt().await?;
        if !interrupted || retries + 1 >= DUMP_ATTEMPTS {
            if interrupted {
                tracing::warn!(
                    "netlink dump still interrupted after {DUMP_ATTEMPTS} attempts; using it"
                );
            }
            return Ok((msgs, retries));
        }
        retries += 1;
        tracing::debug!(retries, "netlink dump interrupted; dumping again");
    }
}

/// Run a dump, again while the kernel reports it interrupted. Returns the
/// messages and how many attempts were interrupted.
async fn dump(
    handle: &mut Handle,
    make: impl Fn() -> RouteNetlinkMessage,
) -> Result<(Vec<RouteNetlinkMessage>, usize), NetlinkError> {
    retry_interrupted(|| {
        let (mut handle, msg) = (handle.clone(), make());
        async move { dump_once(&mut handle, msg).await }
    })
    .await
}

/// Every IPv4 and IPv6 route; and the number of interrupted dumps retried.
pub async fn dump_routes(handle: &mut Handle) -> Result<(Vec<KernelRoute>, usize), NetlinkError> {
    let mut out = Vec::new();
    let mut retries = 0;
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let (msgs, r) = dump(handle, || {
            let mut m = RouteMessage::default();
            m.header.address_family = family;
            RouteNetlinkMessage::GetRoute(m)
        })
        .await?;
        retries += r;
        out.extend(msgs.iter().filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => KernelRoute::from_message(r),
            _ => None,
        }));
    }
    Ok((out, retries))
}

/// The name of a link message's interface.
pub fn link_name(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// Interface name → index.
pub async fn dump_links(
    handle: &mut Handle,
) -> Result<(HashMap<String, u32>, usize), NetlinkError> {
    let (msgs, retries) = dump(handle, || {
        RouteNetlinkMessage::GetLink(LinkMessage::default())
    })
    .await?;
    let links = msgs
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => link_name(l).map(|n| (n.to_owned(), l.header.index)),
            _ => None,
        })
        .collect();
    Ok((links, retries))
}

/// Send one request and wait for its acknowledgement.
async fn request(
    handle: &mut Handle,
    msg: RouteNetlinkMessage,
    flags: u16,
) -> Result<(), NetlinkError> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut resp = handle.request(req).map_err(|_| NetlinkError::Closed)?;
    while let Some(m) = resp.next().await {
        if let NetlinkPayload::Error(e) = m.payload {
            if let Some(code) = e.code {
                return Err(NetlinkError::Errno(-code.get()));
            }
        }
    }
    Ok(())
}

/// Create or replace `route` (`RTM_NEWROUTE`, `NLM_F_CREATE|NLM_F_REPLACE`).
pub async fn upsert(handle: &mut Handle, route: &KernelRoute) -> Result<(), NetlinkError> {
    request(
        handle,
        RouteNetlinkMessage::NewRoute(route.to_message()),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
    .await
}

/// Delete `route` (`RTM_DELROUTE`); already gone counts as done.
pub async fn delete(handle: &mut Handle, route: &KernelRoute) -> Result<(), NetlinkError> {
    match request(
        handle,
        RouteNetlinkMessage::DelRoute(route.to_delete_message()),
        0,
    )
    .await
    {
        Err(NetlinkError::Errno(libc::ESRCH)) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{ErrorMessage, NetlinkHeader};

    fn reply(flags: u16, index: u32) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut l = LinkMessage::default();
        l.header.index = index;
        let mut m = NetlinkMessage::from(RouteNetlinkMessage::NewLink(l));
        m.header.flags = flags;
        m
    }

    fn error(code: i32) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut e = ErrorMessage::default();
        e.code = std::num::NonZeroI32::new(code);
        NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::Error(e))
    }

    #[tokio::test]
    async fn a_reply_flagged_dump_intr_or_an_eintr_marks_the_dump_interrupted() {
        let clean = futures_util::stream::iter(vec![reply(0, 1), reply(0, 2)]);
        let (msgs, intr) = collect_dump(clean).await.unwrap();
        assert_eq!((msgs.len(), intr), (2, false));
        let flagged = futures_util::stream::iter(vec![reply(0, 1), reply(NLM_F_DUMP_INTR, 2)]);
        assert!(collect_dump(flagged).await.unwrap().1);
        let eintr = futures_util::stream::iter(vec![reply(0, 1), error(-libc::EINTR)]);
        assert!(collect_dump(eintr).await.unwrap().1);
        let refused = futures_util::stream::iter(vec![error(-libc::EPERM)]);
        assert_eq!(
            collect_dump(refused).await.unwrap_err(),
            NetlinkError::Errno(libc::EPERM)
        );
    }

    /// A fake dump answering from a script of (messages, interrupted).
    async fn scripted(script: Vec<bool>) -> (Result<(Vec<u32>, usize), NetlinkError>, usize) {
        let calls = std::cell::Cell::new(0usize);
        let r = retry_interrupted(|| {
            let i = calls.get();
            calls.set(i + 1);
            let interrupted = script[i.min(script.len() - 1)];
            async move { Ok((vec![i as u32], interrupted)) }
        })
        .await;
        (r, calls.get())
    }

    #[tokio::test]
    async fn interrupted_dumps_are_retried_until_clean_or_attempts_run_out() {
        let (r, calls) = scripted(vec![true, true, false]).await;
        assert_eq!(r.unwrap(), (vec![2], 2), "the clean third dump is used");
        assert_eq!(calls, 3);
        let (r, calls) = scripted(vec![false]).await;
        assert_eq!((r.unwrap(), calls), ((vec![0], 0), 1));
        let (r, calls) = scripted(vec![true]).await;
        assert_eq!(calls, DUMP_ATTEMPTS, "never more than DUMP_ATTEMPTS dumps");
        assert_eq!(
            r.unwrap(),
            (vec![DUMP_ATTEMPTS as u32 - 1], DUMP_ATTEMPTS - 1),
            "then the last one is used"
        );
    }

    #[tokio::test]
    async fn a_failing_dump_is_not_retried() {
        let calls = std::cell::Cell::new(0);
        let r: Result<(Vec<u32>, usize), _> = retry_interrupted(|| {
            calls.set(calls.get() + 1);
            async { Err(NetlinkError::Closed) }
        })
        .await;
        assert_eq!((r, calls.get()), (Err(NetlinkError::Closed), 1));
    }
}
