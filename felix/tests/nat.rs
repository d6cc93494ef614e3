//! felix's NAT table in a real kernel (a network namespace the test
//! makes): nothing before the first desired set; the table as manul makes
//! it; a pool change touches only set elements; a table, rule or element
//! someone deletes by hand is put back at once (nftables notifications);
//! a restart over a right table writes nothing; cleanup removes the table
//! and only it. The table is read and damaged with the `nft` CLI, as a
//! person would; manul itself speaks netlink.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use manul_felix::desired::{Encap, Pool};
use manul_felix::nat::{self, NatConfig, NatDriver, NatProgress};
use manul_tests::{Need, Netns, require, try_wait_until};

/// Repairs are driven by notifications: well within this.
const REPAIR: Duration = Duration::from_secs(1);

fn pool(cidr: &str, nat_outgoing: bool) -> Pool {
    Pool {
        name: cidr.into(),
        cidr: cidr.parse::<IpNet>().unwrap(),
        ipip: Encap::Never,
        vxlan: Encap::Never,
        nat_outgoing,
    }
}

fn pools(nat_v4: bool) -> Vec<Pool> {
    vec![
        pool("10.65.0.0/16", nat_v4),
        pool("10.70.0.0/16", false),
        pool("fd00:65::/48", true),
    ]
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    ns.exec("nft", args).unwrap()
}

/// `nft list table inet manul`, or the error text when there is none.
fn listing(ns: &Netns) -> String {
    ns.exec("nft", &["list", "table", "inet", "manul"])
        .unwrap_or_else(|e| format!("no table: {e}"))
}

fn driver(ns: &Netns) -> NatDriver {
    NatDriver::start(NatConfig {
        netns: Some(ns.path()),
        resync_interval: Duration::from_secs(3600), // notifications only
        retry_interval: Duration::from_millis(200),
    })
}

async fn set(d: &NatDriver, pools: &[Pool]) -> Arc<NatProgress> {
    let g = d.set_desired(nat::desired(pools));
    tokio::time::timeout(Duration::from_secs(10), d.wait_generation(g))
        .await
        .expect("the NAT task answered")
}

/// Wait (polling the kernel through `nft`) until `ok` holds for the listing.
async fn wait_listing(
    ns: &Netns,
    what: &str,
    within: Duration,
    ok: impl Fn(&str) -> bool + Send + 'static,
) {
    let ns = ns.clone();
    let what = what.to_string();
    tokio::task::spawn_blocking(move || {
        try_wait_until(within, &what, || {
            let l = listing(&ns);
            if ok(&l) { Ok(()) } else { Err(l) }
        })
        .unwrap()
    })
    .await
    .unwrap();
}

