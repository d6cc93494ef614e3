//! BIRD and GoBGP: real daemons in two namespaces reach Established and
//! exchange one route each way.

use std::time::Duration;

use manul_tests::{Bird, Gobgp, Need, Netns, require, wait_until};

const BIRD_CONF: &str = r#"
protocol static {
    ipv4;
    route 10.201.0.0/24 blackhole;
}
protocol bgp gobgp {
    local 10.77.0.1 as 65001;
    neighbor 10.77.0.2 as 65002;
    hold time 9;
    connect retry time 1;
    ipv4 { import all; export all; };
}
"#;

const GOBGP_CONF: &str = r#"
[global.config]
  as = 65002
  router-id = "10.77.0.2"
  local-address-list = ["10.77.0.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.77.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
"#;

#[test]
fn bird_and_gobgp_establish_and_exchange_routes() -> anyhow::Result<()> {
    require!(
        Need::Root,
        Need::Bin("bird"),
        Need::Bin("birdc"),
        Need::Bin("gobgpd"),
        Need::Bin("gobgp")
    );
    let a = Netns::new("bird")?;
    let b = Netns::new("gobgp")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", "10.77.0.1/24")?;
    b.add_addr("eth0", "10.77.0.2/24")?;

    let bird = Bird::builder(&a)
        .router_id("10.77.0.1".parse()?)
        .start(BIRD_CONF)?;
    let gobgp = Gobgp::start(&b, GOBGP_CONF)?;
    gobgp.add_route("10.202.0.0/24", "ipv4")?;

    bird.wait_established("gobgp", Duration::from_secs(30))?;
    gobgp.wait_established("10.77.0.1", Duration::from_secs(30))?;

    wait_until(
        Duration::from_secs(15),
        "BIRD to learn 10.202.0.0/24",
        || match bird.has_route("10.202.0.0/24") {
            Ok(true) => Ok(()),
            Ok(false) => Err(bird.birdc("show route").unwrap_or_default()),
            Err(e) => Err(format!("{e:#}")),
        },
    );
    wait_until(
        Duration::from_secs(15),
        "GoBGP to learn 10.201.0.0/24",
        || {
            let rib = gobgp.rib_prefixes("ipv4").map_err(|e| format!("{e:#}"))?;
            if rib.iter().any(|p| p == "10.201.0.0/24") {
                Ok(())
            } else {
                Err(format!("{rib:?}"))
            }
        },
    );
    // An absent prefix is a plain "no" (birdc exits 1 on "Network not found").
    assert!(!bird.has_route("10.99.0.0/24")?);
    // BIRD: its static route and the learned one, nothing else.
    assert_eq!(bird.route_count()?, 2);
    // GoBGP learned exactly BIRD's route besides its own.
    assert_eq!(
        gobgp.rib_prefixes("ipv4")?,
        ["10.201.0.0/24", "10.202.0.0/24"]
    );
    // Kernel export is off: BIRD put nothing in its namespace's FIB.
    let fib = a.ip(&["route", "show"])?;
    assert!(!fib.contains("10.202.0.0"), "{fib}");
    Ok(())
}
