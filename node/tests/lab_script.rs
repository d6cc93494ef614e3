//! `scripts/lab` itself, as a user runs it: `up --hosts 2 --rr` builds the
//! lab (host1 a route reflector peered by one BGPPeer, a BIRD ToR, two
//! pods per host, an external host outside every pool) and proves every
//! pod reaches every other, and the external host through NAT; `status`
//! reports the hosts' peers; `down` leaves nothing: no `manul-lab-*`
//! namespace, no state directory, none of the processes it started.
//!
//! In between, what each agent says of its kernel routes (`manulctl node
//! status`) is compared with what the kernel holds (`ip route show proto
//! 80`): right as `up` returns, right after a pod is added, and while an
//! agent restarted in place holds its writes.
//!
//! `up --hosts 2 --backend vxlan` builds a VXLAN-only lab: every pod
//! reaches every other, the agents run no BGP, the routes go through
//! `vxlan.calico`, and pings between pods on different hosts cross the
//! wire as VXLAN (UDP 4789), counted in host1.
//!
//! Both tests use the lab's fixed names: nextest runs them one at a time
//! (test group `lab-script`, `.config/nextest.toml`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use manul_status::{HoldReason, NodeStatus};
use manul_tests::{Need, require};

const STATE: &str = "/run/manul-lab";
/// The lab's etcd (scripts/lab).
const ETCD: &str = "http://10.88.0.250:2379";

/// The directory of this test run's binaries, with manul-cni and manulctl
/// built when missing (a run of this crate's tests alone).
fn bin_dir() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_manul-node"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for name in ["manul-cni", "manulctl"] {
        if !dir.join(name).exists() {
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", name])
                .status()?;
            ensure!(status.success(), "cargo build -p {name} failed");
        }
    }
    Ok(dir)
}

/// Run `scripts/lab` with this run's binaries (it builds nothing then).
fn lab(args: &[&str]) -> Result<Output> {
    let script = manul_tests::package_dir!().join("../scripts/lab");
    Ok(Command::new(script)
        .args(args)
        .env("MANUL_LAB_BIN", bin_dir()?)
        .output()?)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Takes the lab down however the test ends.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = lab(&["down"]);
    }
}

fn lab_namespaces() -> Result<Vec<String>> {
    let out = Command::new("ip").args(["netns", "list"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("manul-lab-"))
        .map(str::to_string)
        .collect())
}

/// `program args` in the lab namespace `ns`.
fn in_ns(ns: &str, program: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(program)
        .args(args)
        .output()?)
}

/// The routes with felix's protocol in host `h`'s kernel (main table,
/// IPv4 and IPv6): `ip route show proto 80`, one route per line (a
/// multipath route's next hops are indented lines of their own).
fn kernel_routes(h: usize) -> Result<(usize, usize)> {
    let count = |family: &str| -> Result<usize> {
        let out = in_ns(
            &format!("manul-lab-host{h}"),
            Path::new("ip"),
            &[family, "route", "show", "proto", "80"],
        )?;
        ensure!(out.status.success(), "ip route: {}", text(&out));
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
            .count())
    };
    Ok((count("-4")?, count("-6")?))
}

/// What host `h`'s agent says through `manulctl node status`: the status
/// (`-o json`) and the table a person reads.
fn reported(bin: &Path, h: usize) -> Result<(NodeStatus, String)> {
    let ns = format!("manul-lab-host{h}");
    let ctl = bin.join("manulctl");
    let json = in_ns(&ns, &ctl, &["node", "status", "-o", "json"])?;
    ensure!(json.status.success(), "manulctl: {}", text(&json));
    let table = in_ns(&ns, &ctl, &["node", "status"])?;
    ensure!(table.status.success(), "manulctl: {}", text(&table));
    Ok((
        serde_json::from_slice(&json.stdout).context("manulctl node status -o json")?,
        String::from_utf8_lossy(&table.stdout).into_owned(),
    ))
}

/// Compare host `h`'s report with its kernel, `when`. The kernel is read
/// before and after the report; the report must equal one of the two
/// readings (a route the kernel gained in between, e.g. from a pod
/// added, may be in it or not), in the JSON and in the table.
fn report_matches_kernel(bin: &Path, h: usize, when: &str) -> Result<NodeStatus> {
    let before = kernel_routes(h)?;
    let (status, table) = reported(bin, h)?;
    let after = kernel_routes(h)?;
    let k = status.routing.routes.kernel;
    ensure!(
        (k.ipv4, k.ipv6) == before || (k.ipv4, k.ipv6) == after,
        "host{h} {when}: manulctl node status says {k:?} in the kernel, `ip route show proto 80` has {before:?} then {after:?}\n{table}"
    );
    let line = format!(
        "Kernel routes: {} in the kernel ({} IPv4, {} IPv6)",
        k.total(),
        k.ipv4,
        k.ipv6
    );
    ensure!(
        table.contains(&line),
        "host{h} {when}: no `{line}` in\n{table}"
    );
    Ok(status)
}

