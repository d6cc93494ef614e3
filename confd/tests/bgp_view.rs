//! The derived BGP view (pure: snapshots built in memory).

use std::collections::BTreeSet;
use std::net::IpAddr;

use manul_confd::bgp::{BgpDeriver, Community, PeerSource, PrefixOrigin, derive};
use manul_confd::item::{Decoded, decode};
use manul_confd::{ItemKey, Snapshot};
use serde_json::{Value, json};

const R: &str = "/calico/resources/v3/projectcalico.org";

fn put(snap: &mut Snapshot, me: &str, key: &str, value: Value) -> Vec<manul_confd::Delta> {
    match decode(me, key, value.to_string().as_bytes()) {
        Decoded::Item(k, item) => snap.set(k, item).into_iter().collect(),
        Decoded::Ignored => panic!("{key} ignored"),
    }
}

fn node(name: &str, ip: &str, extra: Value) -> (String, Value) {
    let mut bgp = json!({"ipv4Address": format!("{ip}/24")});
    if let Value::Object(m) = extra.get("bgp").cloned().unwrap_or(json!({})) {
        bgp.as_object_mut().unwrap().extend(m);
    }
    let labels = extra.get("labels").cloned().unwrap_or(json!({}));
    (
        format!("{R}/nodes/{name}"),
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3",
               "metadata":{"name":name,"labels":labels},"spec":{"bgp":bgp}}),
    )
}

fn five_nodes(me: &str) -> Snapshot {
    let mut snap = Snapshot::new();
    // 10.0.0.10 sorts before 10.0.0.2 as a string: the passive rule is
    // Calico's string comparison, which still picks one side per pair.
    for (n, ip) in [
        ("n1", "10.0.0.1"),
        ("n2", "10.0.0.2"),
        ("n3", "10.0.0.3"),
        ("n4", "10.0.0.10"),
        ("n5", "10.0.0.11"),
    ] {
        let (k, v) = node(n, ip, json!({}));
        put(&mut snap, me, &k, v);
    }
    snap
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn mesh_of_five_nodes_has_one_passive_side_per_pair() {
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let views: Vec<_> = names
        .iter()
        .map(|n| (n, derive(&five_nodes(n), n)))
        .collect();
    let addr = |n: &str| match n {
        "n1" => ip("10.0.0.1"),
        "n2" => ip("10.0.0.2"),
        "n3" => ip("10.0.0.3"),
        "n4" => ip("10.0.0.10"),
        _ => ip("10.0.0.11"),
    };
    for (me, view) in &views {
        assert_eq!(view.globals.asn, 64512);
        assert_eq!(
            view.globals.router_id,
            Some(addr(me).to_string().parse().unwrap())
        );
        let got: BTreeSet<IpAddr> = view.peers.keys().copied().collect();
        let want: BTreeSet<IpAddr> = names
            .iter()
            .filter(|n| *n != *me)
            .map(|n| addr(n))
            .collect();
        assert_eq!(got, want, "peers of {me}");
        for p in view.peers.values() {
            assert!(matches!(p.source, PeerSource::Mesh { .. }));
            assert_eq!(p.asn, 64512);
            assert_eq!(p.source_address, Some(addr(me)));
        }
    }
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let pa = views.iter().find(|(n, _)| *n == a).unwrap().1.peers[&addr(b)].passive;
            let pb = views.iter().find(|(n, _)| *n == b).unwrap().1.peers[&addr(a)].passive;
            assert!(pa != pb, "{a}<->{b}: passive {pa} and {pb}");
        }
    }
}

#[test]
fn as_number_node_over_global_over_default() {
    let mut snap = five_nodes("n1");
    assert_eq!(derive(&snap, "n1").globals.asn, 64512);
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgpconfigurations/default"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"asNumber":65001}}),
    );
    let v = derive(&snap, "n1");
    assert_eq!(v.globals.asn, 65001);
    assert!(v.peers.values().all(|p| p.asn == 65001));
    let (k, val) = node("n2", "10.0.0.2", json!({"bgp":{"asNumber":65002}}));
    put(&mut snap, "n1", &k, val);
    let v = derive(&snap, "n1");
    assert_eq!(v.globals.asn, 65001);
    assert_eq!(v.peers[&ip("10.0.0.2")].asn, 65002);
    assert_eq!(derive(&snap, "n2").globals.asn, 65002);
}

