//! felix's notification reader on a real kernel, in a namespace the test
//! creates: an announced bulk write that sent fewer notifications than
//! announced (a write that changed nothing) never swallows someone else's
//! later change.

use std::time::Duration;

use manul_felix::events::{Events, group};
use manul_tests::{Need, Netns, require};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_announcement_is_dropped_once_the_write_is_settled() {
    require!(Need::Root, Need::Bin("ip"));
    let ns = Netns::new("events").unwrap();
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])
    .unwrap();
    ns.link_up("eth0").unwrap();
    ns.add_addr("eth0", "192.168.1.1/24").unwrap();
    let mut events = Events::open(Some(&ns.path()), &[group::IPV4_ROUTE], Some(80)).unwrap();
    // A bulk write of 5 announced, settled with none of them sent.
    let own = events.own_writes();
    own.expect_own(5);
    own.settle(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Someone else adds a route with felix's protocol: it is seen.
    ns.ip(&[
        "route",
        "add",
        "10.77.0.0/24",
        "via",
        "192.168.1.9",
        "proto",
        "80",
    ])
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = events.next().await.expect("reader running");
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = e.payload
                && u8::from(r.header.protocol) == 80
            {
                return;
            }
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "the outsider's route notification was swallowed"
    );
}
