//! Netns: namespaces link, address, ping each other, run code inside, and
//! are torn down on drop — also after a panic.

use std::net::IpAddr;
use std::path::Path;

use manul_tests::{Need, Netns, require};

fn pair() -> anyhow::Result<(Netns, Netns)> {
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", "10.77.0.1/24")?;
    b.add_addr("eth0", "10.77.0.2/24")?;
    a.add_addr("eth0", "fd00:77::1/64")?;
    b.add_addr("eth0", "fd00:77::2/64")?;
    Ok((a, b))
}

#[test]
fn two_namespaces_ping_each_other_v4_and_v6() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("ping"));
    let (a, b) = pair()?;
    a.ping("10.77.0.2".parse()?, 2)?;
    b.ping("10.77.0.1".parse()?, 2)?;
    a.ping("fd00:77::2".parse()?, 2)?;
    b.ping("fd00:77::1".parse()?, 2)?;
    // And not an address nobody holds: the check can fail.
    assert!(a.ping("10.77.0.3".parse::<IpAddr>()?, 1).is_err());
    Ok(())
}

#[test]
fn closures_and_commands_run_inside_the_namespace() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"));
    let (a, _b) = pair()?;
    // A closure sees the namespace's interfaces (the host has no 10.77.0.1).
    let bound = a.run(|| std::net::TcpListener::bind("10.77.0.1:0").map(|_| ()));
    assert!(bound.is_ok(), "bind inside: {bound:?}");
    assert!(
        std::net::TcpListener::bind("10.77.0.1:0").is_err(),
        "host must not have 10.77.0.1"
    );
    // A command too.
    let links = a.exec("ip", &["-o", "addr", "show", "dev", "eth0"])?;
    assert!(links.contains("10.77.0.1/24"), "{links}");
    // Entering with setns keeps the host's mounts: /sys (and /sys/fs/bpf
    // under it) is the very mount the host sees, not a remount.
    let sys_line = |mi: &str| {
        mi.lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/sys"))
            .map(str::to_string)
    };
    let outside = sys_line(&std::fs::read_to_string("/proc/self/mountinfo")?);
    let inside = sys_line(&a.exec("cat", &["/proc/self/mountinfo"])?);
    assert!(outside.is_some());
    assert_eq!(inside, outside);
    Ok(())
}

#[test]
fn names_are_unique_and_namespaces_go_away_on_drop() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"));
    let a = Netns::new("same")?;
    let b = Netns::new("same")?;
    assert_ne!(a.name(), b.name());
    let path = a.path();
    assert!(path.exists());
    let clone = a.clone();
    drop(a);
    assert!(path.exists(), "a clone keeps the namespace");
    drop(clone);
    assert!(!path.exists(), "{} left behind", path.display());
    Ok(())
}

#[test]
fn a_panicking_test_still_tears_down_and_kills_what_runs_inside() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("sleep"));
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Netns::new("doomed").unwrap();
        let child = ns.command("sleep").arg("600").spawn().unwrap();
        seen = Some((ns.path(), child.id()));
        std::mem::forget(child); // leaked on purpose: teardown must kill it
        panic!("test failure");
    }));
    assert!(result.is_err());
    let (path, pid) = seen.expect("namespace was created");
    assert!(!Path::new(&path).exists(), "{} left behind", path.display());
    manul_tests::wait_until(
        std::time::Duration::from_secs(5),
        "leaked sleep to die",
        || {
            // Killed, then a zombie until reaped: check its state.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Ok(s) if !s.contains(") Z") => Err(format!("pid {pid} alive")),
                _ => Ok(()),
            }
        },
    );
    Ok(())
}
