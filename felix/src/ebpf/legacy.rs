//! Attachments for kernels without TCX (before 6.6): a `clsact` qdisc and
//! a direct-action `cls_bpf` filter at TC ingress, as `tc filter add ...
//! bpf da` makes (aya's netlink attach). Such a filter holds its program in
//! the kernel by itself — it outlives felix without a pin — so felix marks
//! it with an empty directory under the pin directory's `links/`, named
//! after the interface, where a TCX attachment has its pinned link.
//!
//! felix's filter sits at a priority and handle of its own
//! ([`PRIORITY`], [`HANDLE`]); filters of other owners are never touched.
//! Every function here works in the calling thread's network namespace.

use std::io;

use aya::programs::links::Link;
use aya::programs::tc::{NlOptions, SchedClassifierLink, TcAttachOptions, TcError, TcHandle};
use aya::programs::{ProgramError, SchedClassifier, TcAttachType};

/// The filter priority felix's programs take (`tc filter ... pref 28014`).
pub const PRIORITY: u16 = 0x6d6e;
/// The filter handle at that priority.
pub const HANDLE: TcHandle = TcHandle::new(0, 1);

fn os_error(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::TcError(TcError::NetlinkError(n)) => n.raw_os_error(),
        ProgramError::TcError(TcError::IoError(e)) => e.raw_os_error(),
        _ => None,
    }
}

/// Attach `prog` at ingress of `interface`; `Ok(false)` when felix's
/// filter is there already. `marked`: felix's marker for this interface
/// exists, so a filter at our priority and handle runs this pin
/// directory's program; without the marker such a filter is stale (a
/// removed pin directory's) and is replaced.
pub fn attach(prog: &mut SchedClassifier, interface: &str, marked: bool) -> Result<bool, String> {
    match aya::programs::tc::qdisc_add_clsact(interface) {
        Ok(()) => {}
        Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(format!("adding the clsact qdisc: {e}")),
    }
    let options = || {
        TcAttachOptions::Netlink(NlOptions {
            priority: PRIORITY,
            handle: HANDLE,
            classid: None,
        })
    };
    let id = match prog.attach_with_options(interface, TcAttachType::Ingress, options()) {
        Ok(id) => id,
        Err(e) if os_error(&e) == Some(libc::EEXIST) => {
            if marked {
                return Ok(false);
            }
            detach(interface).map_err(|e| format!("replacing a stale filter: {e}"))?;
            prog.attach_with_options(interface, TcAttachType::Ingress, options())
                .map_err(|e| format!("attach (tc): {e}"))?
        }
        Err(e) => return Err(format!("attach (tc): {e}")),
    };
    let link = prog.take_link(id).map_err(|e| e.to_string())?;
    // The filter must outlive this process: dropping the link would delete it.
    std::mem::forget(link);
    Ok(true)
}

/// Delete felix's filter from `interface`; `Ok` when it is gone (also when
/// the interface is).
pub fn detach(interface: &str) -> io::Result<()> {
    let link = match SchedClassifierLink::attached(
        interface,
        TcAttachType::Ingress,
        PRIORITY,
        HANDLE,
        None,
    ) {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
        Err(e) => return Err(e),
    };
    match link.detach() {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                os_error(&e),
                Some(libc::ENOENT | libc::ENODEV | libc::EINVAL)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}
