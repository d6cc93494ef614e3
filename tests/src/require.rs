//! Preconditions of integration tests: root, and the programs they run.
//!
//! A test that lacks one fails with a message naming what is missing and how
//! to get it (`scripts/setup`); it never passes silently. For a developer on
//! a machine without root or daemons, `MANUL_TEST_ALLOW_SKIP=1` turns that
//! failure into a loud skip; the variable is ignored when `CI` is set, so CI
//! can never skip.
//!
//! ```no_run
//! use manul_tests::{require, Need};
//! #[test]
//! fn peers_with_bird() {
//!     require!(Need::Root, Need::Bin("bird"));
//!     // ...
//! }
//! ```

use std::path::PathBuf;

/// One precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0 (network namespaces, veth, daemons that bind 179).
    Root,
    /// A program on `PATH`.
    Bin(&'static str),
}

/// Opt-out variable: set to `1` to skip (loudly) instead of fail. Ignored under CI.
pub const ALLOW_SKIP_VAR: &str = "MANUL_TEST_ALLOW_SKIP";

/// The Debian package that ships a program the tests run.
pub fn package_of(bin: &str) -> &'static str {
    match bin {
        "etcd" => "etcd-server",
        "etcdctl" => "etcd-client",
        "bird" | "birdc" => "bird2",
        "gobgpd" | "gobgp" => "gobgpd",
        "ip" | "bridge" => "iproute2",
        "ping" => "iputils-ping",
        "bpftool" => "bpftool",
        "clang" => "clang",
        "protoc" => "protobuf-compiler",
        "nft" => "nftables",
        _ => "the package that provides it",
    }
}

/// Full path of a program on `PATH` (also searching the sbin dirs, which a
/// non-login root shell may lack).
pub fn find_bin(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

/// Like [`find_bin`], but an error that says what to install.
pub fn bin(bin: &str) -> anyhow::Result<PathBuf> {
    find_bin(bin).ok_or_else(|| {
        anyhow::anyhow!(
            "`{bin}` not found: install Debian package `{}` (run scripts/setup)",
            package_of(bin)
        )
    })
}

/// What of `needs` is missing on this machine, each as a sentence.
pub fn missing(needs: &[Need]) -> Vec<String> {
    needs
        .iter()
        .filter_map(|need| match *need {
            Need::Root if !nix::unistd::geteuid().is_root() => {
                Some("root (network namespaces and veth links need CAP_NET_ADMIN)".to_string())
            }
            Need::Bin(b) if find_bin(b).is_none() => Some(format!(
                "`{b}` (Debian package `{}`; run scripts/setup)",
                package_of(b)
            )),
            _ => None,
        })
        .collect()
}

/// What to do about missing preconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Skip, printing this line.
    Skip(String),
    /// Fail with this message.
    Fail(String),
}

/// The rule, free of the environment: nothing missing runs; something
/// missing fails, unless opted out outside CI, which skips.
pub fn verdict(test: &str, missing: &[String], opted_out: bool, ci: bool) -> Verdict {
    if missing.is_empty() {
        return Verdict::Run;
    }
    let what = missing.join(", ");
    if opted_out && !ci {
        Verdict::Skip(format!(
            "SKIPPED {test}: missing {what} ({ALLOW_SKIP_VAR}=1)"
        ))
    } else {
        Verdict::Fail(format!(
            "{test} needs {what}. Install with scripts/setup, or set {ALLOW_SKIP_VAR}=1 to \
             skip locally (never honoured under CI)."
        ))
    }
}

/// `true`: go on. `false`: skip (opt-out set, not CI; a SKIPPED line is
/// printed). Panics naming what is missing otherwise.
pub fn check(test: &str, needs: &[Need]) -> bool {
    let opted_out = std::env::var(ALLOW_SKIP_VAR).is_ok_and(|v| v == "1");
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    match verdict(test, &missing(needs), opted_out, ci) {
        Verdict::Run => true,
        Verdict::Skip(line) => {
            eprintln!("{line}");
            false
        }
        Verdict::Fail(msg) => panic!("{msg}"),
    }
}

/// The value a skipped test returns: `()` or `Ok(())`.
pub trait Skipped {
    fn skipped() -> Self;
}

impl Skipped for () {
    fn skipped() -> Self {}
}

impl<E> Skipped for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// Check preconditions at the top of a test; see the module docs.
#[macro_export]
macro_rules! require {
    ($($need:expr),+ $(,)?) => {
        if !$crate::require::check(module_path!(), &[$($need),+]) {
            return $crate::require::Skipped::skipped();
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_its_package_and_scripts_setup() {
        let m = missing(&[Need::Bin("bird"), Need::Bin("manul-no-such-program")]);
        let last = m.last().expect("the fake program is missing");
        assert!(last.contains("`manul-no-such-program`"), "{last}");
        assert!(last.contains("scripts/setup"), "{last}");
        assert!(
            !missing(&[Need::Bin("sh")])
                .iter()
                .any(|s| s.contains("`sh`"))
        );
        assert_eq!(package_of("birdc"), "bird2");
        assert_eq!(package_of("etcd"), "etcd-server");
    }

    #[test]
    fn missing_fails_skips_only_when_opted_out_outside_ci() {
        let gone = vec!["`bird` (Debian package `bird2`; run scripts/setup)".to_string()];
        assert_eq!(verdict("t", &[], false, true), Verdict::Run);
        assert!(
            matches!(verdict("t", &gone, false, false), Verdict::Fail(m) if m.contains("`bird`"))
        );
        assert!(
            matches!(verdict("t", &gone, true, false), Verdict::Skip(l) if l.starts_with("SKIPPED t"))
        );
        // CI never skips, opted out or not.
        assert!(matches!(verdict("t", &gone, true, true), Verdict::Fail(_)));
    }
}
