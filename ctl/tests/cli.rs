//! The real `manulctl` binary against a real etcd: apply, get, delete,
//! the exit codes, and what lands in etcd (checked raw with etcdctl).

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

mod common;

use common::{ctl, ok};
use manul_tests::{Etcd, Need, require};
use serde_json::Value;

const POOL_KEY: &str = "/calico/resources/v3/projectcalico.org/ippools/pool-a";
const PEER_KEY: &str = "/calico/resources/v3/projectcalico.org/bgppeers/tor-1";
const CONFIG_KEY: &str = "/calico/resources/v3/projectcalico.org/bgpconfigurations/default";

const THREE: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
  labels: {tier: prod}
spec:
  cidr: 10.65.0.0/16
  natOutgoing: true
  futureField: kept
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor-1
spec:
  peerIP: 192.0.2.1
  asNumber: 65001
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  asNumber: 64513
  nodeToNodeMeshEnabled: false
";

/// What one run of the binary did.
/// The JSON stored at `key`, which must be there.
fn raw(etcd: &Etcd, key: &str) -> Value {
    common::raw(etcd, key).unwrap_or_else(|| panic!("{key} absent"))
}

fn calico_keys(etcd: &Etcd) -> Vec<String> {
    etcd.etcdctl(&["get", "--prefix", "--keys-only", "/calico/"])
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn apply_get_delete_round_trip_in_calicos_layout() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("three.yaml");
    std::fs::write(&file, THREE)?;
    let file = file.to_str().unwrap();

    // Created, in Calico's keys and JSON.
    let out = ok(&ep, &["apply", "-f", file], None);
    assert_eq!(
        out,
        "ippool.projectcalico.org/pool-a created\n\
         bgppeer.projectcalico.org/tor-1 created\n\
         bgpconfiguration.projectcalico.org/default created\n"
    );
    let pool = raw(&etcd, POOL_KEY);
    assert_eq!(pool["kind"], "IPPool");
    assert_eq!(pool["apiVersion"], "projectcalico.org/v3");
    assert_eq!(pool["metadata"]["name"], "pool-a");
    assert_eq!(pool["metadata"]["labels"]["tier"], "prod");
    assert!(pool["metadata"].get("resourceVersion").is_none(), "{pool}");
    assert_eq!(pool["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(pool["metadata"]["creationTimestamp"].is_string());
    assert_eq!(pool["spec"]["cidr"], "10.65.0.0/16");
    assert_eq!(
        pool["spec"]["blockSize"], 26,
        "Calico's defaults are written"
    );
    assert_eq!(pool["spec"]["ipipMode"], "Never");
    assert_eq!(pool["spec"]["nodeSelector"], "all()");
    assert_eq!(
        pool["spec"]["futureField"], "kept",
        "unknown fields are kept"
    );
    let peer = raw(&etcd, PEER_KEY);
    assert_eq!(peer["spec"]["peerIP"], "192.0.2.1");
    assert_eq!(peer["spec"]["asNumber"], 65001);
    let config = raw(&etcd, CONFIG_KEY);
    assert_eq!(config["spec"]["nodeToNodeMeshEnabled"], false);

    // Again: unchanged, nothing rewritten.
    let before = etcd.get(POOL_KEY)?;
    let out = ok(&ep, &["apply", "-f", "-"], Some(THREE));
    assert_eq!(out.matches(" unchanged\n").count(), 3, "{out}");
    assert_eq!(etcd.get(POOL_KEY)?, before);

    // A change: --dry-run tells and writes nothing; then configured, uid
    // and creation time kept.
    let changed = THREE.replace("natOutgoing: true", "natOutgoing: false");
    let out = ok(&ep, &["apply", "--dry-run", "-f", "-"], Some(&changed));
    assert!(out.contains("pool-a configured (dry run)\n"), "{out}");
    assert_eq!(etcd.get(POOL_KEY)?, before);
    let out = ok(&ep, &["apply", "-f", "-"], Some(&changed));
    assert!(
        out.contains("ippool.projectcalico.org/pool-a configured\n"),
        "{out}"
    );
    assert!(
        out.contains("bgppeer.projectcalico.org/tor-1 unchanged\n"),
        "{out}"
    );
    let after = raw(&etcd, POOL_KEY);
    assert!(after["spec"].get("natOutgoing").is_none(), "{after}");
    assert_eq!(after["metadata"]["uid"], pool["metadata"]["uid"]);

    // get: table, wide, json, yaml; any spelling of the kind.
    let table = ok(&ep, &["get", "IPPools"], None);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CIDR",
            "BLOCKSIZE",
            "IPIP",
            "VXLAN",
            "NAT",
            "DISABLED",
            "SELECTOR"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [
            "pool-a",
            "10.65.0.0/16",
            "26",
            "Never",
            "Never",
            "false",
            "false",
            "all()"
        ]
    );
    let wide = ok(&ep, &["get", "ippool", "-o", "wide"], None);
    assert!(
        wide.starts_with("NAME") && wide.contains("Workload,Tunnel"),
        "{wide}"
    );
    let peers = ok(&ep, &["get", "bgppeers"], None);
    assert!(
        peers.starts_with("NAME    PEERIP      NODE       ASN\n"),
        "{peers}"
    );
    assert!(
        peers.contains("tor-1   192.0.2.1   (global)   65001"),
        "{peers}"
    );

    let list: Value = serde_json::from_str(&ok(&ep, &["get", "bgppeer", "-o", "json"], None))?;
    assert_eq!(list["kind"], "BGPPeerList");
    assert_eq!(list["items"][0]["metadata"]["name"], "tor-1");
    assert!(list["items"][0]["metadata"]["resourceVersion"].is_string());
    let one: Value =
        serde_json::from_str(&ok(&ep, &["get", "ippool", "pool-a", "-o", "json"], None))?;
    assert_eq!(one["kind"], "IPPool");
    assert_eq!(one["spec"]["futureField"], "kept");
    let yaml = ok(&ep, &["get", "bgpconfig", "default", "-o", "yaml"], None);
    assert!(yaml.contains("kind: BGPConfiguration\n"), "{yaml}");
    assert!(yaml.contains("asNumber: 64513\n"), "{yaml}");

    // What get prints, apply takes back; with a stale resourceVersion it
    // is refused with exit code 4 and nothing changes.
    let stale = ok(&ep, &["get", "ippools", "-o", "yaml"], None);
    let out = ok(&ep, &["apply", "-f", "-"], Some(&stale));
    assert_eq!(out, "ippool.projectcalico.org/pool-a unchanged\n");
    ok(&ep, &["apply", "-f", file], None);
    let refused = ctl(&ep, &["apply", "-f", "-"], Some(&stale));
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(
        refused.stderr.contains("changed since it was read"),
        "{refused:?}"
    );
    assert_eq!(raw(&etcd, POOL_KEY)["spec"]["natOutgoing"], true);

    // Missing names: exit code 3.
    let missing = ctl(&ep, &["get", "ippool", "nope"], None);
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing.stderr.contains("IPPool \"nope\" not found"),
        "{missing:?}"
    );

    // delete by name, then by file.
    assert_eq!(
        ok(&ep, &["delete", "bgppeer", "tor-1"], None),
        "bgppeer.projectcalico.org/tor-1 deleted\n"
    );
    assert_eq!(etcd.get(PEER_KEY)?, None);
    let again = ctl(&ep, &["delete", "bgppeers", "tor-1"], None);
    assert_eq!(again.code, 3, "{again:?}");
    ok(
        &ep,
        &["delete", "bgppeers", "tor-1", "--ignore-not-found"],
        None,
    );
    // A file's missing objects do not stop the others; they are reported.
    let r = ctl(
        &ep,
        &["delete", "-f", "-"],
        Some(&THREE.replace("tor-1", "gone")),
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains("ippool.projectcalico.org/pool-a deleted"),
        "{r:?}"
    );
    assert!(r.stderr.contains("BGPPeer \"gone\" not found"), "{r:?}");
    assert!(calico_keys(&etcd).is_empty(), "{:?}", calico_keys(&etcd));
    Ok(())
}

