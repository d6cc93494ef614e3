//! RFC 6793 with a 2-octet-only peer: GoBGP (AS 4200000002) -> manul
//! (AS 65001) -> BIRD with 4-octet AS support switched off (AS 65002).
//! BIRD must get AS_TRANS in AS_PATH and the real path in AS4_PATH.

mod common;

use std::time::Duration;

use common::Bgpd;
use manul_tests::{Bird, Gobgp, Lab, Need, require, wait_until};

const T: Duration = Duration::from_secs(30);

#[test]
fn four_octet_path_crosses_a_two_octet_session_as_as_trans_plus_as4_path() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("gobgpd"));
    let lab = Lab::builder().hosts(3).build()?;
    let (m, g, b) = (lab.host(1), lab.host(2), lab.host(3));
    let manul = Bgpd::start(
        &m.ns,
        r#"
router_id = "10.88.0.1"
asn = 65001
listen = ["10.88.0.1:179"]
[[peer]]
address = "10.88.0.2"
asn = 4200000002
connect_retry = 1
export = "all"
[[peer]]
address = "10.88.0.3"
asn = 65002
connect_retry = 1
export = "all"
"#,
    )?;
    let gobgp = Gobgp::start(
        &g.ns,
        r#"
[global.config]
  as = 4200000002
  router-id = "10.88.0.2"
  local-address-list = ["10.88.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.88.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
"#,
    )?;
    gobgp.add_route("10.209.0.0/24", "ipv4")?;
    let bird = Bird::builder(&b.ns).router_id("10.88.0.3".parse()?).start(
        r#"
protocol static s4 { ipv4; route 10.203.0.0/24 blackhole; }
protocol bgp manul {
    local 10.88.0.3 as 65002;
    neighbor 10.88.0.1 as 65001;
    enable as4 off;
    connect retry time 1;
    ipv4 { import all; export all; };
}
"#,
    )?;
    bird.wait_established("manul", T)?;
    manul.wait_established("10.88.0.3", T)?;
    let peer = manul.peer("10.88.0.3")?;
    assert_eq!(peer["capabilities"]["four_octet_as"], false, "{peer}");

    // GoBGP's route reaches BIRD over the 2-octet session.
    wait_until(T, "BIRD to learn 10.209.0.0/24", || {
        match bird.has_route("10.209.0.0/24") {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let detail = bird.birdc("show route 10.209.0.0/24 all")?;
    // BIRD merges AS4_PATH back (it is a 4-octet speaker inside): the real
    // 4-octet AS can only have come from AS4_PATH on a 2-octet session.
    assert!(detail.contains("BGP.as_path: 65001 4200000002"), "{detail}");

    // BIRD's route reaches manul over the same session, 2-octet encoded.
    let route = wait_until(T, "manul to learn 10.203.0.0/24", || {
        manul
            .route("10.203.0.0/24")
            .map_err(|e| e.to_string())?
            .ok_or("absent".to_string())
    });
    assert_eq!(route["as_path"], serde_json::json!([65002]));
    // ...and GoBGP gets it with both ASes in its path.
    wait_until(T, "GoBGP to learn 10.203.0.0/24", || {
        let rib = gobgp.rib_prefixes("ipv4").map_err(|e| e.to_string())?;
        if rib.iter().any(|p| p == "10.203.0.0/24") {
            Ok(())
        } else {
            Err(format!("{rib:?}"))
        }
    });
    Ok(())
}
