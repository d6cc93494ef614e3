//! Calico's rules for the kinds manul stores as raw JSON (policies, sets,
//! host endpoints, profiles, FelixConfiguration): each broken rule is
//! refused naming its field, and the fixed object passes.

use manul_datastore::ResourceKind;
use manul_datastore::resources::RawResource;
use manul_datastore::validate::validate_raw;
use serde_json::{Value, json};

fn raw(name: &str, namespace: &str, spec: Value) -> RawResource {
    serde_json::from_value(json!({
        "kind": "", "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec,
    }))
    .unwrap()
}

/// The fields refused for `spec`, with the messages.
fn refused(kind: ResourceKind, spec: Value) -> Vec<(String, String)> {
    let ns = if kind.namespaced() { "ns1" } else { "" };
    match validate_raw(kind, &raw("obj", ns, spec)) {
        Ok(()) => Vec::new(),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.field, e.problem.to_string()))
                .collect()
        }
    }
}

fn fields(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(f, _)| f.as_str()).collect()
}

#[test]
fn names_and_namespaces() {
    let e = validate_raw(
        ResourceKind::GlobalNetworkSet,
        &raw("Bad_Name", "", json!({})),
    )
    .unwrap_err();
    assert_eq!(e.0[0].field, "metadata.name");
    assert!(e.to_string().contains("is not a valid name"), "{e}");
    let e = validate_raw(ResourceKind::NetworkSet, &raw("ok", "a.b", json!({}))).unwrap_err();
    assert_eq!(e.0[0].field, "metadata.namespace");
    assert!(
        validate_raw(
            ResourceKind::NetworkSet,
            &raw("ok.name-1", "ns-1", json!({}))
        )
        .is_ok()
    );
}

#[test]
fn policy_rules() {
    let np = ResourceKind::NetworkPolicy;
    let good = json!({
        "order": 100, "selector": "role == 'db'", "types": ["Ingress"],
        "ingress": [{"action": "Allow", "protocol": "TCP",
                     "source": {"nets": ["10.0.0.0/8"]}, "destination": {"ports": [80, "8000:8080"]}}],
    });
    assert_eq!(refused(np, good), vec![]);
    for (spec, field, says) in [
        (json!({"order": "first"}), "spec.order", "is not a number"),
        (json!({"selector": "role == "}), "spec.selector", ""),
        (
            json!({"types": ["Inbound"]}),
            "spec.types[0]",
            "expected one of Ingress, Egress",
        ),
        (
            json!({"types": ["Ingress", "Ingress"]}),
            "spec.types[1]",
            "listed twice",
        ),
        (
            json!({"types": ["Egress"], "ingress": [{"action": "Allow"}]}),
            "spec.ingress",
            "does not include Ingress",
        ),
        (
            json!({"ingress": [{}]}),
            "spec.ingress[0].action",
            "must be set",
        ),
        (
            json!({"ingress": [{"action": "Accept"}]}),
            "spec.ingress[0].action",
            "expected one of Allow, Deny, Log, Pass",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "TPC"}]}),
            "spec.egress[0].protocol",
            "TCP, UDP, ICMP",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": 256}]}),
            "spec.egress[0].protocol",
            "1-255",
        ),
        (
            json!({"egress": [{"action": "Allow", "destination": {"ports": [80]}}]}),
            "spec.egress[0].destination.ports",
            "TCP, UDP or SCTP",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [70000]}}]}),
            "spec.egress[0].destination.ports[0]",
            "a port 0-65535",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["90:80"]}}]}),
            "spec.egress[0].destination.ports[0]",
            "minimum above its maximum",
        ),
        (
            json!({"egress": [{"action": "Allow", "destination": {"nets": ["10.0.0.0/33"]}}]}),
            "spec.egress[0].destination.nets[0]",
            "an IP address or CIDR",
        ),
        (
            json!({"egress": [{"action": "Allow", "ipVersion": 6, "destination": {"nets": ["10.0.0.0/8"]}}]}),
            "spec.egress[0].destination.nets[0]",
            "ipVersion is 6",
        ),
        (
            json!({"egress": [{"action": "Allow", "ipVersion": 5}]}),
            "spec.egress[0].ipVersion",
            "4 or 6",
        ),
        (
            json!({"egress": [{"action": "Allow", "source": {"selector": "a ="}}]}),
            "spec.egress[0].source.selector",
            "",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "TCP", "icmp": {"type": 8}}]}),
            "spec.egress[0].icmp",
            "ICMP",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "ICMP", "icmp": {"type": 255}}]}),
            "spec.egress[0].icmp.type",
            "0-254",
        ),
        (
            json!({"egress": [{"action": "Allow", "protocol": "ICMP", "icmp": {"code": 1}}]}),
            "spec.egress[0].icmp.code",
            "needs icmp type",
        ),
    ] {
        let got = refused(np, spec.clone());
        assert!(
            got.iter().any(|(f, m)| f == field && m.contains(says)),
            "{spec}: expected {field} ({says}), got {got:?}"
        );
    }
}