#[test]
fn mesh_off_leaves_explicit_peers() {
    let mut snap = five_nodes("n1");
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgpconfigurations/default"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"default"},
               "spec":{"nodeToNodeMeshEnabled":false}}),
    );
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgppeers/tor"),
        json!({"kind":"BGPPeer","metadata":{"name":"tor"},
               "spec":{"peerIP":"10.0.0.254:1179","asNumber":65100,"keepaliveTime":"20s"}}),
    );
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgppeers/other-node"),
        json!({"kind":"BGPPeer","metadata":{"name":"other-node"},
               "spec":{"node":"n2","peerIP":"10.0.0.253","asNumber":65100}}),
    );
    let v = derive(&snap, "n1");
    assert!(!v.globals.mesh);
    assert_eq!(v.peers.len(), 1, "{:?}", v.peers.keys());
    let tor = &v.peers[&ip("10.0.0.254")];
    assert_eq!((tor.port, tor.asn, tor.passive), (1179, 65100, false));
    assert_eq!(tor.keepalive, Some(std::time::Duration::from_secs(20)));
    assert!(matches!(&tor.source, PeerSource::Global { peer, .. } if peer == "tor"));
    assert_eq!(derive(&snap, "n2").peers.len(), 2);
}

#[test]
fn route_reflectors_leave_the_mesh_and_reflect_to_clients() {
    let me_rr = "n1";
    let mut snap = Snapshot::new();
    for (n, ipaddr, extra) in [
        (
            "n1",
            "10.0.0.1",
            json!({"bgp":{"routeReflectorClusterID":"224.0.0.1"},"labels":{"rr":"yes"}}),
        ),
        ("n2", "10.0.0.2", json!({})),
        ("n3", "10.0.0.3", json!({})),
    ] {
        let (k, v) = node(n, ipaddr, extra);
        put(&mut snap, me_rr, &k, v);
    }
    put(
        &mut snap,
        me_rr,
        &format!("{R}/bgppeers/to-rr"),
        json!({"kind":"BGPPeer","metadata":{"name":"to-rr"},
               "spec":{"nodeSelector":"!has(rr)","peerSelector":"has(rr)"}}),
    );
    let rr = derive(&snap, "n1");
    assert_eq!(rr.globals.cluster_id, Some("224.0.0.1".parse().unwrap()));
    assert_eq!(
        rr.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("10.0.0.2"), ip("10.0.0.3")]
    );
    // One BGPPeer (clients -> reflector) is enough: the reflector peers
    // back with the nodes it applies to, as Calico's confd does.
    assert!(rr.peers.values().all(|p| p.route_reflector_client));
    assert!(
        rr.peers
            .values()
            .all(|p| matches!(&p.source, PeerSource::Reverse { peer, .. } if peer == "to-rr"))
    );
    let client = derive(&snap, "n2");
    // The mesh between the clients stays; the reflector is peered through the BGPPeer.
    assert!(matches!(
        client.peers[&ip("10.0.0.3")].source,
        PeerSource::Mesh { .. }
    ));
    let to_rr = &client.peers[&ip("10.0.0.1")];
    assert!(matches!(to_rr.source, PeerSource::NodeSelector { .. }));
    assert!(!to_rr.route_reflector_client);
    // One side passive on the selector peering too.
    assert_ne!(to_rr.passive, rr.peers[&ip("10.0.0.2")].passive);
}

fn pool(snap: &mut Snapshot, me: &str, name: &str, cidr: &str, extra: Value) {
    let mut spec = json!({"cidr": cidr});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    put(
        snap,
        me,
        &format!("{R}/ippools/{name}"),
        json!({"kind":"IPPool","metadata":{"name":name},"spec":spec}),
    );
}

fn affinity(snap: &mut Snapshot, me: &str, cidr: &str, state: &str) {
    let seg = cidr.replace('/', "-");
    put(
        snap,
        me,
        &format!("/calico/ipam/v2/host/{me}/ipv4/block/{seg}"),
        json!({"state": state, "deleted": false}),
    );
}

