//! Every validation rule, failing and passing.

use manul_datastore::resources::{
    BgpConfiguration, BgpConfigurationSpec, BgpPeer, BgpPeerSpec, Community, IpPool, IpPoolSpec,
    IpipMode, Node, NodeBgpSpec, NodeSpec, PrefixAdvertisement, VxlanMode,
};
use manul_datastore::validate::{
    Problem, ValidationErrors, overlapping_pools, validate_bgp_configuration, validate_bgp_peer,
    validate_ip_pool, validate_node,
};
use manul_datastore::{AsNumber, Resource};

fn pool(name: &str, cidr: &str) -> IpPool {
    Resource::new(name, IpPoolSpec::new(cidr.parse().unwrap()))
}

fn problems(r: Result<(), ValidationErrors>) -> Vec<(String, Problem)> {
    r.err()
        .map(|e| e.0.into_iter().map(|e| (e.field, e.problem)).collect())
        .unwrap_or_default()
}

#[test]
fn pool_cidr_must_be_masked() {
    let e = validate_ip_pool(&pool("p", "10.0.0.1/16")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPPool \"p\": spec.cidr: 10.0.0.1/16 has host bits set; the network is 10.0.0.0/16"
    );
    assert!(validate_ip_pool(&pool("p", "10.0.0.0/16")).is_ok());
    assert!(validate_ip_pool(&pool("p", "fd00::1/48")).is_err());
    assert!(validate_ip_pool(&pool("p", "fd00::/48")).is_ok());
}

#[test]
fn block_size_range() {
    for (cidr, size, ok) in [
        ("10.0.0.0/16", 19, false),
        ("10.0.0.0/16", 20, true),
        ("10.0.0.0/16", 32, true),
        ("10.0.0.0/16", 33, false),
        ("fd00::/48", 115, false),
        ("fd00::/48", 116, true),
        ("fd00::/48", 128, true),
        ("fd00::/48", 129, false),
        ("fd00::/48", 26, false),
    ] {
        let mut p = pool("p", cidr);
        p.spec.block_size = size;
        let r = validate_ip_pool(&p);
        assert_eq!(r.is_ok(), ok, "{cidr} /{size}: {r:?}");
        if !ok {
            assert!(
                matches!(problems(r)[0], (ref f, Problem::BlockSizeRange { .. }) if f == "spec.blockSize")
            );
        }
    }
}

#[test]
fn pool_must_hold_a_block() {
    let mut p = pool("small", "10.0.0.0/28");
    let e = problems(validate_ip_pool(&p));
    assert_eq!(
        e,
        vec![(
            "spec.cidr".into(),
            Problem::PoolSmallerThanBlock {
                pool_len: 28,
                block_size: 26
            }
        )]
    );
    p.spec.block_size = 28;
    assert!(validate_ip_pool(&p).is_ok());
    p.spec.block_size = 30;
    assert!(validate_ip_pool(&p).is_ok());
    assert!(validate_ip_pool(&pool("v6", "fd00::/123")).is_err());
    assert!(validate_ip_pool(&pool("v6", "fd00::/122")).is_ok());
}

#[test]
fn no_ipip_on_ipv6() {
    let mut p = pool("v6", "fd00::/48");
    p.spec.ipip_mode = Some(IpipMode::Always);
    assert_eq!(
        problems(validate_ip_pool(&p)),
        vec![("spec.ipipMode".into(), Problem::IpipOnIpv6)]
    );
    p.spec.ipip_mode = Some(IpipMode::Never);
    p.spec.vxlan_mode = Some(VxlanMode::Always);
    assert!(validate_ip_pool(&p).is_ok());
}

#[test]
fn not_both_encapsulations() {
    let mut p = pool("p", "10.0.0.0/16");
    p.spec.ipip_mode = Some(IpipMode::CrossSubnet);
    p.spec.vxlan_mode = Some(VxlanMode::Always);
    let e = validate_ip_pool(&p).unwrap_err();
    assert!(e.has("spec.vxlanMode"), "{e}");
    p.spec.vxlan_mode = Some(VxlanMode::Never);
    assert!(validate_ip_pool(&p).is_ok());
    p.spec.ipip_mode = Some(IpipMode::Never);
    p.spec.vxlan_mode = Some(VxlanMode::CrossSubnet);
    assert!(validate_ip_pool(&p).is_ok());
}

#[test]
fn unknown_modes_and_bad_selectors() {
    let mut p = pool("p", "10.0.0.0/16");
    p.spec.ipip_mode = Some(IpipMode::Other("always".into()));
    p.spec.node_selector = "rack == ".into();
    let e = validate_ip_pool(&p).unwrap_err();
    assert!(e.has("spec.ipipMode") && e.has("spec.nodeSelector"), "{e}");
    p.spec.ipip_mode = None;
    p.spec.node_selector = "rack == 'a'".into();
    assert!(validate_ip_pool(&p).is_ok());
}

