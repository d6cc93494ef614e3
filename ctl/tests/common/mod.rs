//! What the manulctl tests share: running the real binary against a
//! test etcd, reading keys raw, and calicoctl's fixtures.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use manul_tests::Etcd;
use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs manulctl against `endpoint` (none of the caller's ETCD_* variables
/// leak in), feeding `stdin`.
pub fn ctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_manulctl"));
    for var in [
        "ETCD_ENDPOINTS",
        "ETCD_CA_CERT_FILE",
        "ETCD_CERT_FILE",
        "ETCD_KEY_FILE",
        "ETCD_USERNAME",
        "ETCD_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["--etcd-endpoints", endpoint, "--request-timeout", "3s"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn manulctl");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("run manulctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`ctl`], asserting success; its stdout.
pub fn ok(endpoint: &str, args: &[&str], stdin: Option<&str>) -> String {
    let r = ctl(endpoint, args, stdin);
    assert_eq!(r.code, 0, "manulctl {args:?} failed: {r:?}");
    r.stdout
}

/// Like [`ctl`], asserting exit code `code`; its stderr.
pub fn fails(endpoint: &str, args: &[&str], stdin: Option<&str>, code: i32) -> String {
    let r = ctl(endpoint, args, stdin);
    assert_eq!(
        r.code, code,
        "manulctl {args:?}: expected exit {code}: {r:?}"
    );
    r.stderr
}

/// The JSON stored at `key`; `None` when absent.
pub fn raw(etcd: &Etcd, key: &str) -> Option<Value> {
    etcd.get(key)
        .unwrap()
        .map(|text| serde_json::from_str(&text).unwrap())
}

/// A fixture of the datastore crate: JSON exactly as calicoctl writes it.
pub fn fixture(name: &str) -> String {
    let path = manul_tests::package_dir!()
        .join("../datastore/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