#[test]
fn prefixes_follow_calico_export_rules() {
    let me = "n1";
    let mut snap = five_nodes(me);
    pool(&mut snap, me, "p1", "10.65.0.0/16", json!({}));
    pool(
        &mut snap,
        me,
        "quiet",
        "10.66.0.0/16",
        json!({"disableBGPExport": true}),
    );
    pool(
        &mut snap,
        me,
        "off",
        "10.67.0.0/16",
        json!({"disabled": true}),
    );
    affinity(&mut snap, me, "10.65.0.0/26", "confirmed");
    affinity(&mut snap, me, "10.65.0.64/26", "pending");
    affinity(&mut snap, me, "10.66.0.0/26", "confirmed");
    affinity(&mut snap, me, "10.67.0.0/26", "confirmed");
    affinity(&mut snap, me, "10.99.0.0/26", "confirmed"); // in no pool
    put(
        &mut snap,
        me,
        "/calico/ipam/v2/assignment/ipv4/block/10.65.1.0-26",
        json!({"cidr":"10.65.1.0/26","affinity":"host:n2","allocations":[0,1],
               "unallocated":[],"attributes":[{"handle_id":"a","secondary":{"node":"n2"}},
               {"handle_id":"b","secondary":{"node":"n1"}}],"deleted":false,
               "sequenceNumber":1,"sequenceNumberForAllocation":{}}),
    );
    put(
        &mut snap,
        me,
        &format!("{R}/bgpconfigurations/default"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"default"},
               "spec":{"communities":[{"name":"pods","value":"65001:100"}],
                       "prefixAdvertisements":[{"cidr":"10.65.0.0/16","communities":["pods","65001:1:2"]}]}}),
    );
    let v = derive(&snap, me);
    let got: Vec<(String, PrefixOrigin)> = v
        .prefixes
        .iter()
        .map(|(p, view)| (p.to_string(), view.origin))
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.65.0.0/26".to_string(), PrefixOrigin::Block),
            ("10.65.1.1/32".to_string(), PrefixOrigin::Borrowed),
        ]
    );
    assert_eq!(
        v.prefixes.values().next().unwrap().communities,
        vec![
            Community::Standard(65001, 100),
            Community::Large(65001, 1, 2)
        ]
    );
}

#[test]
fn a_change_to_one_peer_changes_one_peer() {
    let me = "n1";
    let mut snap = five_nodes(me);
    let mut d = BgpDeriver::new(me);
    let first = d.reset(&snap);
    assert_eq!(first.peers.len(), 4);
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgppeers/tor"),
        json!({"kind":"BGPPeer","metadata":{"name":"tor"},"spec":{"peerIP":"10.0.0.254","asNumber":65100}}),
    );
    let ch = d.apply(&snap, &deltas);
    assert_eq!(
        ch.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("10.0.0.254")]
    );
    assert!(!ch.globals && ch.prefixes.is_empty());
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgppeers/tor"),
        json!({"kind":"BGPPeer","metadata":{"name":"tor"},"spec":{"peerIP":"10.0.0.254","asNumber":65101}}),
    );
    let ch = d.apply(&snap, &deltas);
    assert_eq!(ch.peers.len(), 1);
    assert_eq!(ch.peers[&ip("10.0.0.254")].as_ref().unwrap().asn, 65101);
    // An explicit peer at a mesh address takes precedence, and going away
    // gives the mesh peering back.
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgppeers/n3"),
        json!({"kind":"BGPPeer","metadata":{"name":"n3"},"spec":{"node":"n1","peerIP":"10.0.0.3","asNumber":64512}}),
    );
    let ch = d.apply(&snap, &deltas);
    assert!(matches!(
        ch.peers[&ip("10.0.0.3")].as_ref().unwrap().source,
        PeerSource::Node { .. }
    ));
    let deltas: Vec<_> = snap
        .set(ItemKey::BgpPeer("n3".into()), None)
        .into_iter()
        .collect();
    let ch = d.apply(&snap, &deltas);
    assert!(matches!(
        ch.peers[&ip("10.0.0.3")].as_ref().unwrap().source,
        PeerSource::Mesh { .. }
    ));
    // A node going away removes exactly its mesh peering.
    let deltas: Vec<_> = snap
        .set(ItemKey::Node("n5".into()), None)
        .into_iter()
        .collect();
    let ch = d.apply(&snap, &deltas);
    assert_eq!(ch.peers.len(), 1);
    assert_eq!(ch.peers[&ip("10.0.0.11")], None);
    // Workloads do not touch the view.
    assert_eq!(d.view(), &derive(&snap, me));
}

