//! When a host's kernel holds a route to every other host's block: an
//! `ip -4 monitor route` per host, read on a thread of its own, each
//! line timestamped when read (no polling: a poll of 50 namespaces costs
//! 50 process starts, which on this 2-core machine slows the very agents
//! being timed).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use manul_tests::Netns;

/// What one host's watcher has seen.
#[derive(Debug, Default)]
struct Seen {
    /// Wanted blocks currently routed.
    held: BTreeSet<String>,
    /// When the first wanted block was routed.
    first: Option<Instant>,
    /// When every wanted block was routed at once (the first time).
    complete: Option<Instant>,
}

/// One host's watcher; stops when dropped.
pub struct RouteWatch {
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl RouteWatch {
    /// Watch `ns` for routes to each of `wanted` (prefixes as `ip` prints
    /// them, e.g. `10.65.0.64/26`) added with `proto` (`80`, `bird`).
    /// Started before the daemons, so nothing is missed.
    pub fn start(ns: &Netns, wanted: Vec<String>, proto: &str) -> Result<RouteWatch> {
        let mut child = ns
            .command("ip")
            .args(["-4", "monitor", "route"])
            .stdout(Stdio::piped())
            .spawn()
            .context("ip monitor route")?;
        let out = child.stdout.take().context("stdout")?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, proto) = (seen.clone(), format!(" proto {proto}"));
        std::thread::spawn(move || {
            let wanted: BTreeSet<String> = wanted.into_iter().collect();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let at = Instant::now();
                let (deleted, rest) = match line.strip_prefix("Deleted ") {
                    Some(r) => (true, r),
                    None => (false, line.as_str()),
                };
                let Some(prefix) = rest.split_whitespace().next() else {
                    continue;
                };
                if !wanted.contains(prefix) || !rest.contains(&proto) {
                    continue;
                }
                let mut s = s.lock().unwrap();
                if deleted {
                    s.held.remove(prefix);
                    continue;
                }
                s.held.insert(prefix.to_owned());
                s.first.get_or_insert(at);
                if s.complete.is_none() && s.held.len() == wanted.len() {
                    s.complete = Some(at);
                }
            }
        });
        Ok(RouteWatch { child, seen })
    }

    /// When every wanted block was first routed at once.
    pub fn complete(&self) -> Option<Instant> {
        self.seen.lock().unwrap().complete
    }

    /// When the first wanted block was routed.
    pub fn first(&self) -> Option<Instant> {
        self.seen.lock().unwrap().first
    }

    /// How many wanted blocks are routed now.
    pub fn held(&self) -> usize {
        self.seen.lock().unwrap().held.len()
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
