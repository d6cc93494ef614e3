//! `manulctl ipam ...`: the real binary against a real etcd, with pools,
//! allocations and WorkloadEndpoints set up through the `manul-ipam`
//! library as the CNI plugin would leave them.
//!
//! The cluster: pool-a 10.65.0.0/24 (blocks of /26). node-1 holds
//! 10.65.0.0/26 with 10.65.0.1 (pod p1) and 10.65.0.2 (pod p2); node-2
//! holds 10.65.0.64/26 with 10.65.0.65 (pod p3) and its IPIP tunnel
//! address 10.65.0.66, and borrows 10.65.0.3 (pod p4) from node-1's block.
//! Only p1 and p3 have WorkloadEndpoints, so p2's and p4's addresses are
//! leaked.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipnet::IpNet;
use manul_datastore::resources::{IpPool, IpPoolSpec, WorkloadEndpoint, WorkloadEndpointSpec};
use manul_datastore::{Datastore, EtcdConfig, Key, ResourceKind};
use manul_ipam::Ipam;
use manul_tests::{Etcd, Need, require};
use serde_json::Value;

const CLUSTER_INFO: &str = "/calico/resources/v3/projectcalico.org/clusterinformations/default";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs manulctl against `endpoint` (none of the caller's ETCD_* variables
/// leak in).
fn ctl(endpoint: &str, args: &[&str]) -> Run {
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
    let out = cmd
        .args(["--etcd-endpoints", endpoint, "--request-timeout", "3s"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run manulctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`ctl`], asserting success; its stdout.
fn ok(endpoint: &str, args: &[&str]) -> String {
    let r = ctl(endpoint, args);
    assert_eq!(r.code, 0, "manulctl {args:?} failed: {r:?}");
    r.stdout
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Whether some line of `text` has `cells` among its cells (separated by
/// two spaces or more), in order.
fn has_row(text: &str, cells: &[&str]) -> bool {
    text.lines().any(|l| {
        let mut line = l.split("  ").map(str::trim).filter(|c| !c.is_empty());
        cells.iter().all(|want| line.any(|c| c == *want))
    })
}

async fn connect(etcd: &Etcd) -> Datastore {
    let mut c = EtcdConfig::new([etcd.endpoint()]);
    c.dial_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(10);
    Datastore::connect(&c).await.expect("connect to etcd")
}

async fn add_wep(ds: &Datastore, name: &str, node: &str, addr: &str) {
    let spec = WorkloadEndpointSpec {
        orchestrator: "k8s".into(),
        node: node.into(),
        pod: name.into(),
        endpoint: "eth0".into(),
        ip_networks: vec![IpNet::from(ip(addr))],
        ..Default::default()
    };
    let mut wep = WorkloadEndpoint::new(name, spec);
    wep.metadata.namespace = "default".into();
    let key = Key::namespaced(ResourceKind::WorkloadEndpoint, "default", name)
        .path()
        .unwrap();
    ds.create(&key, wep.to_json()).await.expect("create wep");
}

/// The cluster of the module docs.
fn set_up(etcd: &Etcd) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ds = connect(etcd).await;
        let mut spec = IpPoolSpec::new("10.65.0.0/24".parse().unwrap());
        spec.block_size = 26;
        spec.fill_defaults();
        let key = Key::resource(ResourceKind::IpPool, "pool-a")
            .path()
            .unwrap();
        ds.create(&key, IpPool::new("pool-a", spec).to_json())
            .await
            .unwrap();
        let ipam = Ipam::new(ds.clone());
        for (addr, pod, node) in [
            ("10.65.0.1", "p1", "node-1"),
            ("10.65.0.2", "p2", "node-1"),
            ("10.65.0.65", "p3", "node-2"),
            ("10.65.0.3", "p4", "node-2"),
        ] {
            let attrs = BTreeMap::from([
                ("namespace".to_owned(), "default".to_owned()),
                ("pod".to_owned(), pod.to_owned()),
            ]);
            ipam.assign_ip(ip(addr), &format!("k8s-pod-network.{pod}"), &attrs, node)
                .await
                .unwrap();
        }
        ipam.assign_ip(
            ip("10.65.0.66"),
            "ipip-tunnel-addr-node-2",
            &BTreeMap::new(),
            "node-2",
        )
        .await
        .unwrap();
        add_wep(&ds, "p1", "node-1", "10.65.0.1").await;
        add_wep(&ds, "p3", "node-2", "10.65.0.65").await;
    });
    etcd.put(
        CLUSTER_INFO,
        r#"{"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"clusterGUID":"guid-test-1"}}"#,
    )
    .unwrap();
}

#[test]
fn show_answers_pools_blocks_borrowed_config_and_addresses() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);

    let table = ok(&ep, &["ipam", "show"]);
    assert!(
        has_row(
            &table,
            &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"]
        ),
        "{table}"
    );
    assert!(
        has_row(
            &table,
            &["IP Pool", "10.65.0.0/24", "256", "5 (2%)", "251 (98%)"]
        ),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "no block rows: {table}");

    let v: Value = serde_json::from_str(&ok(&ep, &["ipam", "show", "-o", "json"]))?;
    let pool = &v["pools"][0];
    assert_eq!(pool["name"], "pool-a");
    assert_eq!(pool["cidr"], "10.65.0.0/24");
    assert_eq!(pool["total"], 256);
    assert_eq!(pool["in_use"], 5);
    assert_eq!(pool["free"], 251);
    assert_eq!(pool["in_use_percent"], 1.95);
    assert!(pool.get("blocks").is_none(), "{v}");
    let y = ok(&ep, &["ipam", "show", "-o", "yaml"]);
    assert!(y.contains("in_use: 5"), "{y}");

    let blocks = ok(&ep, &["ipam", "show", "--show-blocks"]);
    assert!(
        has_row(
            &blocks,
            &[
                "IP Pool",
                "10.65.0.0/24",
                "-",
                "256",
                "5 (2%)",
                "251 (98%)",
                "1"
            ]
        ),
        "{blocks}"
    );
    assert!(
        has_row(
            &blocks,
            &[
                "Block",
                "10.65.0.0/26",
                "node-1",
                "64",
                "3 (5%)",
                "61 (95%)",
                "1"
            ]
        ),
        "{blocks}"
    );
    assert!(
        has_row(
            &blocks,
            &[
                "Block",
                "10.65.0.64/26",
                "node-2",
                "64",
                "2 (3%)",
                "62 (97%)",
                "0"
            ]
        ),
        "{blocks}"
    );
    let v: Value =
        serde_json::from_str(&ok(&ep, &["ipam", "show", "--show-blocks", "-o", "json"]))?;
    assert_eq!(v["pools"][0]["blocks"].as_array().unwrap().len(), 2, "{v}");

    let borrowed = ok(&ep, &["ipam", "show", "--show-borrowed"]);
    assert!(
        has_row(
            &borrowed,
            &[
                "10.65.0.3",
                "10.65.0.0/26",
                "node-1",
                "node-2",
                "k8s-pod-network.p4"
            ]
        ),
        "{borrowed}"
    );
    assert_eq!(
        borrowed.lines().filter(|l| l.starts_with("10.65.")).count(),
        1,
        "{borrowed}"
    );
    let v: Value =
        serde_json::from_str(&ok(&ep, &["ipam", "show", "--show-borrowed", "-o", "json"]))?;
    assert_eq!(v["borrowed"][0]["ip"], "10.65.0.3");
    assert_eq!(v["borrowed"][0]["block_host"], "node-1");
    assert_eq!(v["borrowed"][0]["node"], "node-2");

    let config = ok(&ep, &["ipam", "show", "--show-configuration"]);
    assert!(has_row(&config, &["StrictAffinity", "false"]), "{config}");
    assert!(
        has_row(&config, &["AutoAllocateBlocks", "true"]),
        "{config}"
    );
    assert!(
        has_row(&config, &["MaxBlocksPerHost", "0 (not set: 20 apply)"]),
        "{config}"
    );

    // One address: assigned (borrowed), unassigned, outside every pool.
    let held = ok(&ep, &["ipam", "show", "--ip", "10.65.0.3"]);
    assert!(
        held.starts_with("10.65.0.3 is in use by handle k8s-pod-network.p4\n"),
        "{held}"
    );
    for row in [
        &["pod", "p4"][..],
        &["namespace", "default"],
        &["node", "node-2"],
        &["block", "10.65.0.0/26 (affine to node-1: borrowed)"],
        &["pool", "10.65.0.0/24"],
    ] {
        assert!(has_row(&held, row), "{row:?} in {held}");
    }
    let v: Value = serde_json::from_str(&ok(
        &ep,
        &["ipam", "show", "--ip", "10.65.0.1", "-o", "json"],
    ))?;
    assert_eq!(v["handle"], "k8s-pod-network.p1");
    assert_eq!(v["attributes"]["node"], "node-1");
    let free = ok(&ep, &["ipam", "show", "--ip", "10.65.0.9"]);
    assert_eq!(
        free,
        "10.65.0.9 is not assigned (block 10.65.0.0/26 (affine to node-1))\n"
    );
    let r = ctl(&ep, &["ipam", "show", "--ip", "10.99.0.1"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("10.99.0.1 is not in any IP pool"),
        "{r:?}"
    );
    let r = ctl(&ep, &["ipam", "show", "--ip", "not-an-ip"]);
    assert_eq!(r.code, 1, "usage error: {r:?}");
    Ok(())
}

#[test]
fn check_writes_a_report_that_release_applies_exactly() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);
    let dir = tempfile::tempdir()?;
    let report_path = dir.path().join("report.json");
    let report_file = report_path.to_str().unwrap();

    let r = ctl(&ep, &["ipam", "check", "-o", report_file]);
    assert_eq!(r.code, 7, "problems found: {r:?}");
    for part in [
        "reading blocks... 2\n",
        "reading block affinities... 2\n",
        "reading handles... 5\n",
        "reading workload endpoints... 2\n",
        "checking 5 allocated addresses...",
        "IPAM check found 2 problems",
    ] {
        assert!(r.stderr.contains(part), "{part:?} in {}", r.stderr);
    }
    assert!(r.stdout.starts_with("Leaked addresses"), "{}", r.stdout);
    assert!(
        has_row(
            &r.stdout,
            &[
                "10.65.0.2",
                "block 10.65.0.0/26, handle k8s-pod-network.p2, pod default/p2, node node-1"
            ]
        ),
        "{}",
        r.stdout
    );
    assert!(
        has_row(
            &r.stdout,
            &[
                "10.65.0.3",
                "block 10.65.0.0/26, handle k8s-pod-network.p4, pod default/p4, node node-2"
            ]
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 problems: 2 leaked addresses.")
            && r.stdout.contains("Report written to"),
        "{}",
        r.stdout
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path)?)?;
    assert_eq!(report["cluster"]["cluster_guid"], "guid-test-1");
    let mut leaked: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["kind"], "leaked", "{p}");
            p["ip"].as_str().unwrap()
        })
        .collect();
    leaked.sort();
    assert_eq!(leaked, ["10.65.0.2", "10.65.0.3"]);

    // -o json prints the same report.
    let r = ctl(&ep, &["ipam", "check", "-o", "json"]);
    assert_eq!(r.code, 7, "{r:?}");
    let printed: Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(printed["problems"], report["problems"]);

    // Refused: another cluster (exit 2, nothing released) ...
    let mut other = report.clone();
    other["cluster"]["cluster_guid"] = "guid-someone-else".into();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string())?;
    let r = ctl(
        &ep,
        &[
            "ipam",
            "release",
            "--from-report",
            other_path.to_str().unwrap(),
            "--force",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("another cluster"), "{r:?}");
    // ... a report ahead of the data, unless forced ...
    let mut ahead = report.clone();
    ahead["revision"] = (report["revision"].as_i64().unwrap() + 1_000_000).into();
    let ahead_path = dir.path().join("ahead.json");
    std::fs::write(&ahead_path, ahead.to_string())?;
    let ahead_file = ahead_path.to_str().unwrap();
    let r = ctl(&ep, &["ipam", "release", "--from-report", ahead_file]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("ahead") && r.stderr.contains("--force"),
        "{r:?}"
    );
    // ... and a file that is no report.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, r#"{"problems": 3}"#)?;
    let r = ctl(
        &ep,
        &["ipam", "release", "--from-report", junk.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{r:?}");
    let r = ctl(
        &ep,
        &[
            "ipam",
            "release",
            "--from-report",
            "/nonexistent/report.json",
        ],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        ok(&ep, &["ipam", "show", "-o", "json"])
            .matches("\"in_use\": 5")
            .count(),
        1,
        "nothing released yet"
    );

    // Applied: exactly the leaked ones; the check is clean afterwards.
    let out = ok(&ep, &["ipam", "release", "--from-report", report_file]);
    assert_eq!(
        out,
        "released 10.65.0.2 (leaked)\n\
         released 10.65.0.3 (leaked)\n\
         Released 2 leaked addresses; fixed 0 handles and 0 affinities; 0 skipped.\n"
    );
    let r = ctl(&ep, &["ipam", "check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("; no problems."), "{r:?}");
    assert!(ok(&ep, &["ipam", "show", "--ip", "10.65.0.1"]).contains("is in use"));
    assert!(ok(&ep, &["ipam", "show", "--ip", "10.65.0.66"]).contains("ipip-tunnel-addr-node-2"));
    assert!(ok(&ep, &["ipam", "show", "--ip", "10.65.0.2"]).contains("is not assigned"));

    // Forced, the ahead report is applied, and its guards find nothing left.
    let out = ok(
        &ep,
        &["ipam", "release", "--from-report", ahead_file, "--force"],
    );
    assert!(out.contains("10.65.0.2 was already free"), "{out}");
    assert!(out.contains("Released 0 leaked addresses"), "{out}");
    Ok(())
}

#[test]
fn release_by_address_and_configure() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);

    let out = ok(
        &ep,
        &[
            "ipam",
            "release",
            "--ip",
            "10.65.0.2",
            "--ip",
            "10.65.0.9",
            "--ip",
            "10.99.0.1",
        ],
    );
    assert_eq!(
        out,
        "released 10.65.0.2 (handle k8s-pod-network.p2)\n\
         10.65.0.9 was not assigned\n\
         10.99.0.1 was not assigned\n"
    );
    assert!(ok(&ep, &["ipam", "show", "--ip", "10.65.0.2"]).contains("is not assigned"));
    let r = ctl(&ep, &["ipam", "release"]);
    assert_eq!(r.code, 1, "--ip or --from-report is required: {r:?}");
    let r = ctl(&ep, &["ipam", "release", "--ip", "10.65.0.1", "--force"]);
    assert_eq!(r.code, 1, "--force goes with --from-report: {r:?}");

    // Configure: written in Calico's JSON, printed back.
    let out = ok(
        &ep,
        &[
            "ipam",
            "configure",
            "--strictaffinity=true",
            "--max-blocks-per-host",
            "4",
        ],
    );
    assert!(out.starts_with("IPAM configuration updated:\n"), "{out}");
    assert!(has_row(&out, &["StrictAffinity", "true"]), "{out}");
    assert!(has_row(&out, &["AutoAllocateBlocks", "true"]), "{out}");
    assert!(has_row(&out, &["MaxBlocksPerHost", "4"]), "{out}");
    let stored: Value = serde_json::from_str(&etcd.get("/calico/ipam/v2/config")?.unwrap())?;
    assert_eq!(
        stored,
        serde_json::json!({"strict_affinity": true, "auto_allocate_blocks": true, "maxBlocksPerHost": 4})
    );

    // Refused by the library's rules: exit 2, nothing written.
    let r = ctl(&ep, &["ipam", "configure", "--strictaffinity=false"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("requires strict_affinity"), "{r:?}");
    let r = ctl(
        &ep,
        &[
            "ipam",
            "configure",
            "--auto-allocate-blocks=false",
            "--strictaffinity=false",
            "--max-blocks-per-host",
            "0",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("at the same time"), "{r:?}");
    let again: Value = serde_json::from_str(&etcd.get("/calico/ipam/v2/config")?.unwrap())?;
    assert_eq!(again, stored);
    let r = ctl(&ep, &["ipam", "configure", "--strictaffinity=maybe"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = ctl(&ep, &["ipam", "configure"]);
    assert_eq!(r.code, 1, "a setting is required: {r:?}");

    let v: Value = serde_json::from_str(&ok(
        &ep,
        &[
            "ipam",
            "configure",
            "--strictaffinity=false",
            "--max-blocks-per-host",
            "0",
            "-o",
            "json",
        ],
    ))?;
    assert_eq!(v["strict_affinity"], false);
    let config = ok(&ep, &["ipam", "show", "--show-configuration"]);
    assert!(
        has_row(&config, &["MaxBlocksPerHost", "0 (not set: 20 apply)"]),
        "{config}"
    );
    Ok(())
}

#[test]
fn help_has_examples_and_o_file_is_only_for_check() {
    let nowhere = "http://127.0.0.1:1";
    for (cmd, example) in [
        (&["ipam"][..], "$ manulctl ipam check -o report.json"),
        (&["ipam", "show"], "$ manulctl ipam show --show-blocks"),
        (&["ipam", "check"], "$ manulctl ipam check -o report.json"),
        (
            &["ipam", "release"],
            "$ manulctl ipam release --from-report report.json",
        ),
        (
            &["ipam", "configure"],
            "$ manulctl ipam configure --strictaffinity=true",
        ),
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let h = ok(nowhere, &args);
        assert!(
            h.contains("Examples:") && h.contains(example),
            "{cmd:?} --help:\n{h}"
        );
    }
    assert!(ok(nowhere, &["--help"]).contains("7  `ipam check` found problems"));
    let r = ctl(nowhere, &["get", "ippools", "-o", "report.json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("only `ipam check`"), "{r:?}");
    let r = ctl(nowhere, &["ipam", "show"]);
    assert_eq!(r.code, 5, "unreachable etcd: {r:?}");
}

/// etcd's revision and every key and value under /calico.
fn etcd_state(etcd: &Etcd) -> (i64, String) {
    let head = etcd
        .etcdctl(&["get", "/no-such-key", "-w", "json"])
        .unwrap();
    let v: Value = serde_json::from_str(&head).unwrap();
    let revision = v["header"]["revision"].as_i64().unwrap();
    (
        revision,
        etcd.etcdctl(&["get", "/calico", "--prefix"]).unwrap(),
    )
}

/// The cluster of the module docs plus: p2 has its WorkloadEndpoint (so
/// only node-2's p4 is leaked); node-2 has a Node with its IPIP tunnel
/// address, a second block 10.65.0.128/26 with pod p6, a BGPPeer scoped to
/// it and a per-node BGPConfiguration; node-1 borrows 10.65.0.67 (pod p5)
/// from node-2's block 10.65.0.64/26; a global BGPPeer and one scoped to
/// node-1 must stay.
fn set_up_node_removal(etcd: &Etcd) {
    set_up(etcd);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ds = connect(etcd).await;
        let ipam = Ipam::new(ds.clone());
        for (addr, pod, node) in [
            ("10.65.0.130", "p6", "node-2"),
            ("10.65.0.67", "p5", "node-1"),
        ] {
            let attrs = BTreeMap::from([
                ("namespace".to_owned(), "default".to_owned()),
                ("pod".to_owned(), pod.to_owned()),
            ]);
            ipam.assign_ip(ip(addr), &format!("k8s-pod-network.{pod}"), &attrs, node)
                .await
                .unwrap();
            add_wep(&ds, pod, node, addr).await;
        }
        add_wep(&ds, "p2", "node-1", "10.65.0.2").await;
    });
    let res = "/calico/resources/v3/projectcalico.org";
    etcd.put(
        &format!("{res}/nodes/node-2"),
        r#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"node-2"},"spec":{"bgp":{"ipv4Address":"10.0.0.2/24","ipv4IPIPTunnelAddr":"10.65.0.66"}}}"#,
    )
    .unwrap();
    for (name, node) in [
        ("node-2-tor", "node-2"),
        ("node-1-tor", "node-1"),
        ("global-tor", ""),
    ] {
        let node_field = if node.is_empty() {
            String::new()
        } else {
            format!(r#""node":"{node}","#)
        };
        etcd.put(
            &format!("{res}/bgppeers/{name}"),
            &format!(
                r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},"spec":{{{node_field}"peerIP":"10.0.0.254","asNumber":65000}}}}"#
            ),
        )
        .unwrap();
    }
    etcd.put(
        &format!("{res}/bgpconfigurations/node.node-2"),
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"node.node-2"},"spec":{"listenPort":1790}}"#,
    )
    .unwrap();
}

#[test]
fn delete_node_releases_what_it_holds_and_a_second_run_is_a_no_op() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up_node_removal(&etcd);
    let res = "/calico/resources/v3/projectcalico.org";

    let r = ctl(&ep, &["ipam", "check"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(
        r.stdout.contains("1 problems: 1 leaked addresses.") || r.stdout.contains("10.65.0.3"),
        "{r:?}"
    );

    // Dry run: the plan, and not one write.
    let before = etcd_state(&etcd);
    let dry = ok(&ep, &["delete", "node", "node-2", "--dry-run"]);
    for line in [
        "would release 10.65.0.3 (block 10.65.0.0/26, handle k8s-pod-network.p4)",
        "would release 10.65.0.65 (block 10.65.0.64/26, handle k8s-pod-network.p3)",
        "would release 10.65.0.66 (block 10.65.0.64/26, handle ipip-tunnel-addr-node-2)",
        "would release 10.65.0.130 (block 10.65.0.128/26, handle k8s-pod-network.p6)",
        "workloadendpoint.projectcalico.org/p3 (namespace default) would be deleted",
        "workloadendpoint.projectcalico.org/p6 (namespace default) would be deleted",
        "bgppeer.projectcalico.org/node-2-tor would be deleted",
        "bgpconfiguration.projectcalico.org/node.node-2 would be deleted",
        "node.projectcalico.org/node-2 would be deleted",
    ] {
        assert!(dry.lines().any(|l| l == line), "{line:?} in\n{dry}");
    }
    assert!(!dry.contains("10.65.0.67"), "node-1's address: {dry}");
    assert!(
        !dry.contains("tor would") || !dry.contains("node-1-tor"),
        "{dry}"
    );
    assert!(!dry.contains("global-tor"), "{dry}");
    assert_eq!(etcd_state(&etcd), before, "the dry run wrote to etcd");

    let out = ok(&ep, &["delete", "node", "node-2"]);
    for line in [
        "released 10.65.0.3 (block 10.65.0.0/26, handle k8s-pod-network.p4)",
        "released 10.65.0.65 (block 10.65.0.64/26, handle k8s-pod-network.p3)",
        "released 10.65.0.66 (block 10.65.0.64/26, handle ipip-tunnel-addr-node-2)",
        "released 10.65.0.130 (block 10.65.0.128/26, handle k8s-pod-network.p6)",
        "released the affinity of node-2 to block 10.65.0.128/26; the block was empty and is deleted",
        "released the affinity of node-2 to block 10.65.0.64/26; the block still holds addresses and is kept for any host to claim",
        "workloadendpoint.projectcalico.org/p3 (namespace default) deleted",
        "workloadendpoint.projectcalico.org/p6 (namespace default) deleted",
        "bgppeer.projectcalico.org/node-2-tor deleted",
        "bgpconfiguration.projectcalico.org/node.node-2 deleted",
        "node.projectcalico.org/node-2 deleted",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in\n{out}");
    }
    assert_eq!(out.lines().count(), 11, "{out}");

    // IPAM is clean, no block is node-2's, node-1's borrowed address stays.
    let r = ctl(&ep, &["ipam", "check"]);
    assert_eq!(r.code, 0, "{r:?}");
    let blocks = ok(&ep, &["ipam", "show", "--show-blocks"]);
    assert!(!blocks.contains("node-2"), "{blocks}");
    assert!(!blocks.contains("10.65.0.128/26"), "{blocks}");
    assert!(
        has_row(&blocks, &["Block", "10.65.0.64/26", "64", "1 (2%)"]),
        "{blocks}"
    );
    let held = ok(&ep, &["ipam", "show", "--ip", "10.65.0.67"]);
    assert!(
        held.starts_with("10.65.0.67 is in use by handle k8s-pod-network.p5\n"),
        "{held}"
    );
    for gone in [
        format!("{res}/nodes/node-2"),
        format!("{res}/bgppeers/node-2-tor"),
        format!("{res}/bgpconfigurations/node.node-2"),
        format!("{res}/workloadendpoints/default/p3"),
        format!("{res}/workloadendpoints/default/p6"),
    ] {
        assert_eq!(etcd.get(&gone)?, None, "{gone}");
    }
    for kept in [
        format!("{res}/bgppeers/node-1-tor"),
        format!("{res}/bgppeers/global-tor"),
    ] {
        assert!(etcd.get(&kept)?.is_some(), "{kept}");
    }
    let weps = etcd.etcdctl(&[
        "get",
        &format!("{res}/workloadendpoints/"),
        "--prefix",
        "--keys-only",
    ])?;
    assert_eq!(
        weps.lines().filter(|l| !l.is_empty()).count(),
        3,
        "p1, p2, p5: {weps}"
    );

    // A second run changes nothing: not found (exit code 3), or success
    // with --ignore-not-found.
    let after = etcd_state(&etcd);
    let r = ctl(&ep, &["delete", "node", "node-2"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "", "{r:?}");
    assert!(r.stderr.contains("Node \"node-2\" not found"), "{r:?}");
    let r = ctl(&ep, &["delete", "node", "node-2", "--ignore-not-found"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(etcd_state(&etcd), after, "the second run wrote to etcd");
    Ok(())
}

#[test]
fn delete_node_finishes_what_an_interrupted_removal_left() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up_node_removal(&etcd);
    let res = "/calico/resources/v3/projectcalico.org";
    // As an interrupted run (or a manulctl that deleted only the Node)
    // leaves it: node-2's pod p3 already released, its Node gone; its WEPs,
    // its other addresses, its affinities and its BGPPeer remain.
    ok(&ep, &["ipam", "release", "--ip", "10.65.0.65"]);
    etcd.etcdctl(&["del", &format!("{res}/nodes/node-2")])?;

    let out = ok(&ep, &["delete", "node", "node-2"]);
    for line in [
        "released 10.65.0.3 (block 10.65.0.0/26, handle k8s-pod-network.p4)",
        "released 10.65.0.66 (block 10.65.0.64/26, handle ipip-tunnel-addr-node-2)",
        "released 10.65.0.130 (block 10.65.0.128/26, handle k8s-pod-network.p6)",
        "workloadendpoint.projectcalico.org/p3 (namespace default) deleted",
        "bgppeer.projectcalico.org/node-2-tor deleted",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in\n{out}");
    }
    assert!(!out.contains("10.65.0.65"), "already released: {out}");
    let r = ctl(&ep, &["ipam", "check"]);
    assert_eq!(r.code, 0, "{r:?}");
    let blocks = ok(&ep, &["ipam", "show", "--show-blocks"]);
    assert!(!blocks.contains("node-2"), "{blocks}");
    let r = ctl(&ep, &["delete", "node", "node-2"]);
    assert_eq!(r.code, 3, "nothing left: {r:?}");
    Ok(())
}

#[test]
fn check_shows_all_and_problem_ips_as_calicoctl() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);

    let r = ctl(&ep, &["ipam", "check", "--show-problem-ips"]);
    assert_eq!(r.code, 7, "{r:?}");
    for l in [
        "  10.65.0.2 leaked; attrs Main:k8s-pod-network.p2 Extra:namespace=default,node=node-1,pod=p2",
        "  10.65.0.3 leaked; attrs Main:k8s-pod-network.p4 Extra:namespace=default,node=node-2,pod=p4",
    ] {
        assert!(r.stdout.lines().any(|x| x == l), "{l:?} in {}", r.stdout);
    }
    assert!(!r.stdout.contains(" allocated; attrs"), "{}", r.stdout);

    let r = ctl(&ep, &["ipam", "check", "--show-all-ips"]);
    assert_eq!(r.code, 7, "{r:?}");
    for l in [
        "  10.65.0.1 allocated; attrs Main:k8s-pod-network.p1 Extra:namespace=default,node=node-1,pod=p1",
        "  10.65.0.66 allocated; attrs Main:ipip-tunnel-addr-node-2 Extra:node=node-2",
        "  10.65.0.1 belongs to Workload(default/p1)",
        "  10.65.0.65 belongs to Workload(default/p3)",
    ] {
        assert!(r.stdout.lines().any(|x| x == l), "{l:?} in {}", r.stdout);
    }
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.contains(" allocated; attrs"))
            .count(),
        5,
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(" leaked; attrs"), "{}", r.stdout);
    // Not mixed into JSON.
    let r = ctl(&ep, &["ipam", "check", "--show-all-ips", "-o", "json"]);
    assert_eq!(r.code, 7, "{r:?}");
    let _: Value = serde_json::from_str(&r.stdout)?;
    Ok(())
}

#[test]
fn release_from_two_reports_releases_only_what_both_found_leaked() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);
    let dir = tempfile::tempdir()?;
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    // Report A: p2 (10.65.0.2) and p4 (10.65.0.3) leaked.
    assert_eq!(ctl(&ep, &["ipam", "check", "-o", a]).code, 7);
    // p2's WorkloadEndpoint appears (the pod was still being created).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ds = connect(&etcd).await;
        add_wep(&ds, "p2", "node-1", "10.65.0.2").await;
    });
    // Report B: only p4 leaked.
    assert_eq!(ctl(&ep, &["ipam", "check", "-o", b]).code, 7);

    let out = ok(
        &ep,
        &["ipam", "release", "--from-report", a, "--from-report", b],
    );
    assert!(out.contains("released 10.65.0.3 (leaked)\n"), "{out}");
    assert!(!out.contains("10.65.0.2"), "p2 is in use: {out}");
    assert!(out.contains("Released 1 leaked address;"), "{out}");
    let held = ok(&ep, &["ipam", "show", "--ip", "10.65.0.2"]);
    assert!(
        held.starts_with("10.65.0.2 is in use by handle k8s-pod-network.p2\n"),
        "{held}"
    );
    let r = ctl(&ep, &["ipam", "check"]);
    assert_eq!(r.code, 0, "clean now: {r:?}");
    let help = ok(&ep, &["ipam", "release", "--help"]);
    assert!(
        help.contains("--from-report a.json --from-report b.json"),
        "{help}"
    );
    Ok(())
}

