//! Helpers shared by manul-node's end-to-end tests, on top of the
//! harness's [`manul_tests::node`]: start this package's agent in a lab
//! host, find a peer in its status, claim an IPAM block through
//! manul-ipam.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use manul_status::{NodeStatus, PeerStatus};
use manul_tests::{Daemon, Host, Netns};

/// This package's manul-node in `host` (address `<ipv4>/24`) against
/// `endpoint`, creating no default pool, with `env` on top; logged to
/// `logs/<host>.log`.
pub fn agent(host: &Host, endpoint: &str, logs: &Path, env: &[(&str, &str)]) -> Result<Daemon> {
    let mut all = vec![("NO_DEFAULT_POOLS", "true")];
    all.extend_from_slice(env);
    manul_tests::node::agent(
        Path::new(env!("CARGO_BIN_EXE_manul-node")),
        host,
        endpoint,
        logs,
        &all,
    )
}

/// The agent's `/status` in `ns`, read as manulctl reads it.
pub fn status(ns: &Netns) -> Result<NodeStatus> {
    Ok(serde_json::from_value(manul_tests::node::status(ns)?)?)
}

/// The peer at `address` in `/status`, as a string error for `wait_until`.
pub fn peer(ns: &Netns, address: IpAddr) -> Result<PeerStatus, String> {
    let s = status(ns).map_err(|e| e.to_string())?;
    s.routing
        .peers
        .iter()
        .find(|p| p.address == address)
        .cloned()
        .ok_or_else(|| format!("no peer {address}: {:?}", s.routing.peers))
}

/// One address for `host` through manul-ipam (claims a block, the pool
/// must exist); runs from inside `ns`. Returns the block (/26).
pub fn claim_block(ns: &Netns, endpoint: &str, host: &str) -> Result<ipnet::Ipv4Net> {
    let ip = ns.run(|| -> Result<IpAddr> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let ds =
                manul_datastore::Datastore::connect(&manul_datastore::EtcdConfig::new([endpoint]))
                    .await?;
            let ipam = manul_ipam::Ipam::new(ds);
            let ips = ipam
                .auto_assign(&manul_ipam::AutoAssignArgs {
                    handle_id: format!("k8s-pod-network.test-{host}"),
                    num_v4: 1,
                    host: host.to_string(),
                    ..Default::default()
                })
                .await?;
            Ok(ips[0])
        })
    })?;
    match ip {
        IpAddr::V4(v4) => Ok(ipnet::Ipv4Net::new(v4, 26)?.trunc()),
        IpAddr::V6(_) => anyhow::bail!("an IPv6 address from a v4 request"),
    }
}

/// VXLAN packets on the wire, counted in one namespace: an `AF_PACKET`
/// socket there sees every frame sent and received on its interfaces;
/// those that are IPv4/UDP to port 4789 are counted by their outer
/// source and destination. Stops when dropped.
pub struct VxlanCapture {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<(IpAddr, IpAddr), u64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The outer source and destination of `frame` when it is an Ethernet
/// frame carrying IPv4/UDP to port 4789.
pub fn vxlan_outer(frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != 4789 {
        return None;
    }
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::from(b))
    };
    Some((addr(12)?, addr(16)?))
}

impl VxlanCapture {
    /// Start counting in `ns`.
    pub fn start(ns: &Netns) -> Result<VxlanCapture> {
        Self::start_at(&ns.path())
    }

    /// Start counting in the network namespace at `path` (e.g. one
    /// `scripts/lab` made, `/run/netns/manul-lab-host1`).
    pub fn start_at(path: &Path) -> Result<VxlanCapture> {
        use std::io::Read;
        use std::sync::atomic::Ordering;
        const ETH_P_ALL: u16 = 0x0003;
        let file = std::fs::File::open(path)?;
        // A thread of its own enters the namespace; the socket stays there.
        let socket = std::thread::scope(|s| {
            s.spawn(|| -> Result<socket2::Socket> {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Ok(socket2::Socket::new(
                    socket2::Domain::PACKET,
                    socket2::Type::RAW,
                    Some(socket2::Protocol::from(i32::from(ETH_P_ALL.to_be()))),
                )?)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?
        })?;
        socket.set_read_timeout(Some(std::time::Duration::from_millis(100)))?;
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = (&socket).read(&mut buf)
                    && let Some(key) = vxlan_outer(&buf[..n])
                {
                    *c.lock().unwrap().entry(key).or_insert(0) += 1;
                }
            }
        });
        Ok(VxlanCapture {
            counts,
            stop,
            thread: Some(thread),
        })
    }

    /// VXLAN packets seen from `src` to `dst` so far.
    pub fn count(&self, src: IpAddr, dst: IpAddr) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(&(src, dst))
            .copied()
            .unwrap_or(0)
    }

    /// Everything counted so far.
    pub fn all(&self) -> std::collections::BTreeMap<(IpAddr, IpAddr), u64> {
        self.counts.lock().unwrap().clone()
    }
}

impl Drop for VxlanCapture {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `count` pings (every 50 ms) from `ns` to `dst` with `size` octets of
/// payload and the don't-fragment bit; ping's output (an error when it
/// could not run).
pub fn ping_df(ns: &Netns, dst: IpAddr, size: usize, count: u32) -> Result<String> {
    let out = ns
        .command("ping")
        .args([
            "-n",
            "-M",
            "do",
            "-s",
            &size.to_string(),
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "1",
            &dst.to_string(),
        ])
        .output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// How many replies ping's summary says it received.
pub fn received(ping_output: &str) -> u32 {
    ping_output
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}