#[test]
fn global_policy_exclusions() {
    let gnp = ResourceKind::GlobalNetworkPolicy;
    assert_eq!(
        fields(&refused(gnp, json!({"doNotTrack": true}))),
        ["spec.applyOnForward"]
    );
    assert_eq!(
        fields(&refused(
            gnp,
            json!({"doNotTrack": true, "preDNAT": true, "applyOnForward": true})
        )),
        ["spec.preDNAT"]
    );
    assert_eq!(
        fields(&refused(
            gnp,
            json!({"preDNAT": true, "applyOnForward": true,
                                     "egress": [{"action": "Allow"}]})
        )),
        ["spec.egress"]
    );
    assert_eq!(
        fields(&refused(gnp, json!({"namespaceSelector": "x =="}))),
        ["spec.namespaceSelector"]
    );
    assert_eq!(
        refused(gnp, json!({"preDNAT": true, "applyOnForward": true})),
        vec![]
    );
}

#[test]
fn sets_endpoints_profiles_felix() {
    assert_eq!(
        fields(&refused(
            ResourceKind::GlobalNetworkSet,
            json!({"nets": ["10.0.0.0/8", "nope"]})
        )),
        ["spec.nets[1]"]
    );
    let hep = ResourceKind::HostEndpoint;
    assert_eq!(
        fields(&refused(hep, json!({}))),
        ["spec.node", "spec.interfaceName"]
    );
    assert_eq!(
        fields(&refused(
            hep,
            json!({"node": "n1", "expectedIPs": ["10.0.0.300"]})
        )),
        ["spec.expectedIPs[0]"]
    );
    assert_eq!(
        fields(&refused(
            hep,
            json!({"node": "n1", "interfaceName": "eth0",
            "ports": [{"name": "p", "port": 0, "protocol": "ICMP"}]})
        )),
        ["spec.ports[0].port", "spec.ports[0].protocol"]
    );
    assert_eq!(
        refused(hep, json!({"node": "n1", "interfaceName": "eth0"})),
        vec![]
    );
    assert_eq!(
        fields(&refused(
            ResourceKind::Profile,
            json!({"ingress": [{"action": "Drop"}],
                                                       "labelsToApply": {"a": 1}})
        )),
        ["spec.ingress[0].action", "spec.labelsToApply.a"]
    );
    let felix = ResourceKind::FelixConfiguration;
    assert_eq!(
        fields(&refused(
            felix,
            json!({"logSeverityScreen": "Verbose", "bpfEnabled": "yes",
            "vxlanMTU": -1, "routeRefreshInterval": "90", "natOutgoingAddress": "x"})
        )),
        [
            "spec.logSeverityScreen",
            "spec.bpfEnabled",
            "spec.vxlanMTU",
            "spec.routeRefreshInterval",
            "spec.natOutgoingAddress"
        ]
    );
    assert_eq!(
        refused(
            felix,
            json!({"logSeverityScreen": "Debug", "routeRefreshInterval": "1m30s",
                              "vxlanMTU": 1450, "unknownField": [1]})
        ),
        vec![]
    );
}
