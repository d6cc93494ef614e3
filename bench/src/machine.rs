//! What a results section says about where and what it measured: the
//! machine, manul's commit, the load. Shared by every benchmark driver.

use std::process::Command;

/// A command's trimmed output (stdout then stderr), or a note saying why
/// there is none; never fails, a report is still worth writing.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.trim().to_string()
        })
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}

/// `N CPUs (`nproc`), M RAM (`free -h`), kernel K`.
pub fn machine() -> String {
    let free = sh("free", &["-h"]);
    let mem = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    format!(
        "{} CPUs (`nproc`), {mem} RAM (`free -h`), kernel {}",
        sh("nproc", &[]),
        sh("uname", &["-r"])
    )
}

/// `manul <short commit> (clean|with uncommitted changes)`.
pub fn manul_version() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let state = if sh("git", &["-C", root, "status", "--porcelain"]).is_empty() {
        "clean"
    } else {
        "with uncommitted changes"
    };
    format!(
        "manul {} ({state})",
        sh("git", &["-C", root, "rev-parse", "--short", "HEAD"])
    )
}

/// `/proc/loadavg`, trimmed.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}