#[test]
fn incremental_equals_from_scratch_over_a_sequence() {
    let me = "n2";
    let mut snap = Snapshot::new();
    let mut d = BgpDeriver::new(me);
    d.reset(&snap);
    let mut steps: Vec<(String, Option<Value>)> = Vec::new();
    for (n, a) in [("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")] {
        let (k, v) = node(n, a, json!({"labels":{"zone":"a"}}));
        steps.push((k, Some(v)));
    }
    steps.push((
        format!("{R}/bgppeers/zone"),
        Some(json!({"kind":"BGPPeer","metadata":{"name":"zone"},
                    "spec":{"peerSelector":"zone == 'a'","filters":["f1"]}})),
    ));
    steps.push((
        format!("{R}/bgpfilters/f1"),
        Some(json!({"kind":"BGPFilter","metadata":{"name":"f1"},
                    "spec":{"exportV4":[{"cidr":"10.65.0.0/16","matchOperator":"In","action":"Accept"}]}})),
    ));
    let (k, v) = node("n3", "10.0.0.3", json!({"labels":{"zone":"b"}}));
    steps.push((k, Some(v)));
    steps.push((
        format!("{R}/bgpconfigurations/default"),
        Some(json!({"kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"asNumber":65010}})),
    ));
    let (k, v) = node(
        "n2",
        "10.0.0.2",
        json!({"bgp":{"routeReflectorClusterID":"1.2.3.4"}}),
    );
    steps.push((k, Some(v)));
    steps.push((format!("{R}/bgpfilters/f1"), None));
    steps.push((format!("{R}/nodes/n1"), None));
    for (key, value) in steps {
        let deltas: Vec<_> = match value {
            Some(v) => put(&mut snap, me, &key, v),
            None => {
                let k = manul_confd::item::item_key(me, &key).unwrap();
                snap.set(k, None).into_iter().collect()
            }
        };
        d.apply(&snap, &deltas);
        assert_eq!(d.view(), &derive(&snap, me), "after {key}");
    }
}

#[test]
fn a_peer_ip_naming_a_node_peers_that_node_back() {
    // BGPPeer: nodes with rack=a peer with 10.0.0.1 in AS 64512 (n1's
    // address and AS): n1 peers back with n2 and n3 (IPv4 only), not n4.
    let mut snap = Snapshot::new();
    for (n, a, rack) in [
        ("n1", "10.0.0.1", "x"),
        ("n2", "10.0.0.2", "a"),
        ("n3", "10.0.0.3", "a"),
        ("n4", "10.0.0.4", "b"),
    ] {
        let (k, v) = node(n, a, json!({"labels":{"rack":rack}}));
        put(&mut snap, "n1", &k, v);
    }
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgpconfigurations/default"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"nodeToNodeMeshEnabled":false}}),
    );
    let peer = |asn: u32| {
        json!({"kind":"BGPPeer","metadata":{"name":"to-n1"},
               "spec":{"nodeSelector":"rack == 'a'","peerIP":"10.0.0.1","asNumber":asn,
                       "keepaliveTime":"7s"}})
    };
    put(&mut snap, "n1", &format!("{R}/bgppeers/to-n1"), peer(64512));
    let n1 = derive(&snap, "n1");
    assert_eq!(
        n1.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("10.0.0.2"), ip("10.0.0.3")]
    );
    let back = &n1.peers[&ip("10.0.0.2")];
    assert!(matches!(&back.source, PeerSource::Reverse { node, .. } if node == "n2"));
    assert_eq!(back.keepalive, Some(std::time::Duration::from_secs(7)));
    assert_eq!(back.asn, 64512);
    // The two ends agree on which side connects.
    let n2 = derive(&snap, "n2");
    assert_ne!(n2.peers[&ip("10.0.0.1")].passive, back.passive);
    // n4 is not selected; it has no peers at all.
    assert!(derive(&snap, "n4").peers.is_empty());
    // Another AS in the BGPPeer: it names some other router, not n1.
    put(&mut snap, "n1", &format!("{R}/bgppeers/to-n1"), peer(65000));
    assert!(derive(&snap, "n1").peers.is_empty());
}

#[test]
fn reverse_peerings_follow_nodes_incrementally_and_lose_to_forward_ones() {
    let me = "rr";
    let mut snap = Snapshot::new();
    let mut d = BgpDeriver::new(me);
    d.reset(&snap);
    let (k, v) = node(
        "rr",
        "10.0.0.1",
        json!({"bgp":{"routeReflectorClusterID":"1.0.0.1"},"labels":{"rr":"yes"}}),
    );
    let deltas = put(&mut snap, me, &k, v);
    d.apply(&snap, &deltas);
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgppeers/to-rr"),
        json!({"kind":"BGPPeer","metadata":{"name":"to-rr"},
               "spec":{"nodeSelector":"!has(rr)","peerSelector":"has(rr)"}}),
    );
    assert!(d.apply(&snap, &deltas).peers.is_empty());
    // A client joining: exactly its peering appears, as a reflector client.
    let (k, v) = node("c1", "10.0.0.2", json!({}));
    let deltas = put(&mut snap, me, &k, v);
    let ch = d.apply(&snap, &deltas);
    assert_eq!(
        ch.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("10.0.0.2")]
    );
    assert!(
        ch.peers[&ip("10.0.0.2")]
            .as_ref()
            .unwrap()
            .route_reflector_client
    );
    // A forward BGPPeer from the reflector to the same node wins.
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgppeers/rr-c1"),
        json!({"kind":"BGPPeer","metadata":{"name":"rr-c1"},
               "spec":{"node":"rr","peerIP":"10.0.0.2","asNumber":64512,"ttlSecurity":1}}),
    );
    let ch = d.apply(&snap, &deltas);
    let forward = ch.peers[&ip("10.0.0.2")].as_ref().unwrap();
    assert!(matches!(forward.source, PeerSource::Node { .. }));
    assert_eq!(forward.ttl_security, Some(1));
    let deltas: Vec<_> = snap
        .set(ItemKey::BgpPeer("rr-c1".into()), None)
        .into_iter()
        .collect();
    let ch = d.apply(&snap, &deltas);
    assert!(matches!(
        ch.peers[&ip("10.0.0.2")].as_ref().unwrap().source,
        PeerSource::Reverse { .. }
    ));
    // The client relabelled as a reflector: no longer selected, so gone.
    let (k, v) = node("c1", "10.0.0.2", json!({"labels":{"rr":"yes"}}));
    let deltas = put(&mut snap, me, &k, v);
    let ch = d.apply(&snap, &deltas);
    assert_eq!(ch.peers[&ip("10.0.0.2")], None);
    assert_eq!(d.view(), &derive(&snap, me));
}

