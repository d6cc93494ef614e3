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
    let mut resp = handle.request(req).map_err(|_| NetlinkError::Closed)?;
    let mut out = Vec::new();
    let mut interrupted = false;
    while let Some(m) = resp.next().await {
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

/// Run a dump, again while the kernel reports it interrupted. Returns the
/// messages and how many attempts were interrupted.
async fn dump(
    handle: &mut Handle,
    make: impl Fn() -> RouteNetlinkMessage,
) -> Result<(Vec<RouteNetlinkMessage>, usize), NetlinkError> {
    let mut retries = 0;
    loop {
        let (msgs, interrupted) = dump_once(handle, make()).await?;
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
