//! `scripts/lab` itself, as a user runs it: `up --hosts 2 --rr` builds the
//! lab (host1 a route reflector peered by one BGPPeer, a BIRD ToR, two
//! pods per host) and proves every pod reaches every other; `status`
//! reports the hosts' peers; `down` leaves nothing: no `manul-lab-*`
//! namespace, no state directory, none of the processes it started.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Result, ensure};
use manul_tests::{Need, require};

const STATE: &str = "/run/manul-lab";

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
    ensure!(
        !Path::new(STATE).exists() && lab_namespaces()?.is_empty(),
        "a lab is up on this machine already (scripts/lab down first)"
    );
    let _down = Down;
    let up = lab(&["up", "--hosts", "2", "--rr"])?;
    let out = text(&up);
    ensure!(up.status.success(), "scripts/lab up failed:\n{out}");
    ensure!(
        out.contains("12 pod pairs reach each other, 0 do not"),
        "{out}"
    );
    ensure!(out.contains("route reflector host1"), "{out}");

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