#[test]
fn reachable_by_is_the_forward_peer_ip_peerings_gateway_of_its_family() {
    let me = "n1";
    let mut snap = five_nodes(me);
    let mut d = BgpDeriver::new(me);
    d.reset(&snap);
    let peer =
        |name: &str, spec: Value| json!({"kind":"BGPPeer","metadata":{"name":name},"spec":spec});
    let mut apply = |snap: &mut Snapshot, name: &str, spec: Value| {
        let deltas = put(snap, me, &format!("{R}/bgppeers/{name}"), peer(name, spec));
        d.apply(snap, &deltas);
        (d.view().clone(), d.problems())
    };
    let (v, problems) = apply(
        &mut snap,
        "far",
        json!({"peerIP":"10.9.0.2","asNumber":65000,"reachableBy":"10.0.0.254"}),
    );
    assert_eq!(
        v.peers[&ip("10.9.0.2")].reachable_by,
        Some(ip("10.0.0.254"))
    );
    assert!(problems.is_empty(), "{problems:?}");
    // Refused out loud, no gateway: not an address, the other family.
    for gw in ["router", "fd00::fe"] {
        let (v, problems) = apply(
            &mut snap,
            "far",
            json!({"peerIP":"10.9.0.2","asNumber":65000,"reachableBy":gw}),
        );
        assert_eq!(v.peers[&ip("10.9.0.2")].reachable_by, None, "{gw}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("BGPPeer far: reachableBy")
                    && p.contains("no route to the peer is written")),
            "{gw}: {problems:?}"
        );
    }
    // Without peerIP (a selector) there is no one address to route to.
    let (v, problems) = apply(
        &mut snap,
        "sel",
        json!({"peerSelector":"all()","reachableBy":"10.0.0.254"}),
    );
    assert!(v.peers.values().all(|p| p.reachable_by.is_none()));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("BGPPeer sel") && p.contains("needs peerIP")),
        "{problems:?}"
    );
    // The node a peerIP names peers back without the other end's gateway.
    let back = derive(&snap_with_peer_to_n1(), "n1");
    assert!(back.peers.values().all(|p| p.reachable_by.is_none()));
}

