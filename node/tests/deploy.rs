//! deploy/ stays true to the code: the example resources parse as manul's
//! datastore types with no unknown field and pass manul's validation; the
//! Kubernetes manifests are valid YAML, the DaemonSet runs on the host
//! network and sets only variables `manul-node --help` knows; the CNI
//! configuration it installs parses as manul-cni's; the systemd
//! environment file sets only known variables; the README's configuration
//! reference names every variable `--help` lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use manul_datastore::resources::{BgpConfiguration, BgpPeer, IpPool, Node};
use manul_datastore::validate;
use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    manul_tests::package_dir!().join("..")
}

/// Every YAML document in `path`, as JSON.
fn documents(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
        let v = Value::deserialize(doc)
            .with_context(|| format!("{}, document {}", path.display(), i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The environment variables `manul-node --help` lists.
fn known_variables() -> Result<BTreeSet<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_manul-node"))
        .arg("--help")
        .output()?;
    let help = String::from_utf8(out.stdout)?;
    let vars: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split('=').next())
        .map(str::to_string)
        .collect();
    ensure!(vars.len() >= 15, "too few variables in --help: {vars:?}");
    Ok(vars)
}

fn check_resource<T>(
    doc: &Value,
    validate: impl Fn(&T) -> Result<(), validate::ValidationErrors>,
) -> Result<()>
where
    T: serde::de::DeserializeOwned + HasExtra,
{
    let r: T = serde_json::from_value(doc.clone())?;
    let unknown = r.unknown();
    ensure!(unknown.is_empty(), "unknown fields {unknown:?}");
    validate(&r).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The fields a resource kept without knowing them.
trait HasExtra {
    fn unknown(&self) -> Vec<String>;
}

macro_rules! has_extra {
    ($($t:ty),*) => {$(
        impl HasExtra for $t {
            fn unknown(&self) -> Vec<String> {
                self.extra.keys().chain(self.spec.extra.keys()).cloned().collect()
            }
        }
    )*};
}
has_extra!(IpPool, BgpPeer, BgpConfiguration, Node);

#[test]
fn example_resources_parse_and_validate() -> Result<()> {
    let dir = root().join("deploy/examples");
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        for (i, doc) in documents(&path)?.iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            ensure!(
                doc["apiVersion"] == "projectcalico.org/v3",
                "{}: apiVersion",
                path.display()
            );
            let res = match kind.as_str() {
                "IPPool" => check_resource::<IpPool>(doc, validate::validate_ip_pool),
                "BGPPeer" => check_resource::<BgpPeer>(doc, validate::validate_bgp_peer),
                "BGPConfiguration" => {
                    check_resource::<BgpConfiguration>(doc, validate::validate_bgp_configuration)
                }
                "Node" => check_resource::<Node>(doc, validate::validate_node),
                other => bail!("{}: unexpected kind {other:?}", path.display()),
            };
            res.with_context(|| format!("{}, document {}", path.display(), i + 1))?;
            kinds.insert(kind);
        }
    }
    for k in ["IPPool", "BGPPeer", "BGPConfiguration"] {
        ensure!(kinds.contains(k), "no {k} example");
    }
    Ok(())
}

#[test]
fn kubernetes_manifests_and_the_systemd_unit_agree_with_the_agent() -> Result<()> {
    let known = known_variables()?;
    let docs = documents(&root().join("deploy/kubernetes/manul-node.yaml"))?;
    let by_kind = |k: &'static str| docs.iter().filter(move |d| d["kind"] == k);
    let ds = by_kind("DaemonSet").next().context("no DaemonSet")?;
    let pod = &ds["spec"]["template"]["spec"];
    ensure!(
        pod["hostNetwork"] == true,
        "the DaemonSet must use the host network"
    );
    let node = pod["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "manul-node"))
        .context("no manul-node container")?;
    for e in node["env"].as_array().context("no env")? {
        let name = e["name"].as_str().unwrap_or_default();
        ensure!(
            known.contains(name) || name == "RUST_LOG",
            "the DaemonSet sets {name}, which manul-node does not read"
        );
    }
    ensure!(
        by_kind("Secret").any(|s| s["metadata"]["name"] == "manul-etcd-tls"),
        "no etcd TLS Secret"
    );
    let cm = by_kind("ConfigMap").next().context("no ConfigMap")?;
    let conflist: Value = serde_json::from_str(
        cm["data"]["cni_network_config"]
            .as_str()
            .context("no cni_network_config")?,
    )?;
    let plugin = conflist["plugins"][0]
        .to_string()
        .replace("__NODENAME__", "node-a")
        .replace("__ETCD_ENDPOINTS__", "https://10.0.0.10:2379");
    let conf = manul_cni::conf::NetConf::parse(plugin.as_bytes())
        .map_err(|e| anyhow::anyhow!("the installed CNI configuration: {}", e.to_json("1.1.0")))?;
    ensure!(conf.node_name()? == "node-a" && conf.assign_v4()?);
    ensure!(
        manul_cni::result::SUPPORTED.contains(&conflist["cniVersion"].as_str().unwrap_or_default()),
        "cniVersion {}",
        conflist["cniVersion"]
    );

    let env = std::fs::read_to_string(root().join("deploy/systemd/manul-node.env"))?;
    for line in env.lines().map(|l| l.trim_start_matches('#')) {
        if let Some((name, _)) = line.split_once('=')
            && !name.contains(' ')
            && !name.is_empty()
        {
            ensure!(
                known.contains(name) || name == "RUST_LOG",
                "manul-node.env sets {name}, which manul-node does not read"
            );
        }
    }
    let unit = std::fs::read_to_string(root().join("deploy/systemd/manul-node.service"))?;
    ensure!(unit.contains("EnvironmentFile=/etc/manul/manul-node.env"));

    let readme = std::fs::read_to_string(root().join("README.md"))?;
    for v in &known {
        ensure!(
            readme.contains(&format!("`{v}`")),
            "the README's reference lacks {v}"
        );
    }
    Ok(())
}
