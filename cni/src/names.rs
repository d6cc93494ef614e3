//! Names Calico derives for a workload, so manul and Calico agree on them:
//! the host-side veth (`cali` + the first 11 hex characters of the SHA-1
//! of `<namespace>.<pod>`), the IPAM handle (`k8s-pod-network.<containerID>`)
//! and the WorkloadEndpoint's name (`<node>-k8s-<pod>-<endpoint>`, each part's
//! `-` doubled).
//!
//! Without Kubernetes pod arguments the workload is the container itself:
//! orchestrator `cni`, namespace `default`, pod name = container ID.

/// The handle of a pod's addresses.
pub fn handle_id(container_id: &str) -> String {
    format!("k8s-pod-network.{container_id}")
}

/// The host-side veth of a workload.
pub fn veth_name(namespace: &str, pod: &str) -> String {
    let digest = sha1_smol::Sha1::from(format!("{namespace}.{pod}"))
        .digest()
        .to_string();
    format!("cali{}", &digest[..11])
}

/// A temporary name for a veth end before it is renamed (same hash, other prefix).
pub fn temp_name(host_veth: &str) -> String {
    format!("tmp{}", &host_veth[4..])
}

/// The WorkloadEndpoint name Calico gives a pod's interface.
pub fn wep_name(node: &str, orchestrator: &str, pod: &str, endpoint: &str) -> String {
    [node, orchestrator, pod, endpoint]
        .iter()
        .map(|p| p.replace('-', "--"))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_calico() {
        // sha1("default.nginx") = 8a7f...; Calico: "cali" + first 11 hex.
        let v = veth_name("default", "nginx");
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("cali"));
        assert_eq!(
            &v[4..],
            &sha1_smol::Sha1::from("default.nginx").digest().to_string()[..11]
        );
        assert_eq!(temp_name(&v).len(), 14);
        assert_eq!(handle_id("abc"), "k8s-pod-network.abc");
        assert_eq!(
            wep_name("host-a", "k8s", "web-0", "eth0"),
            "host--a-k8s-web--0-eth0"
        );
    }
}