#[test]
fn overlapping() {
    let a = pool("a", "10.0.0.0/16");
    let b = pool("b", "10.0.128.0/24");
    let c = pool("c", "10.1.0.0/16");
    let d = pool("d", "fd00::/48");
    assert!(overlapping_pools(&[a.clone(), c.clone(), d.clone()]).is_ok());
    let e = overlapping_pools(&[a.clone(), c, b, d]).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].object, "IPPool \"b\"");
    assert!(
        e.to_string()
            .contains("overlaps IPPool \"a\" (10.0.0.0/16)"),
        "{e}"
    );
    let same = pool("same", "10.0.0.0/16");
    assert!(overlapping_pools(&[a, same]).is_err());
}

fn peer(spec: BgpPeerSpec) -> BgpPeer {
    Resource::new("peer", spec)
}

fn base_peer() -> BgpPeerSpec {
    BgpPeerSpec {
        peer_ip: "192.0.2.1".into(),
        as_number: Some(AsNumber(65001)),
        ..Default::default()
    }
}

#[test]
fn as_numbers() {
    assert!(validate_bgp_peer(&peer(base_peer())).is_ok());
    let zero = BgpPeerSpec {
        as_number: Some(AsNumber(0)),
        ..base_peer()
    };
    assert_eq!(
        problems(validate_bgp_peer(&peer(zero))),
        vec![("spec.asNumber".into(), Problem::AsNumberZero)]
    );
    let max = BgpPeerSpec {
        as_number: Some(AsNumber(u32::MAX)),
        ..base_peer()
    };
    assert!(validate_bgp_peer(&peer(max)).is_ok());
    let cfg = |asn| {
        Resource::new(
            "default",
            BgpConfigurationSpec {
                as_number: asn,
                ..Default::default()
            },
        )
    };
    assert!(validate_bgp_configuration(&cfg(Some(AsNumber(0)))).is_err());
    assert!(validate_bgp_configuration(&cfg(Some(AsNumber(64512)))).is_ok());
    assert!(validate_bgp_configuration(&cfg(None)).is_ok());
    let node = |asn| -> Node {
        Resource::new(
            "n",
            NodeSpec {
                bgp: Some(NodeBgpSpec {
                    as_number: asn,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    };
    assert!(
        validate_node(&node(Some(AsNumber(0))))
            .unwrap_err()
            .has("spec.bgp.asNumber")
    );
    assert!(validate_node(&node(Some(AsNumber(1)))).is_ok());
}

#[test]
fn peer_exclusive_fields() {
    let both_nodes = BgpPeerSpec {
        node: "n1".into(),
        node_selector: "all()".into(),
        ..base_peer()
    };
    let e = validate_bgp_peer(&peer(both_nodes)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "BGPPeer \"peer\": spec.nodeSelector: cannot be set together with spec.node"
    );
    assert!(
        validate_bgp_peer(&peer(BgpPeerSpec {
            node: "n1".into(),
            ..base_peer()
        }))
        .is_ok()
    );
    assert!(
        validate_bgp_peer(&peer(BgpPeerSpec {
            node_selector: "has(rr)".into(),
            ..base_peer()
        }))
        .is_ok()
    );

    let both_peers = BgpPeerSpec {
        peer_selector: "has(rr)".into(),
        as_number: None,
        ..base_peer()
    };
    assert!(
        validate_bgp_peer(&peer(both_peers))
            .unwrap_err()
            .has("spec.peerSelector")
    );
    let selector_only = BgpPeerSpec {
        peer_selector: "has(rr)".into(),
        peer_ip: String::new(),
        as_number: None,
        ..base_peer()
    };
    assert!(validate_bgp_peer(&peer(selector_only)).is_ok());
    let neither = BgpPeerSpec {
        peer_ip: String::new(),
        ..base_peer()
    };
    assert!(
        validate_bgp_peer(&peer(neither))
            .unwrap_err()
            .has("spec.peerIP")
    );
}

#[test]
fn peer_ip_forms() {
    for ok in [
        "192.0.2.1",
        "192.0.2.1:1179",
        "2001:db8::1",
        "[2001:db8::1]:179",
    ] {
        assert!(
            validate_bgp_peer(&peer(BgpPeerSpec {
                peer_ip: ok.into(),
                ..base_peer()
            }))
            .is_ok(),
            "{ok}"
        );
    }
    for bad in [
        "192.0.2.1:",
        "2001:db8::1:179x",
        "[2001:db8::1]",
        "10.0.0.0/8",
        "peer.example.com",
    ] {
        let e = validate_bgp_peer(&peer(BgpPeerSpec {
            peer_ip: bad.into(),
            ..base_peer()
        }))
        .unwrap_err();
        assert!(e.has("spec.peerIP"), "{bad}: {e}");
    }
}

#[test]
fn reachable_by_is_an_address_of_the_peers_family_with_peer_ip() {
    let with = |peer_ip: &str, selector: &str, gw: &str| {
        validate_bgp_peer(&peer(BgpPeerSpec {
            peer_ip: peer_ip.into(),
            peer_selector: selector.into(),
            as_number: (!peer_ip.is_empty()).then_some(AsNumber(65001)),
            reachable_by: gw.into(),
            ..Default::default()
        }))
    };
    assert!(with("192.0.2.1", "", "10.0.0.254").is_ok());
    assert!(with("[2001:db8::1]:179", "", "fd00::fe").is_ok());
    for (ip, selector, gw) in [
        ("192.0.2.1", "", "gateway"),
        ("192.0.2.1", "", "10.0.0.0/24"),
        ("192.0.2.1:1179", "", "fd00::fe"),
        ("2001:db8::1", "", "10.0.0.254"),
        ("", "rr == 'true'", "10.0.0.254"),
    ] {
        let e = with(ip, selector, gw).unwrap_err();
        assert!(e.has("spec.reachableBy"), "{ip} {gw}: {e}");
    }
}

#[test]
fn communities() {
    let cfg = |value: &str, adv: Vec<&str>| -> BgpConfiguration {
        Resource::new(
            "default",
            BgpConfigurationSpec {
                communities: vec![Community {
                    name: "c1".into(),
                    value: value.into(),
                    ..Default::default()
                }],
                prefix_advertisements: vec![PrefixAdvertisement {
                    cidr: "10.0.0.0/16".into(),
                    communities: adv.into_iter().map(String::from).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
    };
    assert!(validate_bgp_configuration(&cfg("65000:100", vec!["c1", "1:2", "1:2:3"])).is_ok());
    assert!(validate_bgp_configuration(&cfg("4294967295:0:1", vec![])).is_ok());
    let e = validate_bgp_configuration(&cfg("65536:1", vec![])).unwrap_err();
    assert!(e.has("spec.communities[0].value"), "{e}");
    assert!(e.to_string().contains("65536 is above 65535"), "{e}");
    assert!(validate_bgp_configuration(&cfg("1:2:3:4", vec![])).is_err());
    let e = validate_bgp_configuration(&cfg("1:2", vec!["nope"])).unwrap_err();
    assert!(e.has("spec.prefixAdvertisements[0].communities[0]"), "{e}");
    let e = validate_bgp_configuration(&cfg("1:2", vec!["1:70000"])).unwrap_err();
    assert!(e.has("spec.prefixAdvertisements[0].communities[0]"), "{e}");
}

#[test]
fn node_addresses() {
    let node = |v4: &str, rr: &str| -> Node {
        Resource::new(
            "n",
            NodeSpec {
                bgp: Some(NodeBgpSpec {
                    ipv4_address: v4.into(),
                    route_reflector_cluster_id: rr.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    };
    assert!(validate_node(&node("10.0.0.1/24", "224.0.0.1")).is_ok());
    assert!(validate_node(&node("10.0.0.1", "")).is_ok());
    let e = validate_node(&node("10.0.0.1/33", "x")).unwrap_err();
    assert!(
        e.has("spec.bgp.ipv4Address") && e.has("spec.bgp.routeReflectorClusterID"),
        "{e}"
    );
}

fn filter(spec: serde_json::Value) -> manul_datastore::resources::BgpFilter {
    serde_json::from_value(serde_json::json!({
        "kind": "BGPFilter",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "f"},
        "spec": spec,
    }))
    .unwrap()
}

#[test]
fn bgp_filter_rules() {
    use manul_datastore::validate::validate_bgp_filter;
    let ok = filter(serde_json::json!({
        "importV4": [
            {"action": "Reject", "matchOperator": "Equal", "cidr": "0.0.0.0/0"},
            {"action": "Accept", "matchOperator": "In", "cidr": "10.0.0.0/8",
             "prefixLength": {"min": 16, "max": 24}, "source": "RemotePeers"},
            {"action": "Reject"}
        ],
        "exportV4": [{"action": "Reject", "interface": "*.calico"}],
        "importV6": [{"action": "Accept", "matchOperator": "NotIn", "cidr": "2001:db8::/32", "peerType": "eBGP"}]
    }));
    assert_eq!(problems(validate_bgp_filter(&ok)), vec![]);

    let bad = filter(serde_json::json!({
        "importV4": [
            {"action": "accept", "matchOperator": "Equal", "cidr": "0.0.0.0/0"},
            {"action": "Reject", "cidr": "10.0.0.1/8", "matchOperator": "Around"},
            {"action": "Reject", "cidr": "2001:db8::/32", "matchOperator": "In"},
            {"action": "Reject", "matchOperator": "In", "prefixLength": {"min": 40}},
            {"action": "Reject", "cidr": "10.0.0.0/8"},
            {"action": "Reject", "matchOperator": "In", "cidr": "10.0.0.0/16", "prefixLength": {"max": 8}},
            {"action": "Reject", "communities": {"values": ["65000:1"]}}
        ],
        "exportV4": [{"action": "Reject", "interface": "much-too-long-a-name"}]
    }));
    let fields: Vec<String> = problems(validate_bgp_filter(&bad))
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.exportV4[0].interface",
            "spec.importV4[0].action",
            "spec.importV4[1].matchOperator",
            "spec.importV4[1].cidr",
            "spec.importV4[2].cidr",
            "spec.importV4[3].cidr",
            "spec.importV4[3].cidr",
            "spec.importV4[3].prefixLength.min",
            "spec.importV4[4].matchOperator",
            "spec.importV4[5].prefixLength",
            "spec.importV4[6].communities",
        ]
    );
}