fn masq_v4_line(listing: &str) -> String {
    // The set's block: its name line to the closing brace.
    let start = listing.find("set masq-ipam-pools-v4").unwrap_or(0);
    listing[start..]
        .lines()
        .take_while(|l| !l.trim().starts_with('}'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_table_is_made_changed_minimally_repaired_kept_and_cleaned() {
    require!(Need::Root, Need::Bin("nft"));
    let ns = Netns::new("nat").unwrap();
    // Someone else's table: never touched.
    nft(&ns, &["add", "table", "inet", "theirs"]);
    nft(
        &ns,
        &[
            "add",
            "chain",
            "inet",
            "theirs",
            "post",
            "{",
            "type",
            "nat",
            "hook",
            "postrouting",
            "priority",
            "50",
            ";",
            "}",
        ],
    );

    // Nothing before the first desired set.
    let d = driver(&ns);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(listing(&ns).starts_with("no table"), "{}", listing(&ns));
    assert_eq!(d.progress().desired, None);

    // The table as manul makes it.
    let p = set(&d, &pools(true)).await;
    assert!(p.in_sync && p.last_error.is_none(), "{p:?}");
    assert_eq!(p.writes, 1);
    let l = listing(&ns);
    for want in [
        "set masq-ipam-pools-v4 {",
        "type ipv4_addr",
        "flags interval",
        "elements = { 10.65.0.0/16 }",
        "elements = { 10.65.0.0/16, 10.70.0.0/16 }",
        "set masq-ipam-pools-v6 {",
        "elements = { fd00:65::/48 }",
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip saddr @masq-ipam-pools-v4 ip daddr != @all-ipam-pools-v4 counter packets 0 bytes 0 masquerade fully-random",
        "ip6 saddr @masq-ipam-pools-v6 ip6 daddr != @all-ipam-pools-v6 counter packets 0 bytes 0 masquerade fully-random",
    ] {
        assert!(l.contains(want), "{want:?} in\n{l}");
    }
    let handles = nft(&ns, &["-a", "list", "table", "inet", "manul"]);

    // The same pools again: nothing written.
    let p = set(&d, &pools(true)).await;
    assert_eq!((p.writes, p.in_sync), (1, true), "{p:?}");

    // natOutgoing off for 10.65.0.0/16: its range leaves the masquerade
    // set, in place (the chain, rules and other sets keep their handles).
    let p = set(&d, &pools(false)).await;
    assert_eq!((p.writes, p.repairs), (2, 0), "{p:?}");
    let l = listing(&ns);
    assert!(!masq_v4_line(&l).contains("elements"), "{l}");
    assert!(
        l.contains("elements = { 10.65.0.0/16, 10.70.0.0/16 }"),
        "{l}"
    );
    let rule_handles = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("masquerade") || l.contains("chain nat-outgoing"))
            .map(|l| l.rsplit("# handle").next().unwrap_or("").trim().to_string())
            .collect()
    };
    assert_eq!(
        rule_handles(&nft(&ns, &["-a", "list", "table", "inet", "manul"])),
        rule_handles(&handles)
    );
    let p = set(&d, &pools(true)).await;
    assert!(p.in_sync, "{p:?}");

    // The table deleted by hand: back within a second.
    nft(&ns, &["delete", "table", "inet", "manul"]);
    wait_listing(&ns, "the table made again", REPAIR, |l| {
        l.contains("elements = { 10.65.0.0/16 }") && l.contains("masquerade fully-random")
    })
    .await;
    // The rules flushed by hand.
    nft(&ns, &["flush", "chain", "inet", "manul", "nat-outgoing"]);
    wait_listing(&ns, "the rules back", REPAIR, |l| {
        l.matches("masquerade fully-random").count() == 2
    })
    .await;
    // A rule of someone else's in manul's chain goes.
    nft(
        &ns,
        &[
            "add",
            "rule",
            "inet",
            "manul",
            "nat-outgoing",
            "ip",
            "daddr",
            "192.0.2.1",
            "accept",
        ],
    );
    wait_listing(&ns, "the foreign rule gone", REPAIR, |l| {
        !l.contains("192.0.2.1") && l.matches("masquerade fully-random").count() == 2
    })
    .await;
    // An element deleted by hand.
    nft(
        &ns,
        &[
            "delete",
            "element",
            "inet",
            "manul",
            "all-ipam-pools-v4",
            "{",
            "10.70.0.0/16",
            "}",
        ],
    );
    wait_listing(&ns, "the element back", REPAIR, |l| {
        l.contains("elements = { 10.65.0.0/16, 10.70.0.0/16 }")
    })
    .await;
    let p = d.progress();
    assert!(p.repairs >= 4 && p.in_sync, "{p:?}");
    assert_eq!(p.failures, 0, "{p:?}");

    // A restart over the right table writes nothing.
    drop(d);
    let before = nft(&ns, &["-a", "list", "table", "inet", "manul"]);
    let d = driver(&ns);
    let p = set(&d, &pools(true)).await;
    assert_eq!((p.writes, p.repairs, p.in_sync), (0, 0, true), "{p:?}");
    assert_eq!(nft(&ns, &["-a", "list", "table", "inet", "manul"]), before);

    // Cleanup removes manul's table, and only it.
    drop(d);
    assert!(nat::cleanup(Some(&ns.path())).await.unwrap());
    assert!(listing(&ns).starts_with("no table"));
    assert!(!nat::cleanup(Some(&ns.path())).await.unwrap());
    let tables = nft(&ns, &["list", "tables"]);
    assert_eq!(tables.trim(), "table inet theirs", "{tables}");
}
