//! [`MtuDriver`]: the task that keeps the MTUs ([`crate::mtu`]) in force.
//! It finds the uplink (the interface holding the node's address) and
//! its MTU, computes the VXLAN and pod MTUs, publishes them (the overlay
//! sets the devices' MTU from them, `/status` shows them) and writes the
//! pod MTU to the MTU file for the CNI plugin.
//!
//! It runs from the first inputs on — before felix writes any route — so
//! a pod added while felix still holds its writes after a start gets the
//! right MTU. It looks again when the inputs change, when the uplink's
//! link changes or the node's address is added or removed anywhere (link
//! and address notifications), and on a timer (Calico's felix checks the
//! host MTU periodically too).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::TryStreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::{Event, Events, group};
use crate::mtu::{MtuConfig, MtuInputs, Mtus, compute};
use crate::netns::in_netns;

/// After a failed look or write, the next one comes this soon.
const RETRY: Duration = Duration::from_secs(1);

/// The running driver; dropping it stops the task.
#[derive(Debug)]
pub struct MtuDriver {
    inputs: watch::Sender<Option<MtuInputs>>,
    mtus: watch::Receiver<Option<Mtus>>,
    task: JoinHandle<()>,
}

impl Drop for MtuDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MtuDriver {
    /// Open the netlink sockets in `netns` and start the task; it looks
    /// again every `recheck`.
    pub async fn start(
        netns: Option<PathBuf>,
        config: MtuConfig,
        recheck: Duration,
    ) -> std::io::Result<MtuDriver> {
        let handle = in_netns(netns.as_deref(), || {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok(handle)
        })?;
        let events = Events::open(
            netns.as_deref(),
            &[group::LINK, group::IPV4_IFADDR, group::IPV6_IFADDR],
            None,
        )?;
        let (inputs, inputs_rx) = watch::channel(None);
        let (mtus_tx, mtus) = watch::channel(None);
        let task = tokio::spawn(run(handle, events, config, inputs_rx, mtus_tx, recheck));
        Ok(MtuDriver { inputs, mtus, task })
    }

    /// Replace the inputs (a no-op when unchanged).
    pub fn set_inputs(&self, inputs: MtuInputs) {
        self.inputs.send_if_modified(|i| {
            let changed = *i != Some(inputs);
            *i = Some(inputs);
            changed
        });
    }

    /// The MTUs in force as they change (`None` before the first inputs).
    pub fn watch(&self) -> watch::Receiver<Option<Mtus>> {
        self.mtus.clone()
    }
}

/// The index and MTU of the interface holding `ip`.
async fn uplink(handle: &Handle, ip: IpAddr) -> Result<Option<(u32, u32)>, rtnetlink::Error> {
    let mut addrs = handle.address().get().execute();
    let mut index = None;
    while let Some(a) = addrs.try_next().await? {
        let holds = a.attributes.iter().any(
            |x| matches!(x, AddressAttribute::Local(l) | AddressAttribute::Address(l) if *l == ip),
        );
        if holds {
            index = Some(a.header.index);
            break;
        }
    }
    let Some(index) = index else {
        return Ok(None);
    };
    let mut links = handle.link().get().match_index(index).execute();
    while let Some(l) = links.try_next().await? {
        if let Some(mtu) = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        }) {
            return Ok(Some((index, mtu)));
        }
    }
    Ok(None)
}

/// Write `mtu` to `path` (as Calico: the number alone) unless it holds
/// it already; through a temporary file and a rename, so a reader never
/// sees half of it.
pub fn write_mtu_file(path: &Path, mtu: u32) -> std::io::Result<bool> {
    let text = mtu.to_string();
    if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == text) {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

/// Whether `msg` may change the uplink (the interface holding `addr`,
/// `index` when found) or its MTU: the uplink's link, or `addr` added or
/// removed anywhere (a pod's interface coming and going is not).
fn concerns(msg: &Event, addr: Option<IpAddr>, index: Option<u32>) -> bool {
    let NetlinkPayload::InnerMessage(inner) = &msg.payload else {
        return matches!(msg.payload, NetlinkPayload::Overrun(_));
    };
    match inner {
        RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
            index == Some(l.header.index)
        }
        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
            a.attributes.iter().any(|x| {
                matches!(x, AddressAttribute::Local(l) | AddressAttribute::Address(l) if Some(*l) == addr)
            })
        }
        _ => false,
    }
}

async fn run(
    handle: Handle,
    mut events: Events,
    config: MtuConfig,
    mut inputs_rx: watch::Receiver<Option<MtuInputs>>,
    out: watch::Sender<Option<Mtus>>,
    recheck: Duration,
) {
    let mut timer = tokio::time::interval(recheck);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events_open = true;
    let mut written: Option<u32> = None;
    loop {
        let inputs = *inputs_rx.borrow_and_update();
        let mut clean = true;
        let mut index = None;
        if let Some(inputs) = inputs {
            let found = match inputs.uplink {
                Some(ip) => match uplink(&handle, ip).await {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(error = %e, "felix: finding the uplink's MTU failed; retrying");
                        clean = false;
                        None
                    }
                },
                None => None,
            };
            index = found.map(|(i, _)| i);
            if clean {
                let mtus = compute(found.map(|(_, m)| m), &config, &inputs);
                if !mtus.detected {
                    tracing::warn!(uplink = ?inputs.uplink, host_mtu = mtus.host, "felix: no interface holds this node's address; using Calico's fallback host MTU");
                }
                out.send_if_modified(|o| {
                    let changed = *o != Some(mtus);
                    if changed {
                        tracing::info!(?mtus, "felix: MTUs");
                    }
                    *o = Some(mtus);
                    changed
                });
                if let Some(path) = &config.file
                    && written != Some(mtus.pod)
                {
                    match write_mtu_file(path, mtus.pod) {
                        Ok(_) => written = Some(mtus.pod),
                        Err(e) => {
                            tracing::warn!(file = %path.display(), error = %e, "felix: writing the pod MTU failed; retrying");
                            clean = false;
                        }
                    }
                }
            }
        }
        timer.reset();
        loop {
            tokio::select! {
                changed = inputs_rx.changed() => {
                    if changed.is_err() { return }
                    break;
                }
                event = events.next(), if events_open && inputs.is_some() => {
                    let Some(first) = event else {
                        events_open = false;
                        continue;
                    };
                    let addr = inputs.and_then(|i| i.uplink);
                    let mut relevant = concerns(&first, addr, index);
                    while let Some(msg) = events.try_next() {
                        relevant |= concerns(&msg, addr, index);
                    }
                    if relevant {
                        break;
                    }
                }
                _ = timer.tick(), if inputs.is_some() => break,
                _ = tokio::time::sleep(RETRY), if !clean => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_the_number_alone_and_is_written_only_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("manul-mtu-{}", std::process::id()));
        let path = dir.join("sub/mtu");
        assert!(write_mtu_file(&path, 1450).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1450");
        assert!(!write_mtu_file(&path, 1450).unwrap());
        assert!(write_mtu_file(&path, 1500).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1500");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
