//! Route reflection (RFC 4456) with real BIRD peers on one lab segment:
//! manul as the reflector of two BIRD clients, and manul as a client of a
//! BIRD reflector.

mod common;

use std::time::Duration;

use common::Bgpd;
use manul_tests::{Bird, Lab, Need, require, wait_until};

const T: Duration = Duration::from_secs(30);

fn bird_client(id: &str, prefix: &str, rr: &str) -> String {
    format!(
        r#"
protocol static s4 {{ ipv4; route {prefix} blackhole; }}
protocol bgp reflector {{
    local {id} as 64512;
    neighbor {rr} as 64512;
    direct;
    connect retry time 1;
    ipv4 {{ import all; export all; }};
}}
"#
    )
}

#[test]
fn manul_reflects_between_two_bird_clients() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let lab = Lab::builder().hosts(3).build()?;
    let manul = Bgpd::start(
        &lab.host(1).ns,
        r#"
router_id = "10.88.0.1"
asn = 64512
cluster_id = "10.88.0.1"
listen = ["10.88.0.1:179"]
[[peer]]
address = "10.88.0.2"
asn = 64512
connect_retry = 1
route_reflector_client = true
[[peer]]
address = "10.88.0.3"
asn = 64512
connect_retry = 1
route_reflector_client = true
[[prefix]]
prefix = "10.201.0.0/24"
"#,
    )?;
    let b2 = Bird::builder(&lab.host(2).ns)
        .router_id("10.88.0.2".parse()?)
        .start(&bird_client("10.88.0.2", "10.202.0.0/24", "10.88.0.1"))?;
    let b3 = Bird::builder(&lab.host(3).ns)
        .router_id("10.88.0.3".parse()?)
        .start(&bird_client("10.88.0.3", "10.203.0.0/24", "10.88.0.1"))?;
    b2.wait_established("reflector", T)?;
    b3.wait_established("reflector", T)?;

    // Client to client, with ORIGINATOR_ID and CLUSTER_LIST, next hop kept.
    let d = b3.wait_route("10.202.0.0/24", T)?;
    assert!(d.contains("BGP.originator_id: 10.88.0.2"), "{d}");
    assert!(d.contains("BGP.cluster_list: 10.88.0.1"), "{d}");
    assert!(d.contains("BGP.next_hop: 10.88.0.2"), "{d}");
    let d = b2.wait_route("10.203.0.0/24", T)?;
    assert!(d.contains("BGP.originator_id: 10.88.0.3"), "{d}");
    // The reflector's own route reaches both, unreflected.
    let d = b2.wait_route("10.201.0.0/24", T)?;
    assert!(!d.contains("originator_id"), "{d}");
    b3.wait_route("10.201.0.0/24", T)?;
    // Never back to the originator.
    assert!(
        !b2.birdc("show route 10.202.0.0/24 all")?
            .contains("[reflector "),
        "reflected back"
    );
    // And the reflector itself uses both.
    let r = manul
        .route("10.202.0.0/24")?
        .expect("reflector has the route");
    assert_eq!(r["next_hops"][0], "10.88.0.2");
    Ok(())
}

#[test]
fn manul_as_client_of_a_bird_reflector() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let lab = Lab::builder().hosts(3).build()?;
    let rr = Bird::builder(&lab.host(1).ns)
        .router_id("10.88.0.1".parse()?)
        .start(
            r#"
template bgp clients {
    local 10.88.0.1 as 64512;
    rr client;
    rr cluster id 10.88.0.1;
    direct;
    connect retry time 1;
    ipv4 { import all; export all; };
}
protocol bgp manul from clients { neighbor 10.88.0.2 as 64512; }
protocol bgp peer3 from clients { neighbor 10.88.0.3 as 64512; }
"#,
        )?;
    let manul = Bgpd::start(
        &lab.host(2).ns,
        r#"
router_id = "10.88.0.2"
asn = 64512
listen = ["10.88.0.2:179"]
[[peer]]
address = "10.88.0.1"
asn = 64512
connect_retry = 1
[[prefix]]
prefix = "10.202.0.0/24"
"#,
    )?;
    let other = Bird::builder(&lab.host(3).ns)
        .router_id("10.88.0.3".parse()?)
        .start(&bird_client("10.88.0.3", "10.203.0.0/24", "10.88.0.1"))?;
    rr.wait_established("manul", T)?;
    other.wait_established("reflector", T)?;
    // manul's route reaches the other client through the reflector.
    let d = other.wait_route("10.202.0.0/24", T)?;
    assert!(d.contains("BGP.originator_id: 10.88.0.2"), "{d}");
    // The other client's route reaches manul with the other client as next hop.
    let r = wait_until(T, "manul to learn 10.203.0.0/24", || {
        manul
            .route("10.203.0.0/24")
            .map_err(|e| e.to_string())?
            .ok_or("absent".to_string())
    });
    assert_eq!(r["next_hops"][0], "10.88.0.3");
    // manul does not take back its own route from the reflector
    // (ORIGINATOR_ID is its router ID, RFC 4456 §8).
    let own = manul.route("10.202.0.0/24")?.expect("own route");
    assert_eq!(own["local"], true);
    assert_eq!(manul.peer("10.88.0.1")?["accepted"], 1);
    Ok(())
}
