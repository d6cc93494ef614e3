//! The sweeper: what a test process killed outright left behind (namespaces,
//! daemons, temp dirs, bpffs pin dirs) is removed once its owner is gone,
//! and nothing of a live owner is touched.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use manul_tests::scratch::{ProcId, sweep_stale_in};
use manul_tests::{Need, Netns, require, wait_until};

/// The identity of a process that existed and is gone now.
fn dead_owner() -> ProcId {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let id = ProcId::of(child.id()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!id.is_alive());
    id
}

#[test]
fn leftovers_of_a_dead_owner_are_swept_and_a_live_owners_kept() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("sleep"));
    // Fake what a SIGKILLed test process leaves: a run dir listing a
    // namespace with a process inside, a daemon, a temp dir.
    // A private root, so no other test process's sweep races this one.
    let root = tempfile::tempdir()?;
    let owner = dead_owner();
    let run_dir = root
        .path()
        .join(format!("{}-{}", owner.pid, owner.start_time));
    std::fs::create_dir_all(run_dir.join("tmp-x-1"))?;
    let ns_name = format!("msweep-{}", std::process::id());
    let st = Command::new("ip")
        .args(["netns", "add", &ns_name])
        .status()?;
    assert!(st.success());
    std::fs::write(run_dir.join(format!("netns-{ns_name}")), "")?;
    let in_ns = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns_name}"))
        .args(["sleep", "600"])
        .spawn()?;
    // nsenter enters the namespace after it starts: wait until it is inside.
    let in_ns_pid = in_ns.id().to_string();
    wait_until(
        Duration::from_secs(5),
        "the process to enter the namespace",
        || {
            let out = Command::new("ip")
                .args(["netns", "pids", &ns_name])
                .output();
            let pids = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if pids.split_whitespace().any(|p| p == in_ns_pid) {
                Ok(())
            } else {
                Err(pids)
            }
        },
    );
    let daemon = Command::new("sleep").arg("600").spawn()?;
    let daemon_id = ProcId::of(daemon.id()).unwrap();
    std::fs::write(
        run_dir.join(format!("proc-{}-{}", daemon_id.pid, daemon_id.start_time)),
        "",
    )?;
    // A live owner's run dir (this very process) must be left alone.
    let me = ProcId::of(std::process::id()).unwrap();
    let live_dir = root.path().join(format!("{}-{}", me.pid, me.start_time));
    std::fs::create_dir_all(&live_dir)?;
    let mine = Netns::new("kept")?;
    std::fs::write(live_dir.join(format!("netns-{}", mine.name())), "")?;

    let report = sweep_stale_in(root.path());

    assert!(report.namespaces.contains(&ns_name), "{report}");
    assert!(report.processes.contains(&daemon_id.pid), "{report}");
    assert!(report.processes.contains(&in_ns.id()), "{report}");
    assert!(!Path::new("/run/netns").join(&ns_name).exists());
    assert!(!run_dir.exists());
    assert!(mine.path().exists(), "a live owner's namespace must stay");
    assert!(live_dir.exists(), "a live owner's run dir must stay");
    for mut child in [in_ns, daemon] {
        let pid = child.id();
        wait_until(Duration::from_secs(5), "swept process to exit", || {
            child
                .try_wait()
                .map_err(|e| e.to_string())?
                .ok_or(format!("pid {pid} alive"))
        });
    }
    Ok(())
}

#[test]
fn a_dead_owners_bpffs_pin_dir_is_swept() -> anyhow::Result<()> {
    require!(Need::Root);
    manul_tests::bpffs::ensure_mounted()?;
    let root = tempfile::tempdir()?;
    let owner = dead_owner();
    let run_dir = root
        .path()
        .join(format!("{}-{}", owner.pid, owner.start_time));
    std::fs::create_dir_all(&run_dir)?;
    let name = format!("msweep-bpf-{}", std::process::id());
    let pins = Path::new(manul_tests::bpffs::BPFFS).join(&name);
    std::fs::create_dir_all(pins.join("links"))?;
    std::fs::write(run_dir.join(format!("bpffs-{name}")), "")?;

    sweep_stale_in(root.path());

    assert!(!pins.exists(), "{} swept", pins.display());
    assert!(!run_dir.exists());
    Ok(())
}
