//! Calico-format fixtures parse and re-serialize to the same JSON, unknown
//! fields included; defaults come from accessors, not the object.

use manul_datastore::ipam::{
    AffinityState, AllocationBlock, BlockAffinity, IpamConfig, IpamHandle,
};
use manul_datastore::resources::{
    BgpConfiguration, BgpFilter, BgpPeer, IpPool, IpipMode, NextHopMode, Node, VxlanMode,
    WorkloadEndpoint,
};
use manul_datastore::{AsNumber, DecodeError, Resource, ResourceSpec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/{name}",
        manul_tests::package_dir!().display()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses `name` as `T`, re-serializes, and compares JSON values.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let text = fixture(name);
    let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again: Value = serde_json::to_value(&parsed).unwrap();
    let original: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again, original, "{name} changed on rewrite");
    parsed
}

fn resource<S: ResourceSpec>(name: &str) -> Resource<S> {
    let r: Resource<S> = round_trip(name);
    let via_api = Resource::<S>::from_json(fixture(name).as_bytes()).unwrap();
    let bytes = via_api.to_json();
    let original: Value = serde_json::from_str(&fixture(name)).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), original);
    r
}

#[test]
fn block_with_allocations() {
    let b: AllocationBlock = round_trip("block_v4.json");
    assert_eq!(b.cidr.to_string(), "10.65.0.0/26");
    assert_eq!(b.host(), Some("node-1"));
    assert_eq!(b.allocations.len(), 64);
    assert_eq!(b.allocations[2], Some(1));
    assert_eq!(b.unallocated.last(), Some(&1));
    assert_eq!(b.attributes[1].secondary["pod"], "nginx-7c5ddbdf54-x2x7q");
    assert_eq!(
        b.attributes[0].handle_id.as_deref(),
        Some("ipip-tunnel-addr-node-1")
    );
    assert_eq!(b.sequence_number, 7);
    assert_eq!(b.sequence_number_for(2), Some(6));
    assert_eq!(b.sequence_number_for(1), None);
    // Older Calico's strictAffinity and an unknown field survive.
    assert!(b.extra.contains_key("strictAffinity"));
    assert!(b.extra.contains_key("futureField"));
}

#[test]
fn free_v6_block() {
    let b: AllocationBlock = round_trip("block_v6_free.json");
    assert_eq!(b.cidr.to_string(), "fd00:10:244:1::/122");
    assert_eq!(b.host(), None);
    assert!(b.attributes.is_empty());
}

#[test]
fn block_nulls_read_as_empty() {
    let b: AllocationBlock = serde_json::from_str(
        r#"{"cidr":"10.0.0.0/30","affinity":"host:n","allocations":[null,null,null,null],
            "unallocated":[0,1,2,3],"attributes":null,"sequenceNumber":0,
            "sequenceNumberForAllocation":null,"deleted":false}"#,
    )
    .unwrap();
    assert!(b.attributes.is_empty() && b.sequence_number_for_allocation.is_empty());
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["attributes"], serde_json::json!([]));
    assert_eq!(v["affinity"], "host:n");
    // The deprecated hostAffinity is read when affinity is null.
    let b: AllocationBlock = serde_json::from_str(
        r#"{"cidr":"10.0.0.0/30","affinity":null,"hostAffinity":"old","allocations":[],
            "unallocated":[],"attributes":[],"sequenceNumber":0,"deleted":false}"#,
    )
    .unwrap();
    assert_eq!(b.host(), Some("old"));
}

