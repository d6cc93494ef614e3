//! create, replace, patch and label through the real binary and a real
//! etcd: what each refuses (with its exit code) leaves etcd untouched, and
//! what each writes keeps every other field.

mod common;

use common::{fails, fixture, ok, raw};
use manul_tests::{Etcd, Need, require};
use serde_json::Value;

const NP_KEY: &str =
    "/calico/resources/v3/projectcalico.org/networkpolicies/production/default.allow-tcp-6379";
const GNP_KEY: &str =
    "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/default.deny-blue";
const SET_KEY: &str =
    "/calico/resources/v3/projectcalico.org/networksets/staging/external-database";

#[test]
fn create_fails_when_it_exists_and_skip_exists_passes_over() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    let np = fixture("networkpolicy.json");
    let out = ok(&ep, &["create", "-f", "-"], Some(&np));
    assert_eq!(
        out,
        "networkpolicy.projectcalico.org/default.allow-tcp-6379 (namespace production) created\n"
    );
    let before = etcd.get(NP_KEY)?;
    assert!(before.is_some());
    // Twice: exit 4, nothing written, also not the other object of the file.
    let two = format!("{np}\n{}", fixture("profile.json"));
    let err = fails(&ep, &["create", "-f", "-"], Some(&two), 4);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(etcd.get(NP_KEY)?, before);
    assert!(
        raw(
            &etcd,
            "/calico/resources/v3/projectcalico.org/profiles/dev-apps"
        )
        .is_none()
    );
    // --skip-exists: the existing one passed over, the new one created.
    let out = ok(&ep, &["create", "--skip-exists", "-f", "-"], Some(&two));
    assert!(
        out.contains("default.allow-tcp-6379 (namespace production) skipped (exists)"),
        "{out}"
    );
    assert!(
        out.contains("profile.projectcalico.org/dev-apps created"),
        "{out}"
    );
    assert_eq!(etcd.get(NP_KEY)?, before);
    // An invalid object: exit 2, naming the field.
    let bad = np.replace(
        "\"action\":\"Allow\",\"protocol\"",
        "\"action\":\"Accept\",\"protocol\"",
    );
    let err = fails(&ep, &["create", "-f", "-"], Some(&bad), 2);
    assert!(
        err.contains("spec.ingress[0].action: unknown value \"Accept\""),
        "{err}"
    );
    Ok(())
}

#[test]
fn replace_needs_the_object_and_refuses_a_stale_resource_version() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    let gnp = fixture("globalnetworkpolicy.json");
    // Missing: exit 3, nothing written.
    let err = fails(&ep, &["replace", "-f", "-"], Some(&gnp), 3);
    assert!(err.contains("does not exist"), "{err}");
    assert!(raw(&etcd, GNP_KEY).is_none());

    ok(&ep, &["create", "-f", "-"], Some(&gnp));
    let printed = ok(
        &ep,
        &["get", "gnp", "default.deny-blue", "-o", "yaml"],
        None,
    );
    assert!(printed.contains("resourceVersion:"), "{printed}");
    // Replace from what get printed (resourceVersion current): replaced.
    let changed = printed.replace("order: 10", "order: 20");
    assert_ne!(changed, printed);
    let out = ok(&ep, &["replace", "-f", "-"], Some(&changed));
    assert_eq!(
        out,
        "globalnetworkpolicy.projectcalico.org/default.deny-blue replaced\n"
    );
    let stored = raw(&etcd, GNP_KEY).unwrap();
    assert_eq!(stored["spec"]["order"], 20);
    assert!(
        stored["metadata"].get("resourceVersion").is_none(),
        "never stored"
    );
    assert_eq!(
        stored["spec"]["namespaceSelector"],
        "has(projectcalico.org/name)"
    );
    // The same file again: its resourceVersion is stale now; exit 4.
    let before = etcd.get(GNP_KEY)?;
    let stale = changed.replace("order: 20", "order: 30");
    let err = fails(&ep, &["replace", "-f", "-"], Some(&stale), 4);
    assert!(err.contains("metadata.resourceVersion is"), "{err}");
    assert_eq!(etcd.get(GNP_KEY)?, before);
    // Without resourceVersion: replaced, fields left out removed.
    let out = ok(
        &ep,
        &["replace", "-f", "-"],
        Some(&gnp.replace(",\"namespaceSelector\":\"has(projectcalico.org/name)\"", "")),
    );
    assert!(out.ends_with(" replaced\n"), "{out}");
    let stored = raw(&etcd, GNP_KEY).unwrap();
    assert!(
        stored["spec"].get("namespaceSelector").is_none(),
        "{stored}"
    );
    assert_eq!(stored["spec"]["order"], 10);
    Ok(())
}