#[test]
fn invalid_input_writes_nothing_and_lists_every_problem() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    ok(&ep, &["apply", "-f", "-"], Some(THREE));
    let stored_pool = etcd.get(POOL_KEY)?;

    let bad = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: fine}
spec: {cidr: 10.99.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: host-bits}
spec: {cidr: 10.0.0.1/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: overlap-a}
spec: {cidr: 10.70.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: overlap-b}
spec: {cidr: 10.70.128.0/17}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: inside-stored}
spec: {cidr: 10.65.7.0/24}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: both}
spec: {peerIP: 192.0.2.2, peerSelector: \"rr == 'true'\"}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64513, nodeToNodeMeshEnabled: false, listenPort: many}
";
    let r = ctl(&ep, &["apply", "-f", "-"], Some(bad));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    for expected in [
        "nothing was applied: 5 problems",
        "document 2: IPPool \"host-bits\": spec.cidr: 10.0.0.1/16 has host bits set",
        "document 4: IPPool \"overlap-b\": spec.cidr: 10.70.128.0/17 overlaps IPPool \"overlap-a\"",
        "document 5: IPPool \"inside-stored\": spec.cidr: 10.65.7.0/24 overlaps IPPool \"pool-a\" \
         (10.65.0.0/16) (already in etcd)",
        "document 6: BGPPeer \"both\": spec.peerSelector: cannot be set together with spec.peerIP",
        "document 7: BGPConfiguration \"default\": spec.listenPort: invalid type",
    ] {
        assert!(
            r.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            r.stderr
        );
    }
    assert_eq!(calico_keys(&etcd).len(), 3, "nothing was written");

    // An immutable field: named, with what to do; nothing changes.
    let moved = THREE.replace("10.65.0.0/16", "10.66.0.0/16");
    let r = ctl(&ep, &["apply", "-f", "-"], Some(&moved));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("spec.cidr cannot change"), "{r:?}");
    assert_eq!(etcd.get(POOL_KEY)?, stored_pool);

    // Unknown kinds: invalid input too.
    let r = ctl(&ep, &["get", "pods"], None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("IPPool (ippools)"), "{r:?}");
    Ok(())
}

