//! Attaching the programs to interfaces and detaching them: a pinned TCX
//! link per interface (Linux 6.6 and later), or a legacy TC filter marked
//! by an empty directory where the link would be pinned.

use std::fs;
use std::io;
use std::path::PathBuf;

use aya::programs::links::FdLink;
use aya::programs::tc::TcAttachOptions;
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType};
use aya::util::KernelVersion;

use super::{Dataplane, LINKS_DIR};
use crate::ebpf::error::EbpfError;
use crate::ebpf::legacy;
use crate::ebpf::link::links_in;
use crate::netns::in_netns;

/// How programs are attached to interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX where the kernel has it (6.6 and later), else legacy TC.
    #[default]
    Auto,
    /// TCX links (pinned), Linux 6.6 and later.
    Tcx,
    /// A `clsact` qdisc and a `cls_bpf` filter ([`crate::ebpf::legacy`]),
    /// for older kernels (5.10 and later: `bpf_redirect_peer`).
    Tc,
}

impl std::str::FromStr for AttachMode {
    type Err = String;

    /// Calico's `BPFAttachType` spelling: `auto`, `tcx`, `tc` (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AttachMode::Auto),
            "tcx" => Ok(AttachMode::Tcx),
            "tc" => Ok(AttachMode::Tc),
            other => Err(format!("attach mode {other:?}: expected auto, tcx or tc")),
        }
    }
}

/// What [`Dataplane::attach`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// A new link now runs the program on the interface.
    Attached,
    /// Our program was already attached there (pinned link kept).
    AlreadyAttached,
}

/// What one [`Dataplane::sync_attachments`] did.
#[derive(Debug, Default)]
pub struct AttachReport {
    /// Interfaces that got a new link.
    pub attached: Vec<String>,
    /// Interfaces whose link was removed.
    pub detached: Vec<String>,
    /// Interfaces where attaching or detaching failed.
    pub failed: Vec<(String, EbpfError)>,
}

/// Whether to attach with TCX under `mode` on this kernel.
pub fn use_tcx(mode: AttachMode) -> Result<bool, EbpfError> {
    let kernel = KernelVersion::current()
        .map_err(|e| EbpfError::Unsupported(format!("kernel version unknown: {e}")))?;
    let has_tcx = kernel >= KernelVersion::new(6, 6, 0);
    match mode {
        AttachMode::Auto => Ok(has_tcx),
        AttachMode::Tc => Ok(false),
        AttachMode::Tcx if has_tcx => Ok(true),
        AttachMode::Tcx => Err(EbpfError::Unsupported(format!(
            "kernel {kernel:?} is older than 6.6 (no TCX attachments; attach mode tc or auto uses legacy TC)"
        ))),
    }
}

impl Dataplane {
    fn link_pin(&self, interface: &str) -> PathBuf {
        self.config.pin_dir.join(LINKS_DIR).join(interface)
    }

    /// Attach the workload program at TCX ingress of workload interface
    /// `interface` (in the configured namespace) and pin the link; a no-op
    /// when it is already there.
    pub fn attach(&mut self, interface: &str) -> Result<Attach, EbpfError> {
        self.attach_program(false, interface)
    }

    /// Attach the uplink program at TCX ingress of the host's uplink
    /// `interface`, as [`Dataplane::attach`] does.
    pub fn attach_uplink(&mut self, interface: &str) -> Result<Attach, EbpfError> {
        self.attach_program(true, interface)
    }

    fn attach_program(&mut self, uplink: bool, interface: &str) -> Result<Attach, EbpfError> {
        let err = |reason: String| EbpfError::Attach {
            interface: interface.to_string(),
            reason,
        };
        let pin = self.link_pin(interface);
        // Attached the other way (the attach mode changed): detach first.
        if pin.exists() && pin.is_dir() == self.tcx {
            self.detach(interface)?;
        }
        if !self.tcx {
            return self.attach_legacy(uplink, interface).map_err(err);
        }
        let prog = if uplink {
            &mut self.uplink
        } else {
            &mut self.workload
        };
        let prog_id = prog
            .info()
            .map_err(|e| err(format!("program info: {e}")))?
            .id();
        let netns = self.config.netns.clone();
        in_netns(netns.as_deref(), || {
            let attached = SchedClassifier::query_tcx(interface, TcAttachType::Ingress)
                .map(|(_, progs)| progs.iter().any(|p| p.id() == prog_id))
                .unwrap_or(false);
            if attached && pin.exists() {
                return Ok(Ok(Attach::AlreadyAttached));
            }
            // A pin left from an interface of the same name that is gone.
            let _ = fs::remove_file(&pin);
            let r = (|| -> Result<Attach, String> {
                let id = prog
                    .attach_with_options(
                        interface,
                        TcAttachType::Ingress,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )
                    .map_err(|e| format!("attach: {e}"))?;
                let link = prog.take_link(id).map_err(|e| e.to_string())?;
                let fd: FdLink = link
                    .try_into()
                    .map_err(|e: aya::programs::links::LinkError| e.to_string())?;
                fd.pin(&pin).map_err(|e| format!("pin: {e}"))?;
                Ok(Attach::Attached)
            })();
            Ok(r)
        })?
        .map_err(err)
    }