#[test]
fn patch_merges_validates_and_honours_resource_version() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    ok(
        &ep,
        &["create", "-f", "-"],
        Some(&fixture("networkpolicy.json")),
    );
    let np = [
        "networkpolicy",
        "default.allow-tcp-6379",
        "-n",
        "production",
    ];
    let patch = |p: &str| {
        let mut a = vec!["patch"];
        a.extend(np);
        a.extend(["-p", p]);
        a.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let run = |p: &str| {
        let a = patch(p);
        ok(&ep, &a.iter().map(String::as_str).collect::<Vec<_>>(), None)
    };
    let run_fails = |p: &str, code: i32| {
        let a = patch(p);
        fails(
            &ep,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            None,
            code,
        )
    };
    let before = raw(&etcd, NP_KEY).unwrap();
    let out = run(
        r#"{"spec":{"order":50,"selector":null,"egress":[{"action":"Deny"}]},"metadata":{"labels":{"x":"y"}}}"#,
    );
    assert!(out.ends_with(" patched\n"), "{out}");
    let after = raw(&etcd, NP_KEY).unwrap();
    assert_eq!(after["spec"]["order"], 50);
    assert!(after["spec"].get("selector").is_none(), "null removes");
    assert_eq!(
        after["spec"]["egress"],
        serde_json::json!([{"action":"Deny"}]),
        "lists replaced whole"
    );
    assert_eq!(
        after["spec"]["ingress"], before["spec"]["ingress"],
        "the rest kept"
    );
    assert_eq!(
        after["spec"]["futureField"], before["spec"]["futureField"],
        "unknown fields kept"
    );
    assert_eq!(
        after["metadata"]["labels"],
        serde_json::json!({"team":"db","x":"y"})
    );
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);

    // A patch that breaks a rule: exit 2 naming the field, nothing written.
    let now = etcd.get(NP_KEY)?;
    let err = run_fails(r#"{"spec":{"types":["Sideways"]}}"#, 2);
    assert!(
        err.contains("spec.types[0]: unknown value \"Sideways\""),
        "{err}"
    );
    let err = run_fails(r#"{"metadata":{"name":"other"}}"#, 2);
    assert!(err.contains("cannot change"), "{err}");
    let err = run_fails("[1]", 2);
    assert!(err.contains("JSON object"), "{err}");
    // A stale resourceVersion in the patch: exit 4.
    let err = run_fails(
        r#"{"metadata":{"resourceVersion":"1"},"spec":{"order":1}}"#,
        4,
    );
    assert!(err.contains("resourceVersion is 1"), "{err}");
    assert_eq!(etcd.get(NP_KEY)?, now);
    // Missing object: exit 3. Immutable field of a modelled kind: exit 2.
    let err = fails(&ep, &["patch", "gnp", "nope", "-p", "{}"], None, 3);
    assert!(err.contains("not found"), "{err}");
    ok(
        &ep,
        &["apply", "-f", "-"],
        Some(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.65.0.0/16}\n",
        ),
    );
    let err = fails(
        &ep,
        &[
            "patch",
            "ippool",
            "p",
            "-p",
            r#"{"spec":{"cidr":"10.66.0.0/16"}}"#,
        ],
        None,
        2,
    );
    assert!(err.contains("spec.cidr cannot change"), "{err}");
    let out = ok(
        &ep,
        &[
            "patch",
            "ippool",
            "p",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"natOutgoing":true}}"#,
        ],
        None,
    );
    assert_eq!(out, "ippool.projectcalico.org/p patched\n");
    let pool: Value = raw(&etcd, "/calico/resources/v3/projectcalico.org/ippools/p").unwrap();
    assert_eq!(pool["spec"]["natOutgoing"], true);
    assert_eq!(pool["spec"]["blockSize"], 26);
    fails(
        &ep,
        &["patch", "ippool", "p", "--type", "json", "-p", "{}"],
        None,
        2,
    );
    Ok(())
}

#[test]
fn label_adds_overwrites_and_removes() -> anyhow::Result<()> {
    require!(Need::Bin("etcd"), Need::Bin("etcdctl"));
    let etcd = Etcd::start()?;
    let ep = etcd.endpoint();
    ok(
        &ep,
        &["create", "-f", "-"],
        Some(&fixture("networkset.json")),
    );
    let labels = || raw(&etcd, SET_KEY).unwrap()["metadata"]["labels"].clone();
    let set = ["networkset", "external-database", "-n", "staging"];
    let with = |extra: &[&'static str]| set.iter().chain(extra).copied().collect::<Vec<&str>>();
    let name = "networkset.projectcalico.org/external-database (namespace staging)";

    let out = ok(
        &ep,
        &[
            &["label"][..],
            &with(&["zone=a", "app.kubernetes.io/part-of=db"]),
        ]
        .concat(),
        None,
    );
    assert_eq!(out, format!("{name} labeled\n"));
    assert_eq!(
        labels(),
        serde_json::json!({"role":"db","zone":"a","app.kubernetes.io/part-of":"db"})
    );
    // An existing label with another value: refused without --overwrite.
    let err = fails(
        &ep,
        &[&["label"][..], &with(&["role=cache"])].concat(),
        None,
        1,
    );
    assert!(
        err.contains("label role is already db: use --overwrite"),
        "{err}"
    );
    assert_eq!(labels()["role"], "db");
    ok(
        &ep,
        &[&["label"][..], &with(&["role=cache", "--overwrite"])].concat(),
        None,
    );
    assert_eq!(labels()["role"], "cache");
    // Remove: KEY- and --remove KEY; a missing one is refused.
    let out = ok(&ep, &[&["label"][..], &with(&["zone-"])].concat(), None);
    assert_eq!(out, format!("{name} unlabeled\n"));
    ok(
        &ep,
        &[
            &["label"][..],
            &with(&["app.kubernetes.io/part-of", "--remove"]),
        ]
        .concat(),
        None,
    );
    assert_eq!(labels(), serde_json::json!({"role":"cache"}));
    let err = fails(&ep, &[&["label"][..], &with(&["zone-"])].concat(), None, 1);
    assert!(err.contains("cannot remove label zone"), "{err}");
    // Bad syntax: exit 2; a missing object: exit 3.
    fails(
        &ep,
        &[&["label"][..], &with(&["Bad Key=x"])].concat(),
        None,
        2,
    );
    fails(
        &ep,
        &["label", "networkset", "nope", "-n", "staging", "a=b"],
        None,
        3,
    );
    // The spec is untouched.
    assert_eq!(
        raw(&etcd, SET_KEY).unwrap()["spec"],
        serde_json::json!({"nets":["198.51.100.0/28","203.0.113.0/24"]})
    );
    Ok(())
}
