//! Builds manul's eBPF programs (`ebpf/programs`) for `bpfel-unknown-none`
//! with the nightly toolchain (`-Z build-std=core`, linked by `bpf-linker`),
//! so every `cargo build` of felix — and so `scripts/test` and CI — has
//! them; the object lands in `$OUT_DIR/manul-tc`, which felix embeds.
//! What it needs (nightly with `rust-src`, `bpf-linker`) is installed by
//! `scripts/setup`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ebpf = manifest.join("../ebpf");
    for path in [
        "programs/src",
        "programs/Cargo.toml",
        "programs/Cargo.lock",
        "common/src",
        "common/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", ebpf.join(path).display());
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // Shared by every build of felix in this profile directory (build,
    // clippy, test: `<target>/<profile>/build/<pkg>-<hash>/out` → up three),
    // so the programs are compiled once, not once per OUT_DIR.
    let target_dir = out
        .ancestors()
        .nth(3)
        .map(|profile| profile.join("manul-ebpf-target"))
        .unwrap_or_else(|| out.join("ebpf-target"));
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "build",
        "--quiet",
        "--release",
        "--locked",
    ])
    .arg("--manifest-path")
    .arg(ebpf.join("programs/Cargo.toml"))
    .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
    .arg("--target-dir")
    .arg(&target_dir)
    // BTF for the kernel's verifier messages and map introspection.
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-Cdebuginfo=2\x1f-Clink-arg=--btf",
    );
    // The outer build's compiler, wrappers and flags are not for this one.
    for key in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "RUSTDOC",
        "CARGO",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "RUSTUP_TOOLCHAIN",
    ] {
        cmd.env_remove(key);
    }
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("running rustup to build the eBPF programs: {e}; run scripts/setup")
    });
    if !output.status.success() {
        panic!(
            "building the eBPF programs (ebpf/programs) failed ({}); they need nightly Rust \
             with rust-src and bpf-linker (run scripts/setup):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let object = target_dir.join("bpfel-unknown-none/release/manul-tc");
    std::fs::copy(&object, out.join("manul-tc"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", object.display()));
}