/// Add pod `p` to host `h` through manul-cni, as `scripts/lab` does
/// (the lab's names: namespace `manul-lab-hHpP`, container `lab-hH-pP`).
fn add_pod(bin: &Path, h: usize, p: usize) -> Result<()> {
    let pod = format!("manul-lab-h{h}p{p}");
    let out = Command::new("ip").args(["netns", "add", &pod]).output()?;
    ensure!(out.status.success(), "ip netns add: {}", text(&out));
    let mut plugin = Command::new("nsenter");
    plugin
        .arg(format!("--net=/run/netns/manul-lab-host{h}"))
        .arg(bin.join("manul-cni"));
    manul_tests::node::cni_call(
        plugin,
        &format!("host{h}"),
        "ADD",
        &format!("lab-h{h}-p{p}"),
        Path::new(&format!("/run/netns/{pod}")),
        ETCD,
    )?;
    Ok(())
}

/// Restart host `h`'s agent in place, as an operator would (SIGTERM, then
/// the same command again); its pid file is the new one's, so `scripts/lab
/// down` stops it.
fn restart_agent(bin: &Path, h: usize) -> Result<()> {
    let pid_file = format!("{STATE}/node{h}.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("{STATE}/node{h}.log"))?;
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/manul-lab-host{h}"))
        .arg(bin.join("manul-node"))
        .env("NODENAME", format!("host{h}"))
        .env("IP", format!("10.88.0.{h}/24"))
        .env("ETCD_ENDPOINTS", ETCD)
        .env("NO_DEFAULT_POOLS", "true")
        .env("MANUL_MTU_FILE", format!("{STATE}/host{h}.mtu"))
        .env("RUST_LOG", "info")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    std::fs::write(&pid_file, child.id().to_string())?;
    Ok(())
}

/// Check that nothing of the lab is left, then take it down however the
/// test ends.
fn fresh_lab() -> Result<Down> {
    ensure!(
        !Path::new(STATE).exists() && lab_namespaces()?.is_empty(),
        "a lab is up on this machine already (scripts/lab down first)"
    );
    Ok(Down)
}

#[test]
fn lab_up_backend_vxlan_talks_through_vxlan_without_bgp() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("nsenter"),
        Need::Bin("ping")
    );
    let _down = fresh_lab()?;
    let up = lab(&["up", "--hosts", "2", "--backend", "vxlan"])?;
    let out = text(&up);
    ensure!(up.status.success(), "scripts/lab up failed:\n{out}");
    ensure!(
        out.contains("12 pod pairs reach each other, 0 do not"),
        "{out}"
    );
    ensure!(out.contains("no BGP (backend vxlan)"), "{out}");
    let bin = bin_dir()?;
    for h in [1, 2] {
        let (s, table) = reported(&bin, h)?;
        ensure!(
            !s.routing.bgp && s.routing.peers.is_empty(),
            "host{h}: {:?}",
            s.routing
        );
        ensure!(
            table.contains("Network: backend vxlan, vxlan.calico") && table.contains("pods 1450"),
            "host{h}:\n{table}"
        );
        let routes = in_ns(
            &format!("manul-lab-host{h}"),
            Path::new("ip"),
            &["route", "show", "proto", "80"],
        )?;
        let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
        ensure!(
            routes.contains("dev vxlan.calico onlink"),
            "host{h}:\n{routes}"
        );
        let mtu = std::fs::read_to_string(format!("{STATE}/host{h}.mtu"))?;
        ensure!(mtu == "1450", "host{h}'s pod MTU file: {mtu:?}");
    }
    // Pings from host1's pod to host2's, counted on host1 as VXLAN.
    let cap = common::VxlanCapture::start_at(Path::new("/run/netns/manul-lab-host1"))?;
    let addr = in_ns(
        "manul-lab-h2p1",
        Path::new("ip"),
        &["-4", "-o", "addr", "show", "dev", "eth0"],
    )?;
    let addr = String::from_utf8_lossy(&addr.stdout).into_owned();
    let dst = addr
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .context("host2's pod address")?
        .to_string();
    let ping = in_ns(
        "manul-lab-h1p1",
        Path::new("ping"),
        &["-n", "-c", "10", "-i", "0.05", "-W", "1", &dst],
    )?;
    let ping = text(&ping);
    ensure!(common::received(&ping) == 10, "{ping}");
    let (h1, h2) = ("10.88.0.1".parse()?, "10.88.0.2".parse()?);
    manul_tests::wait_until(Duration::from_secs(2), "VXLAN packets counted", || {
        let c = (cap.count(h1, h2), cap.count(h2, h1));
        (c.0 >= 10 && c.1 >= 10)
            .then_some(())
            .ok_or(format!("{:?}", cap.all()))
    });
    drop(cap);
    let down = lab(&["down"])?;
    ensure!(
        down.status.success(),
        "scripts/lab down failed:\n{}",
        text(&down)
    );
    ensure!(lab_namespaces()?.is_empty(), "namespaces left");
    Ok(())
}