#[test]
fn unreachable_etcd_exits_5_naming_the_endpoint() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let r = ctl(
        &endpoint,
        &["--request-timeout", "1s", "get", "ippools"],
        None,
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains(&endpoint), "{r:?}");
    assert!(r.stderr.contains("--etcd-endpoints"), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn help_completion_and_usage_errors() {
    let nowhere = "http://127.0.0.1:1";
    let help = ok(nowhere, &["--help"], None);
    for part in [
        "Examples:",
        "manulctl apply -f pools.yaml",
        "Exit codes:",
        "ETCD_ENDPOINTS",
    ] {
        assert!(help.contains(part), "--help lacks {part:?}:\n{help}");
    }
    for (cmd, example) in [
        ("apply", "$ manulctl apply -f pools.yaml"),
        ("get", "$ manulctl get ippools"),
        ("delete", "$ manulctl delete bgppeer tor-1"),
        ("completion", "source <(manulctl completion bash)"),
    ] {
        let h = ok(nowhere, &[cmd, "--help"], None);
        assert!(
            h.contains("Examples:") && h.contains(example),
            "{cmd} --help:\n{h}"
        );
    }
    let script = ok(nowhere, &["completion", "bash"], None);
    assert!(
        script.contains("complete -F") && script.contains("manulctl"),
        "{script}"
    );
    let r = ctl(nowhere, &["get", "--no-such-flag"], None);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn applying_an_ipip_pool_warns_what_nodes_need_and_writes_it() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    let pools = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: tunnelled
spec:
  cidr: 10.70.0.0/16
  ipipMode: CrossSubnet
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: plain
spec:
  cidr: 10.71.0.0/16
  ipipMode: Never
";
    let r = ctl(&ep, &["apply", "-f", "-"], Some(pools));
    assert_eq!(r.code, 0, "{r:?}");
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{r:?}");
    for want in [
        "IPPool \"tunnelled\"",
        "ipipMode CrossSubnet",
        "does not build IPIP tunnels",
        "ipip module",
        "vxlanMode CrossSubnet",
    ] {
        assert!(warnings[0].contains(want), "{want} in {}", warnings[0]);
    }
    // Warned, and written all the same (it is valid Calico).
    assert!(
        r.stdout
            .contains("ippool.projectcalico.org/tunnelled created"),
        "{r:?}"
    );
    assert_eq!(
        raw(
            &etcd,
            "/calico/resources/v3/projectcalico.org/ippools/tunnelled"
        )["spec"]["ipipMode"],
        "CrossSubnet"
    );
    Ok(())
}