fn snap_with_peer_to_n1() -> Snapshot {
    let mut snap = five_nodes("n1");
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgppeers/to-n1"),
        json!({"kind":"BGPPeer","metadata":{"name":"to-n1"},
               "spec":{"node":"n2","peerIP":"10.0.0.1","asNumber":64512,"reachableBy":"10.0.0.254"}}),
    );
    let v = derive(&snap, "n1");
    assert!(matches!(
        v.peers[&ip("10.0.0.2")].source,
        PeerSource::Reverse { .. } | PeerSource::Mesh { .. }
    ));
    snap
}

#[test]
fn service_ranges_of_the_global_config_are_advertised_by_every_node() {
    let me = "n1";
    let mut snap = five_nodes(me);
    let mut d = BgpDeriver::new(me);
    d.reset(&snap);
    let config = |name: &str, spec: Value| json!({"kind":"BGPConfiguration","metadata":{"name":name},"spec":spec});
    // A node's own BGPConfiguration does not carry them (as in Calico).
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgpconfigurations/node.n1"),
        config(
            "node.n1",
            json!({"serviceClusterIPs":[{"cidr":"10.200.0.0/16"}]}),
        ),
    );
    d.apply(&snap, &deltas);
    assert!(d.view().prefixes.is_empty(), "{:?}", d.view().prefixes);
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgpconfigurations/default"),
        config(
            "default",
            json!({"serviceClusterIPs":[{"cidr":"10.96.0.0/12"}],
                   "serviceExternalIPs":[{"cidr":"203.0.113.0/24"},{"cidr":"fd00:96::/112"}],
                   "serviceLoadBalancerIPs":[{"cidr":"198.51.100.0/24"},{"cidr":"10.96.0.0/12"},{"cidr":"bad"}],
                   "communities":[{"name":"svc","value":"65001:300"}],
                   "prefixAdvertisements":[{"cidr":"203.0.0.0/8","communities":["svc"]}]}),
        ),
    );
    let ch = d.apply(&snap, &deltas);
    let got: Vec<String> = ch.prefixes.keys().map(|p| p.to_string()).collect();
    assert_eq!(
        got,
        [
            "10.96.0.0/12",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "fd00:96::/112"
        ]
    );
    let v = d.view();
    assert!(
        v.prefixes
            .values()
            .all(|p| p.origin == PrefixOrigin::Service)
    );
    assert_eq!(
        v.prefixes[&"203.0.113.0/24".parse().unwrap()].communities,
        vec![Community::Standard(65001, 300)]
    );
    assert!(
        v.prefixes[&"10.96.0.0/12".parse().unwrap()]
            .communities
            .is_empty()
    );
    assert!(
        d.problems()
            .iter()
            .any(|p| p.contains("serviceLoadBalancerIPs") && p.contains("\"bad\"")),
        "{:?}",
        d.problems()
    );
    // A node labelled to stay out of load balancing advertises none.
    let (k, n1) = node(
        "n1",
        "10.0.0.1",
        json!({"labels":{"node.kubernetes.io/exclude-from-external-load-balancers":"true"}}),
    );
    let deltas = put(&mut snap, me, &k, n1);
    let ch = d.apply(&snap, &deltas);
    assert_eq!(ch.prefixes.len(), 4);
    assert!(ch.prefixes.values().all(Option::is_none));
    assert_eq!(d.view(), &derive(&snap, me));
    // Removed from the config (and the label gone): withdrawn live.
    let (k, n1) = node("n1", "10.0.0.1", json!({}));
    let deltas = put(&mut snap, me, &k, n1);
    assert_eq!(d.apply(&snap, &deltas).prefixes.len(), 4);
    let deltas = put(
        &mut snap,
        me,
        &format!("{R}/bgpconfigurations/default"),
        config(
            "default",
            json!({"serviceClusterIPs":[{"cidr":"10.96.0.0/12"}]}),
        ),
    );
    let ch = d.apply(&snap, &deltas);
    assert_eq!(ch.prefixes.len(), 3);
    assert!(ch.prefixes.values().all(Option::is_none));
    assert_eq!(
        d.view()
            .prefixes
            .keys()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["10.96.0.0/12"]
    );
}