#[test]
fn lab_up_status_down_leaves_nothing() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("ip"),
        Need::Bin("nsenter")
    );
    let _down = fresh_lab()?;
    let up = lab(&["up", "--hosts", "2", "--rr"])?;
    let out = text(&up);
    ensure!(up.status.success(), "scripts/lab up failed:\n{out}");
    ensure!(
        out.contains("12 pod pairs reach each other, 0 do not"),
        "{out}"
    );
    ensure!(out.contains("route reflector host1"), "{out}");
    ensure!(
        out.contains("4 pods reach manul-lab-ext, 0 do not"),
        "{out}"
    );
    let bin = bin_dir()?;

    // Right as `up` returns, every agent's report is its kernel's, and
    // felix wants what the kernel holds.
    for h in [1, 2] {
        let s = report_matches_kernel(&bin, h, "as `lab up` returned")?;
        let r = &s.routing.routes;
        ensure!(r.holding.is_none(), "host{h} still holding: {r:?}");
        ensure!(r.kernel.ipv4 >= 3, "host{h}: {r:?}"); // block, 2 pods, the other block
        ensure!(r.remote_prefixes == 1, "host{h}: {r:?}");
    }

    // Right after a pod is added (manul-cni writes its route).
    let (before, _) = kernel_routes(1)?;
    add_pod(&bin, 1, 3)?;
    let s = report_matches_kernel(&bin, 1, "right after a pod was added")?;
    ensure!(
        kernel_routes(1)?.0 == before + 1 && s.routing.routes.kernel.ipv4 >= before,
        "host1: the pod's route: {before} -> {:?}",
        s.routing.routes
    );

    // An agent restarted in place holds its writes until BGP has
    // converged: its report says so, and counts the routes the last run
    // left in the kernel.
    restart_agent(&bin, 2)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut during_hold = 0;
    loop {
        ensure!(
            Instant::now() < deadline,
            "host2's agent did not finish its hold within 60 s"
        );
        let Ok((s, _)) = reported(&bin, 2) else {
            std::thread::sleep(Duration::from_millis(20));
            continue; // not answering yet
        };
        match s.routing.routes.holding {
            Some(hold) => {
                ensure!(hold.reason == HoldReason::Start, "{hold:?}");
                let s = report_matches_kernel(&bin, 2, "while holding after a restart")?;
                if s.routing.routes.holding.is_some() {
                    ensure!(
                        s.routing.routes.kernel.ipv4 >= 3,
                        "host2 counts the routes its last run left: {:?}",
                        s.routing.routes
                    );
                    during_hold += 1;
                }
            }
            None if during_hold > 0 => break,
            None => anyhow::bail!(
                "host2 answered first after its hold ended: {:?}",
                s.routing.routes
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    report_matches_kernel(&bin, 2, "after its hold")?;

    let status = lab(&["status"])?;
    let out = text(&status);
    ensure!(status.status.success(), "scripts/lab status failed:\n{out}");
    for h in ["host1", "host2"] {
        ensure!(
            out.contains(&format!("== {h}: manulctl node status")),
            "{out}"
        );
    }
    // host2 peers with the reflector (and the ToR); the reflector peered
    // back by itself: both sessions Established on each host.
    ensure!(out.matches("Established").count() >= 4, "{out}");

    let pids: Vec<i32> = std::fs::read_dir(STATE)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p: &PathBuf| p.extension().is_some_and(|x| x == "pid"))
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
        .collect();
    ensure!(pids.len() >= 4, "pid files: {pids:?}");
    let down = lab(&["down"])?;
    ensure!(
        down.status.success(),
        "scripts/lab down failed:\n{}",
        text(&down)
    );
    ensure!(!Path::new(STATE).exists(), "{STATE} left behind");
    let left = lab_namespaces()?;
    ensure!(left.is_empty(), "namespaces left: {left:?}");
    // Gone, or a zombie waiting for init to reap it (give a killed
    // process a moment to exit).
    let running = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().starts_with('Z')))
            .is_some_and(|zombie| !zombie)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|p| running(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for pid in pids {
        ensure!(
            !running(pid),
            "process {pid} the lab started is still running"
        );
    }
    Ok(())
}
