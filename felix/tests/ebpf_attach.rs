//! Attachments follow the workload interfaces: attached when one appears,
//! detached when it goes, attached again when it is made anew under the
//! same name. Real kernel, a namespace and pin directory of the test's own.

use aya::programs::{SchedClassifier, TcAttachType};
use manul_felix::ebpf::{Dataplane, DataplaneConfig};
use manul_tests::{Need, Netns, PinDir, require};

/// Is a manul program (kernel names are cut to 15 bytes) at TCX ingress of `dev`?
fn ours_on(ns: &Netns, dev: &str) -> bool {
    ns.run(|| SchedClassifier::query_tcx(dev, TcAttachType::Ingress))
        .map(|(_, progs)| {
            progs.iter().any(|p| {
                let n = p.name_as_str().unwrap_or("");
                !n.is_empty()
                    && ("workload_ingress".starts_with(n) || "uplink_ingress".starts_with(n))
            })
        })
        .unwrap_or(false)
}

fn add(ns: &Netns, dev: &str) {
    ns.ip(&[
        "link",
        "add",
        dev,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{dev}p"),
    ])
    .unwrap();
    ns.link_up(dev).unwrap();
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn attachments_follow_interfaces_appearing_going_and_coming_back() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = Netns::new("ebpfattach").unwrap();
    for dev in ["cali1", "cali2", "eth0"] {
        add(&ns, dev);
    }
    let pins = PinDir::new("attach").unwrap();
    let mut dp = Dataplane::open(DataplaneConfig {
        pin_dir: pins.path().to_path_buf(),
        netns: Some(ns.path()),
        ..DataplaneConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // cali3 does not exist yet: nothing to attach, no error.
    let r = dp
        .sync_attachments(&names(&["cali1", "cali2", "cali3"]), &names(&["eth0"]))
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.attached, names(&["cali1", "cali2", "eth0"]));
    assert!(ours_on(&ns, "cali1") && ours_on(&ns, "cali2") && ours_on(&ns, "eth0"));

    // Nothing changed: nothing done.
    let r = dp
        .sync_attachments(&names(&["cali1", "cali2", "cali3"]), &names(&["eth0"]))
        .unwrap();
    assert!(r.attached.is_empty() && r.detached.is_empty(), "{r:?}");

    // cali2 goes, cali3 appears, cali1 is made anew under the same name.
    ns.ip(&["link", "del", "cali2"]).unwrap();
    ns.ip(&["link", "del", "cali1"]).unwrap();
    add(&ns, "cali1");
    add(&ns, "cali3");
    assert!(!ours_on(&ns, "cali1"), "a new interface starts bare");
    let r = dp
        .sync_attachments(&names(&["cali1", "cali3"]), &names(&["eth0"]))
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.attached, names(&["cali1", "cali3"]));
    assert_eq!(r.detached, names(&["cali2"]));
    assert!(ours_on(&ns, "cali1") && ours_on(&ns, "cali3"));
    assert_eq!(dp.attached().unwrap(), names(&["cali1", "cali3", "eth0"]));

    // Nothing wanted: everything detached.
    let r = dp.sync_attachments(&[], &[]).unwrap();
    assert_eq!(r.detached, names(&["cali1", "cali3", "eth0"]));
    for dev in ["cali1", "cali3", "eth0"] {
        assert!(!ours_on(&ns, dev), "{dev} detached");
    }
}
