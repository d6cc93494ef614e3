//! Etcd: a real server that serves put/get, stops on drop; a 3-member
//! cluster that survives losing a member and takes it back.

use std::time::Duration;

use manul_tests::{Etcd, Need, Netns, require, wait_until};

#[test]
fn single_member_put_get_and_stop_on_drop() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
    assert_eq!(etcd.get("/manul/test")?, None);
    etcd.put("/manul/test", "hello")?;
    assert_eq!(etcd.get("/manul/test")?.as_deref(), Some("hello"));
    let addr = etcd.endpoint().trim_start_matches("http://").to_string();
    drop(etcd);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "etcd still listening on {addr}"
    );
    Ok(())
}

#[test]
fn cluster_survives_a_member_outage_and_it_catches_up() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let mut etcd = Etcd::start_cluster(3)?;
    assert_eq!(etcd.endpoints().len(), 3);
    etcd.put("/k", "v1")?;
    etcd.stop_member(2);
    let stopped = etcd.member_endpoint(2);
    assert!(etcd.etcdctl_at(&stopped, &["get", "/k"]).is_err());
    // Two of three keep quorum: writes go on.
    etcd.put("/k", "v2")?;
    etcd.restart_member(2)?;
    wait_until(
        Duration::from_secs(10),
        "restarted member to catch up",
        || {
            let out = etcd
                .etcdctl_at(
                    &stopped,
                    &["get", "/k", "--print-value-only", "--consistency=s"],
                )
                .map_err(|e| e.to_string())?;
            if out.trim() == "v2" { Ok(()) } else { Err(out) }
        },
    );
    Ok(())
}

#[test]
fn member_inside_a_namespace() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("etcdctl"));
    let ns = Netns::new("etcd")?;
    ns.ip(&["addr", "add", "10.66.0.1/32", "dev", "lo"])?;
    let etcd = Etcd::start_in(&ns, "10.66.0.1".parse()?)?;
    assert_eq!(etcd.endpoint(), "http://10.66.0.1:2379");
    etcd.put("/in/ns", "yes")?;
    assert_eq!(etcd.get("/in/ns")?.as_deref(), Some("yes"));
    Ok(())
}
