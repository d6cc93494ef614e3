//! manul-bgpd against a real BIRD 2, each in its own namespace.

mod common;

use std::time::Duration;

use common::{Bgpd, pair};
use manul_tests::{Bird, Need, require, wait_until};

const T: Duration = Duration::from_secs(30);

fn manul_conf(local_as: u32, bird_as: u32) -> String {
    format!(
        r#"
router_id = "10.77.0.1"
asn = {local_as}
listen = ["10.77.0.1:179", "[fd00:77::1]:179"]

[[peer]]
address = "10.77.0.2"
asn = {bird_as}
hold_time = 9
connect_retry = 1

[[prefix]]
prefix = "10.201.0.0/24"
communities = ["65001:100"]
large_communities = ["4200000001:1:2"]
"#
    )
}

fn bird_conf(local_as: u32, bird_as: u32) -> String {
    format!(
        r#"
protocol static s4 {{
    ipv4;
    route 10.202.0.0/24 blackhole {{ bgp_community.add((65002, 200)); bgp_large_community.add((65002, 3, 4)); }};
}}
protocol bgp manul {{
    local 10.77.0.2 as {bird_as};
    neighbor 10.77.0.1 as {local_as};
    hold time 9;
    connect retry time 1;
    ipv4 {{ import all; export all; }};
}}
"#
    )
}

#[test]
fn ebgp_v4_routes_both_ways_with_communities_and_withdrawal() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let (a, b) = pair()?;
    let manul = Bgpd::start(&a, &manul_conf(65001, 65002))?;
    let bird = Bird::builder(&b)
        .router_id("10.77.0.2".parse()?)
        .start(&bird_conf(65001, 65002))?;
    bird.wait_established("manul", T)?;
    manul.wait_established("10.77.0.2", T)?;

    // manul -> BIRD, with both kinds of communities.
    wait_until(T, "BIRD to learn 10.201.0.0/24", || {
        match bird.has_route("10.201.0.0/24") {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let detail = bird.birdc("show route 10.201.0.0/24 all")?;
    assert!(detail.contains("(65001,100)"), "{detail}");
    assert!(detail.contains("(4200000001, 1, 2)"), "{detail}");
    assert!(detail.contains("BGP.as_path: 65001"), "{detail}");
    assert!(detail.contains("BGP.next_hop: 10.77.0.1"), "{detail}");

    // BIRD -> manul.
    let route = wait_until(T, "manul to learn 10.202.0.0/24", || {
        manul
            .route("10.202.0.0/24")
            .map_err(|e| e.to_string())?
            .ok_or("absent".to_string())
    });
    assert_eq!(route["next_hops"][0], "10.77.0.2");
    assert_eq!(route["as_path"][0], 65002);
    assert_eq!(route["communities"][0], "65002:200");
    assert_eq!(route["large_communities"][0], "65002:3:4");

    // Withdrawal propagates.
    bird.birdc("disable s4")?;
    wait_until(T, "manul to drop 10.202.0.0/24", || {
        match manul.route("10.202.0.0/24").map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(r) => Err(r.to_string()),
        }
    });
    Ok(())
}