    /// [`Dataplane::attach_program`] with a legacy TC filter; its marker
    /// is made once the filter is there.
    fn attach_legacy(&mut self, uplink: bool, interface: &str) -> Result<Attach, String> {
        let pin = self.link_pin(interface);
        let marked = pin.is_dir();
        let prog = if uplink {
            &mut self.uplink
        } else {
            &mut self.workload
        };
        let netns = self.config.netns.clone();
        let new = in_netns(netns.as_deref(), || {
            Ok(legacy::attach(prog, interface, marked))
        })
        .map_err(|e| e.to_string())??;
        match fs::create_dir(&pin) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(format!("marker {}: {e}", pin.display()));
            }
            _ => {}
        }
        Ok(if new {
            Attach::Attached
        } else {
            Attach::AlreadyAttached
        })
    }

    /// Detach from `interface`, workload or uplink (unpin its link); `false`
    /// if not attached.
    /// Done when it returns: the link is detached explicitly, not left to
    /// the kernel's deferred release of an unpinned link.
    pub fn detach(&mut self, interface: &str) -> Result<bool, EbpfError> {
        let pin = self.link_pin(interface);
        if pin.is_dir() {
            in_netns(self.config.netns.as_deref(), || legacy::detach(interface)).map_err(|e| {
                EbpfError::Attach {
                    interface: interface.to_string(),
                    reason: format!("detach (tc): {e}"),
                }
            })?;
            fs::remove_dir(&pin)?;
            return Ok(true);
        }
        let link = crate::ebpf::sys::obj_get(&pin);
        match fs::remove_file(&pin) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if let Ok(fd) = link {
            // A link whose interface is gone is defunct already: no error.
            if let Err(e) = crate::ebpf::sys::link_detach(&fd)
                && e.raw_os_error() != Some(libc::ENOLINK)
            {
                return Err(EbpfError::Attach {
                    interface: interface.to_string(),
                    reason: format!("detach: {e}"),
                });
            }
        }
        Ok(true)
    }

    /// Make the attachments follow the interfaces: attach the workload
    /// program to each of `workloads` and the uplink program to each of
    /// `uplinks` that exists in the namespace (an interface deleted and made
    /// again gets a new link), and detach every other pinned link (its
    /// interface is gone or no longer wanted). One interface's failure does
    /// not stop the others; it is reported.
    pub fn sync_attachments(
        &mut self,
        workloads: &[String],
        uplinks: &[String],
    ) -> Result<AttachReport, EbpfError> {
        let names: Vec<String> = workloads.iter().chain(uplinks).cloned().collect();
        let exists: Vec<bool> = links_in(self.config.netns.as_deref(), &names)?
            .iter()
            .map(Option::is_some)
            .collect();
        let mut report = AttachReport::default();
        let mut wanted = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if !exists[i] {
                continue;
            }
            wanted.push(name.clone());
            let r = if i < workloads.len() {
                self.attach(name)
            } else {
                self.attach_uplink(name)
            };
            match r {
                Ok(Attach::Attached) => report.attached.push(name.clone()),
                Ok(Attach::AlreadyAttached) => {}
                Err(e) => report.failed.push((name.clone(), e)),
            }
        }
        for name in self.attached()? {
            if !wanted.contains(&name) {
                match self.detach(&name) {
                    Ok(_) => report.detached.push(name),
                    Err(e) => report.failed.push((name, e)),
                }
            }
        }
        Ok(report)
    }

    /// The interfaces with a pinned link.
    pub fn attached(&self) -> Result<Vec<String>, EbpfError> {
        let mut v: Vec<String> = fs::read_dir(self.config.pin_dir.join(LINKS_DIR))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }
}