#[test]
fn affinity_handle_config() {
    let a: BlockAffinity = round_trip("affinity.json");
    assert_eq!(a.state, AffinityState::Confirmed);
    for (s, want) in [
        ("pending", AffinityState::Pending),
        ("pendingDeletion", AffinityState::PendingDeletion),
    ] {
        let a: BlockAffinity =
            serde_json::from_str(&format!(r#"{{"state":"{s}","deleted":true}}"#)).unwrap();
        assert_eq!((a.state, a.deleted), (want, true));
    }
    let h: IpamHandle = round_trip("handle.json");
    assert_eq!(h.block["10.65.0.0/26"], 1);
    assert!(h.extra.contains_key("note"));
    let c: IpamConfig = round_trip("ipam_config.json");
    assert!(!c.strict_affinity() && c.auto_allocate_blocks());
    assert_eq!(c.max_blocks_per_host(), None);
    // Newer Calico omits zero fields; that form round-trips too.
    let c: IpamConfig =
        serde_json::from_str(r#"{"auto_allocate_blocks":true,"maxBlocksPerHost":4}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&c).unwrap(),
        r#"{"auto_allocate_blocks":true,"maxBlocksPerHost":4}"#
    );
    assert_eq!(c.max_blocks_per_host(), Some(4));
    let empty: IpamConfig = serde_json::from_str("{}").unwrap();
    assert!(
        !empty.auto_allocate_blocks(),
        "a stored config without the field reads false, as in Go"
    );
    assert!(IpamConfig::default().auto_allocate_blocks());
}

#[test]
fn ippool() {
    let p: IpPool = resource("ippool.json");
    assert_eq!(p.name(), "default-ipv4-ippool");
    assert_eq!(p.spec.ipip_mode(), IpipMode::Always);
    assert_eq!(p.spec.block_size(), 26);
    assert!(p.metadata.extra.contains_key("generation"));
    assert!(p.spec.extra.contains_key("futureSpecField"));
}

#[test]
fn ippool_defaults_are_not_filled_in() {
    let mut p: IpPool = resource("ippool_v6_minimal.json");
    assert_eq!(p.spec.block_size, 0);
    assert_eq!(p.spec.block_size(), 122);
    assert_eq!(p.spec.node_selector(), "all()");
    assert_eq!(p.spec.ipip_mode(), IpipMode::Never);
    assert_eq!(p.spec.vxlan_mode(), VxlanMode::Never);
    assert_eq!(p.spec.allowed_uses().len(), 2);
    let v4: IpPool = serde_json::from_str(
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16"}}"#,
    )
    .unwrap();
    assert_eq!(v4.spec.block_size(), 26);
    // creationTimestamp is always written, as null when unset (Go's metav1.Time).
    assert_eq!(
        serde_json::to_value(&v4).unwrap()["metadata"]["creationTimestamp"],
        Value::Null
    );
    p.spec.fill_defaults();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["spec"]["blockSize"], 122);
    assert_eq!(v["spec"]["nodeSelector"], "all()");
    assert_eq!(v["spec"]["ipipMode"], "Never");
    assert_eq!(
        v["spec"]["allowedUses"],
        serde_json::json!(["Workload", "Tunnel"])
    );
}

#[test]
fn bgp_configuration() {
    let c: BgpConfiguration = resource("bgpconfiguration.json");
    assert!(!c.spec.node_to_node_mesh_enabled());
    assert_eq!(c.spec.as_number, Some(AsNumber(64513)));
    assert_eq!(c.spec.listen_port(), 178);
    assert!(c.spec.extra.contains_key("localWorkloadPeeringIPV4"));
    let bare: BgpConfiguration = serde_json::from_str(
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{}}"#,
    )
    .unwrap();
    assert!(bare.spec.node_to_node_mesh_enabled());
    assert_eq!(bare.spec.as_number, None, "asNumber is not filled in");
    assert_eq!(bare.spec.as_number_or_default(), AsNumber(64512));
    assert_eq!(bare.spec.listen_port(), 179);
    assert_eq!(
        serde_json::to_value(&bare).unwrap()["spec"],
        serde_json::json!({})
    );
}

#[test]
fn bgp_peer_and_filter() {
    let p: BgpPeer = resource("bgppeer.json");
    assert_eq!(p.spec.next_hop_mode(), NextHopMode::SelfHop);
    assert_eq!(p.spec.ttl_security, Some(1));
    assert_eq!(
        p.spec
            .password
            .as_ref()
            .and_then(|p| p.secret_key_ref.as_ref())
            .unwrap()
            .key,
        "tor"
    );
    let f: BgpFilter = resource("bgpfilter.json");
    assert_eq!(f.spec.export_v4.len(), 2);
    assert!(f.spec.import_v4[0].extra.contains_key("priority"));
}

#[test]
fn asdot_is_read_and_written_as_a_number() {
    let p: BgpPeer = serde_json::from_str(
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"x"},"spec":{"peerIP":"192.0.2.1","asNumber":"1.10"}}"#,
    )
    .unwrap();
    assert_eq!(p.spec.as_number, Some(AsNumber(65546)));
    assert_eq!(serde_json::to_value(&p).unwrap()["spec"]["asNumber"], 65546);
}