/// Calico's confd: `nextHopMode` as given; the older `keepOriginalNextHop`
/// means `next hop keep` towards eBGP peers only; restart times from
/// `maxRestartTime` and, for the mesh, `nodeMeshMaxRestartTime`; the bind
/// mode of the node's BGPConfiguration, else the global one.
#[test]
fn next_hop_modes_restart_times_and_bind_mode_as_calico() {
    use manul_datastore::resources::NextHopMode;
    use std::time::Duration;
    let mut snap = five_nodes("n1");
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgpconfigurations/default"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"default"},
               "spec":{"nodeMeshMaxRestartTime":"45s","bindMode":"NodeIP"}}),
    );
    let peer = |name: &str, ip: &str, spec: Value| {
        let mut s = json!({"peerIP": ip});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        (
            format!("{R}/bgppeers/{name}"),
            json!({"kind":"BGPPeer","metadata":{"name":name},"spec":s}),
        )
    };
    for (name, ip, spec) in [
        (
            "ebgp-keep",
            "10.9.0.1",
            json!({"asNumber":65100,"keepOriginalNextHop":true}),
        ),
        (
            "ibgp-keep",
            "10.9.0.2",
            json!({"asNumber":64512,"keepOriginalNextHop":true}),
        ),
        (
            "mode-keep",
            "10.9.0.3",
            json!({"asNumber":64512,"nextHopMode":"Keep"}),
        ),
        (
            "mode-self",
            "10.9.0.4",
            json!({"asNumber":65100,"nextHopMode":"Self","maxRestartTime":"2m30s"}),
        ),
        ("auto", "10.9.0.5", json!({"asNumber":65100})),
    ] {
        let (k, v) = peer(name, ip, spec);
        put(&mut snap, "n1", &k, v);
    }
    let v = derive(&snap, "n1");
    let nh = |a: &str| v.peers[&ip(a)].next_hop.clone();
    assert_eq!(nh("10.9.0.1"), NextHopMode::Keep);
    assert_eq!(
        nh("10.9.0.2"),
        NextHopMode::Auto,
        "keepOriginalNextHop is eBGP only"
    );
    assert_eq!(nh("10.9.0.3"), NextHopMode::Keep);
    assert_eq!(nh("10.9.0.4"), NextHopMode::SelfHop);
    assert_eq!(nh("10.9.0.5"), NextHopMode::Auto);
    assert_eq!(
        v.peers[&ip("10.9.0.4")].max_restart_time,
        Some(Duration::from_secs(150))
    );
    assert_eq!(v.peers[&ip("10.9.0.5")].max_restart_time, None);
    assert_eq!(
        v.peers[&ip("10.0.0.2")].max_restart_time,
        Some(Duration::from_secs(45)),
        "a mesh peer"
    );
    assert!(v.globals.bind_node_ip);
    // The node's own BGPConfiguration wins.
    put(
        &mut snap,
        "n1",
        &format!("{R}/bgpconfigurations/node.n1"),
        json!({"kind":"BGPConfiguration","metadata":{"name":"node.n1"},
               "spec":{"bindMode":"None"}}),
    );
    assert!(!derive(&snap, "n1").globals.bind_node_ip);
}
