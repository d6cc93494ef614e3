//! apply, get and delete of every kind manul stores without modelling
//! (NetworkPolicy, GlobalNetworkPolicy, NetworkSet, GlobalNetworkSet,
//! HostEndpoint, Profile, FelixConfiguration, IPReservation) through the real binary and a
//! real etcd: calicoctl's JSON lands under Calico's key unchanged, reads
//! back unchanged, and a broken object is refused naming its field.

mod common;

use common::{ctl, fails, fixture, ok, raw};
use manul_tests::{Etcd, Need, require};
use serde_json::Value;

const PREFIX: &str = "/calico/resources/v3/projectcalico.org";

/// Fixture, kind argument, key below [`PREFIX`], name for get/delete, namespace.
const KINDS: [(&str, &str, &str, &str, Option<&str>); 8] = [
    (
        "networkpolicy.json",
        "networkpolicy",
        "networkpolicies/production/default.allow-tcp-6379",
        "default.allow-tcp-6379",
        Some("production"),
    ),
    (
        "globalnetworkpolicy.json",
        "gnp",
        "globalnetworkpolicies/default.deny-blue",
        "default.deny-blue",
        None,
    ),
    (
        "networkset.json",
        "networksets",
        "networksets/staging/external-database",
        "external-database",
        Some("staging"),
    ),
    (
        "globalnetworkset.json",
        "GlobalNetworkSet",
        "globalnetworksets/a-name-for-the-set",
        "a-name-for-the-set",
        None,
    ),
    (
        "hostendpoint.json",
        "hep",
        "hostendpoints/my-host-eth0",
        "my-host-eth0",
        None,
    ),
    (
        "profile.json",
        "profiles",
        "profiles/dev-apps",
        "dev-apps",
        None,
    ),
    (
        "felixconfiguration.json",
        "felixconfig",
        "felixconfigurations/default",
        "default",
        None,
    ),
    (
        "ipreservation.json",
        "ipreservations",
        "ipreservations/reserved-for-vips",
        "reserved-for-vips",
        None,
    ),
];

#[test]
fn every_new_kind_applies_gets_and_deletes_in_calicos_layout() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    for (file, kind, key, name, ns) in KINDS {
        let key = format!("{PREFIX}/{key}");
        let text = fixture(file);
        let original: Value = serde_json::from_str(&text)?;
        let out = ok(&ep, &["apply", "-f", "-"], Some(&text));
        assert!(out.ends_with(" created\n"), "{file}: {out}");
        // Under Calico's key, as calicoctl wrote it.
        let stored = raw(&etcd, &key).unwrap_or_else(|| panic!("{file}: {key} absent"));
        assert_eq!(stored, original, "{file} changed on the way to etcd");

        // get -o json: the stored object with its resourceVersion.
        let mut args = vec!["get", kind, name, "-o", "json"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let mut got: Value = serde_json::from_str(&ok(&ep, &args, None))?;
        let rv = got["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion")
            .unwrap();
        assert!(rv.as_str().unwrap().parse::<i64>().unwrap() > 0);
        assert_eq!(got, original, "{file}: get changed it");

        // What get printed applies back unchanged.
        let yaml: Vec<&str> = args
            .iter()
            .map(|a| if *a == "json" { "yaml" } else { a })
            .collect();
        let printed = ok(&ep, &yaml, None);
        let out = ok(&ep, &["apply", "-f", "-"], Some(&printed));
        assert!(out.ends_with(" unchanged\n"), "{file}: {out}");

        // The table lists it.
        let mut list = vec!["get", kind];
        if ns.is_some() {
            list.push("-A");
        }
        let table = ok(&ep, &list, None);
        assert!(table.contains(name), "{file}: {table}");

        // delete, then it is gone and a second delete exits 3.
        let mut del = vec!["delete", kind, name];
        if let Some(ns) = ns {
            del.extend(["-n", ns]);
        }
        assert!(ok(&ep, &del, None).ends_with(" deleted\n"));
        assert!(raw(&etcd, &key).is_none(), "{file}: still stored");
        fails(&ep, &del, None, 3);
    }
    Ok(())
}

#[test]
fn policy_apply_warns_it_is_not_enforced() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let r = ctl(
        &etcd.endpoint(),
        &["apply", "-f", "-"],
        Some(&fixture("profile.json")),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: Profile \"dev-apps\"")
            && r.stderr.contains("does not enforce network policy"),
        "{r:?}"
    );
    Ok(())
}

#[test]
fn a_broken_policy_is_refused_naming_field_and_rule() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let bad = "\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: bad
spec:
  order: first
  selector: \"role ==\"
  types: [Egress]
  ingress:
  - action: Accept
    protocol: ICMP
    destination:
      ports: [80]
      nets: [10.0.0.0/33]
";
    let err = fails(&etcd.endpoint(), &["apply", "-f", "-"], Some(bad), 2);
    for field in [
        "spec.order: \"first\" is not a number",
        "spec.selector: ",
        "spec.ingress: ingress rules are given but spec.types does not include Ingress",
        "spec.ingress[0].action: unknown value \"Accept\"",
        "spec.ingress[0].destination.ports: ports need the rule's protocol to be TCP, UDP or SCTP",
        "spec.ingress[0].destination.nets[0]: \"10.0.0.0/33\" is not an IP address or CIDR",
    ] {
        assert!(err.contains(field), "missing {field:?} in {err}");
    }
    assert!(
        raw(&etcd, &format!("{PREFIX}/globalnetworkpolicies/bad")).is_none(),
        "nothing is written"
    );
    Ok(())
}

#[test]
fn a_reservation_that_is_not_an_address_is_refused_naming_the_entry() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    let text = r#"{"kind":"IPReservation","apiVersion":"projectcalico.org/v3",
        "metadata":{"name":"r"},"spec":{"reservedCIDRs":["10.0.0.1","10.0.0.0/33"]}}"#;
    let err = fails(&ep, &["apply", "-f", "-"], Some(text), 2);
    assert!(err.contains("spec.reservedCIDRs[1]"), "{err}");
    assert!(raw(&etcd, &format!("{PREFIX}/ipreservations/r")).is_none());
    Ok(())
}