#[test]
fn node_and_workload() {
    let n: Node = resource("node.json");
    let bgp = n.spec.bgp.as_ref().unwrap();
    assert_eq!(bgp.router_id().unwrap().unwrap().to_string(), "10.0.0.1");
    assert_eq!(bgp.ipv4_net().unwrap().unwrap().prefix_len(), 24);
    assert!(bgp.route_reflector_cluster_id().unwrap().is_some());
    assert!(n.extra.contains_key("status"));
    assert!(n.spec.extra.contains_key("wireguard"));
    let w: WorkloadEndpoint = resource("workloadendpoint.json");
    assert_eq!(w.metadata.namespace, "default");
    assert_eq!(w.spec.ip_networks[1].to_string(), "fd00:10:244:1::2/128");
    assert!(w.spec.extra.contains_key("ports"));
}

#[test]
fn resource_version_is_read_but_never_written() {
    let p: IpPool = serde_json::from_str(
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p","resourceVersion":"42"},"spec":{"cidr":"10.0.0.0/16"}}"#,
    )
    .unwrap();
    assert_eq!(p.metadata.resource_version, "42");
    assert!(
        !String::from_utf8(p.to_json())
            .unwrap()
            .contains("resourceVersion")
    );
}

#[test]
fn decode_errors_do_not_panic() {
    assert!(matches!(
        IpPool::from_json(fixture("node.json").as_bytes()),
        Err(DecodeError::Json { .. } | DecodeError::WrongKind { .. })
    ));
    let wrong = br#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{},"spec":{"cidr":"10.0.0.0/8"}}"#;
    assert!(matches!(
        IpPool::from_json(wrong),
        Err(DecodeError::WrongKind { .. })
    ));
    for junk in [
        &b""[..],
        b"null",
        b"[]",
        b"{",
        b"{\"spec\":{\"cidr\":\"300.0.0.0/8\"}}",
        &[0xff, 0xfe],
    ] {
        assert!(IpPool::from_json(junk).is_err());
        assert!(serde_json::from_slice::<AllocationBlock>(junk).is_err());
    }
    assert!(serde_json::from_str::<AllocationBlock>(
        r#"{"cidr":"10.0.0.0/30","allocations":[-1],"unallocated":[],"attributes":[],"sequenceNumber":0,"deleted":false}"#
    )
    .is_err());
}

#[test]
fn unknown_enum_values_survive() {
    let p: IpPool = serde_json::from_str(
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","ipipMode":"Sometimes"}}"#,
    )
    .unwrap();
    assert_eq!(p.spec.ipip_mode(), IpipMode::Other("Sometimes".into()));
    assert_eq!(
        serde_json::to_value(&p).unwrap()["spec"]["ipipMode"],
        "Sometimes"
    );
}

/// Each kind manul stores as raw JSON, in a fixture as calicoctl writes
/// it: decodes, re-encodes to the same JSON (fields manul does not know
/// included), and passes Calico's validation.
#[test]
fn raw_kinds_read_back_unchanged_and_validate() {
    use manul_datastore::ResourceKind;
    use manul_datastore::resources::{decode_raw, encode_raw};
    use manul_datastore::validate::validate_raw;
    for (file, kind) in [
        ("networkpolicy.json", ResourceKind::NetworkPolicy),
        (
            "globalnetworkpolicy.json",
            ResourceKind::GlobalNetworkPolicy,
        ),
        ("networkset.json", ResourceKind::NetworkSet),
        ("globalnetworkset.json", ResourceKind::GlobalNetworkSet),
        ("hostendpoint.json", ResourceKind::HostEndpoint),
        ("profile.json", ResourceKind::Profile),
        ("felixconfiguration.json", ResourceKind::FelixConfiguration),
    ] {
        assert!(!kind.modelled(), "{kind}");
        let text = fixture(file);
        let r = decode_raw(kind, text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let original: Value = serde_json::from_str(&text).unwrap();
        let again: Value = serde_json::from_slice(&encode_raw(&r)).unwrap();
        assert_eq!(again, original, "{file} changed on rewrite");
        validate_raw(kind, &r).unwrap_or_else(|e| panic!("{file}: {e}"));
        // The kind is checked.
        let other = if kind == ResourceKind::Profile {
            ResourceKind::HostEndpoint
        } else {
            ResourceKind::Profile
        };
        assert!(matches!(
            decode_raw(other, text.as_bytes()),
            Err(DecodeError::WrongKind { .. })
        ));
    }
}
