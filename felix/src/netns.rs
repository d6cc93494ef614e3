//! Working in a given network namespace. A netlink socket belongs to the
//! namespace of the thread that creates it, so felix creates its sockets on
//! a short-lived thread that has entered the namespace with `setns(2)`
//! (the calling process stays where it is; no `ip netns exec`).

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

/// Run `f` inside the network namespace at `path` (e.g.
/// `/run/netns/<name>`), or here when `path` is `None`. `f` runs within the
/// current tokio runtime's context, so it may create tokio sockets.
pub fn in_netns<T: Send>(
    path: Option<&Path>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let Some(path) = path else {
        return f();
    };
    let file = File::open(path)?;
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            let _guard = runtime.as_ref().map(|r| r.enter());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