#[test]
fn split_divides_an_unused_pool_and_refuses_one_in_use() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    set_up(&etcd);
    let pools = "/calico/resources/v3/projectcalico.org/ippools";
    etcd.put(
        &format!("{pools}/pool-b"),
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"pool-b","labels":{"rack":"r1"}},"spec":{"cidr":"10.66.0.0/24","blockSize":26,"natOutgoing":true,"nodeSelector":"all()","futureField":"kept"}}"#,
    )?;

    // pool-a has addresses assigned: refused, with the reason; unchanged.
    let before = etcd.get(&format!("{pools}/pool-a"))?;
    let r = ctl(&ep, &["ipam", "split", "--cidr=10.65.0.0/24", "2"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("IP pool pool-a is in use: 5 of its addresses are assigned"),
        "{r:?}"
    );
    assert_eq!(etcd.get(&format!("{pools}/pool-a"))?, before);

    // Not a power of 2; smaller than a block; neither pool named.
    let r = ctl(&ep, &["ipam", "split", "--name=pool-b", "3"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a valid power of 2: 3"), "{r:?}");
    let r = ctl(&ep, &["ipam", "split", "--name=pool-b", "8"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("smaller than one block"), "{r:?}");
    let r = ctl(&ep, &["ipam", "split", "4"]);
    assert_eq!(r.code, 1, "--cidr or --name: {r:?}");

    let out = ok(&ep, &["ipam", "split", "--name=pool-b", "4"]);
    assert_eq!(
        out,
        "IP Pool pool-b was successfully split into 4 smaller pools.\n\
         Created split-pool-b-0 with CIDR 10.66.0.0/26.\n\
         Created split-pool-b-1 with CIDR 10.66.0.64/26.\n\
         Created split-pool-b-2 with CIDR 10.66.0.128/26.\n\
         Created split-pool-b-3 with CIDR 10.66.0.192/26.\n"
    );
    assert_eq!(etcd.get(&format!("{pools}/pool-b"))?, None);
    let child: Value =
        serde_json::from_str(&etcd.get(&format!("{pools}/split-pool-b-2"))?.unwrap())?;
    assert_eq!(child["spec"]["cidr"], "10.66.0.128/26");
    assert_eq!(child["spec"]["natOutgoing"], true);
    assert_eq!(child["spec"]["futureField"], "kept");
    assert_eq!(child["metadata"]["labels"]["rack"], "r1");
    assert!(child["spec"].get("disabled").is_none(), "{child}");
    // The new pools serve addresses.
    let show = ok(&ep, &["ipam", "show"]);
    assert!(
        has_row(&show, &["IP Pool", "10.66.0.64/26", "64"]),
        "{show}"
    );
    Ok(())
}
