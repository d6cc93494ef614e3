//! The eBPF dataplane on this kernel: the verifier accepts the programs,
//! everything is pinned in the test's own directory, a second open reuses
//! it (a felix restart), cleanup removes it all.

use manul_felix::ebpf::{Dataplane, DataplaneConfig, cleanup};
use manul_tests::{Need, PinDir, require};

#[test]
fn verifier_accepts_programs_and_pins_are_reused_then_cleaned_up() {
    require!(Need::Root);
    let pins = PinDir::new("load").unwrap();
    let config = DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        ..DataplaneConfig::default()
    };
    let first = Dataplane::open(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!first.reused());
    for name in [
        "prog_workload_ingress",
        "prog_uplink_ingress",
        "routes_v4",
        "routes_v6",
        "endpoints",
        "counters",
        "links",
    ] {
        assert!(pins.path().join(name).exists(), "{name} pinned");
    }
    drop(first);
    let second = Dataplane::open(config).unwrap();
    assert!(second.reused(), "a restart picks up the pinned objects");
    drop(second);
    assert!(cleanup(pins.path(), None).unwrap());
    assert!(!pins.path().exists());
    assert!(!cleanup(pins.path(), None).unwrap());
}

#[test]
fn a_pin_dir_off_bpffs_is_a_clear_unsupported_error() {
    let dir = std::env::temp_dir().join(format!("manul-not-bpffs-{}", std::process::id()));
    let err = manul_felix::ebpf::probe(&dir).unwrap_err();
    assert!(
        matches!(err, manul_felix::ebpf::EbpfError::Unsupported(_)),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("not on a bpf filesystem"), "{msg}");
    assert!(msg.contains("kernel routes only"), "{msg}");
    let config = DataplaneConfig {
        pin_dir: dir,
        ..DataplaneConfig::default()
    };
    assert!(matches!(
        Dataplane::open(config),
        Err(manul_felix::ebpf::EbpfError::Unsupported(_))
    ));
}
