//! The network configuration a runtime passes on stdin, with manul's
//! (Calico's) keys:
//!
//! ```json
//! {"cniVersion":"1.0.0","name":"k8s-pod-network","type":"manul-cni",
//!  "etcd_endpoints":"http://10.0.0.10:2379",
//!  "etcd_ca_cert_file":"...","etcd_cert_file":"...","etcd_key_file":"...",
//!  "nodename":"host-a","mtu":1500,
//!  "ipam":{"type":"manul-ipam","assign_ipv4":"true","assign_ipv6":"false",
//!          "ipv4_pools":["10.65.0.0/16"],"ipv6_pools":[]}}
//! ```
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `etcd_endpoints` | comma-separated URLs | `ETCD_ENDPOINTS`, else `http://127.0.0.1:2379` |
//! | `etcd_ca_cert_file`, `etcd_cert_file`, `etcd_key_file` | TLS (PEM files) | none |
//! | `nodename` | this host's Calico node name | the file `nodename_file`, else the hostname |
//! | `nodename_file` | | `/var/lib/calico/nodename` (what calico-node writes) |
//! | `mtu` | MTU of both veth ends (0: unset) | the number in `mtu_file`, else the kernel's (1500) |
//! | `mtu_file` | where the node agent writes the pod MTU (manul's key; Calico's plugin reads its fixed path) | `/var/lib/calico/mtu` (what calico-node and manul-node write) |
//! | `ipam.assign_ipv4` / `ipam.assign_ipv6` | families to assign (`"true"`/`"false"`, as Calico) | `true` / `false` |
//! | `ipam.ipv4_pools` / `ipam.ipv6_pools` | only these pools (CIDRs) | every pool selecting the host |
//!
//! Unknown keys are ignored (a runtime adds its own, e.g. `prevResult`).

use std::path::PathBuf;

use ipnet::IpNet;
use manul_datastore::EtcdConfig;
use serde::Deserialize;

use crate::error::{CniError, DECODE_FAILURE, INVALID_CONFIG, IO_FAILURE, Result};

/// Calico's default `nodename_file`.
pub const DEFAULT_NODENAME_FILE: &str = "/var/lib/calico/nodename";
/// Where calico-node (and manul-node) write the pod MTU.
pub const DEFAULT_MTU_FILE: &str = "/var/lib/calico/mtu";

/// The parsed network configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetConf {
    /// The CNI version the runtime speaks.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// The network's name.
    #[serde(default)]
    pub name: String,
    /// etcd endpoints, comma-separated.
    #[serde(default)]
    pub etcd_endpoints: Option<String>,
    /// CA certificate file.
    #[serde(default)]
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// Client certificate file.
    #[serde(default)]
    pub etcd_cert_file: Option<PathBuf>,
    /// Client key file.
    #[serde(default)]
    pub etcd_key_file: Option<PathBuf>,
    /// The node name.
    #[serde(default)]
    pub nodename: Option<String>,
    /// Where to read the node name when `nodename` is unset.
    #[serde(default)]
    pub nodename_file: Option<PathBuf>,
    /// MTU of the veth pair.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Where to read the pod MTU when `mtu` is unset.
    #[serde(default)]
    pub mtu_file: Option<PathBuf>,
    /// IPAM options.
    #[serde(default)]
    pub ipam: IpamConf,
    /// GC (1.1.0): the attachments the runtime still has; everything else
    /// this node holds is released.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Vec<Attachment>,
}

/// One attachment in `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Attachment {
    /// The container.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Its interface.
    #[serde(default)]
    pub ifname: String,
}

/// The `ipam` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamConf {
    /// `"true"` or `"false"` (Calico writes strings; booleans are taken too).
    #[serde(default)]
    pub assign_ipv4: Option<serde_json::Value>,
    /// Like `assign_ipv4`.
    #[serde(default)]
    pub assign_ipv6: Option<serde_json::Value>,
    /// IPv4 pools to use.
    #[serde(default)]
    pub ipv4_pools: Vec<IpNet>,
    /// IPv6 pools to use.
    #[serde(default)]
    pub ipv6_pools: Vec<IpNet>,
}

fn flag(v: &Option<serde_json::Value>, name: &str, default: bool) -> Result<bool> {
    match v {
        None => Ok(default),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(CniError::new(
            INVALID_CONFIG,
            format!("ipam.{name} must be \"true\" or \"false\", not {other}"),
        )),
    }
}

impl NetConf {
    /// Parse stdin.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                DECODE_FAILURE,
                format!("the network configuration on stdin is not valid: {e}"),
            )
        })
    }

    /// Whether to assign an IPv4 address.
    pub fn assign_v4(&self) -> Result<bool> {
        flag(&self.ipam.assign_ipv4, "assign_ipv4", true)
    }

    /// Whether to assign an IPv6 address.
    pub fn assign_v6(&self) -> Result<bool> {
        flag(&self.ipam.assign_ipv6, "assign_ipv6", false)
    }

    /// The pools to assign from (both families).
    pub fn pools(&self) -> Vec<IpNet> {
        self.ipam
            .ipv4_pools
            .iter()
            .chain(&self.ipam.ipv6_pools)
            .copied()
            .collect()
    }

    /// How to reach etcd; `env` answers for the environment
    /// (`ETCD_ENDPOINTS` and friends fill what the config leaves out).
    pub fn etcd(&self, env: impl Fn(&str) -> Option<String>) -> Result<EtcdConfig> {
        let mut c = EtcdConfig::from_vars(&env)
            .map_err(|e| CniError::new(INVALID_CONFIG, format!("etcd settings: {e}")))?;
        if let Some(eps) = &self.etcd_endpoints {
            c.endpoints = eps
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
        }
        for (field, value) in [
            (&mut c.ca_cert, &self.etcd_ca_cert_file),
            (&mut c.client_cert, &self.etcd_cert_file),
            (&mut c.client_key, &self.etcd_key_file),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        c.dial_timeout = std::time::Duration::from_secs(3);
        c.validate()
            .map_err(|e| CniError::new(INVALID_CONFIG, format!("etcd settings: {e}")))?;
        Ok(c)
    }

    /// The pods' MTU, as Calico's plugin takes it: `mtu` when set (and not
    /// 0), else the number the node agent wrote to `mtu_file` (a missing
    /// file: none, the kernel's default); a file that cannot be read or
    /// holds no number is an error, as in Calico.
    pub fn pod_mtu(&self) -> Result<Option<u32>> {
        if let Some(m) = self.mtu.filter(|m| *m != 0) {
            return Ok(Some(m));
        }
        let file = self
            .mtu_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MTU_FILE));
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CniError::new(
                    IO_FAILURE,
                    format!("failed to read MTU file {}: {e}", file.display()),
                ));
            }
        };
        let mtu: u32 = text.trim().parse().map_err(|_| {
            CniError::new(
                INVALID_CONFIG,
                format!(
                    "MTU file {} holds {:?}, not an MTU",
                    file.display(),
                    text.trim()
                ),
            )
        })?;
        Ok((mtu != 0).then_some(mtu))
    }

    /// This host's node name: `nodename`, else the first line of
    /// `nodename_file`, else the hostname.
    pub fn node_name(&self) -> Result<String> {
        if let Some(n) = self
            .nodename
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            return Ok(n.to_string());
        }
        let file = self
            .nodename_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NODENAME_FILE));
        if let Ok(s) = std::fs::read_to_string(&file)
            && let Some(n) = s.lines().next().map(str::trim).filter(|n| !n.is_empty())
        {
            return Ok(n.to_string());
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(|e| {
            CniError::new(INVALID_CONFIG, format!("no nodename and no hostname: {e}"))
        })?;
        Ok(host.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calico_style_config() {
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"manul-cni","nodename":"h1",
                "etcd_endpoints":"http://a:2379, http://b:2379",
                "ipam":{"assign_ipv4":"true","assign_ipv6":true,"ipv4_pools":["10.65.0.0/16"]},
                "prevResult":{}}"#,
        )
        .unwrap();
        assert!(c.assign_v4().unwrap());
        assert!(c.assign_v6().unwrap());
        assert_eq!(c.node_name().unwrap(), "h1");
        assert_eq!(c.pools(), vec!["10.65.0.0/16".parse::<IpNet>().unwrap()]);
        let e = c.etcd(|_| None).unwrap();
        assert_eq!(e.endpoints, ["http://a:2379", "http://b:2379"]);
    }

    #[test]
    fn the_mtu_comes_from_the_config_else_the_agents_file() {
        let dir = std::env::temp_dir().join(format!("manul-cni-mtu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mtu");
        let conf = |json: &str| NetConf::parse(json.as_bytes()).unwrap();
        let with_file = format!(r#"{{"mtu_file":"{}"}}"#, file.display());
        // No file yet: the kernel's default.
        assert_eq!(conf(&with_file).pod_mtu().unwrap(), None);
        std::fs::write(&file, "1450").unwrap();
        assert_eq!(conf(&with_file).pod_mtu().unwrap(), Some(1450));
        // The configuration's own wins; 0 means unset.
        let both = format!(r#"{{"mtu":1400,"mtu_file":"{}"}}"#, file.display());
        assert_eq!(conf(&both).pod_mtu().unwrap(), Some(1400));
        let zero = format!(r#"{{"mtu":0,"mtu_file":"{}"}}"#, file.display());
        assert_eq!(conf(&zero).pod_mtu().unwrap(), Some(1450));
        std::fs::write(&file, "lots").unwrap();
        let e = conf(&with_file).pod_mtu().unwrap_err();
        assert!(e.msg.contains("not an MTU"), "{}", e.msg);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_flag_and_bad_json_name_the_cause() {
        let c = NetConf::parse(br#"{"ipam":{"assign_ipv4":"yes"}}"#).unwrap();
        let e = c.assign_v4().unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.msg.contains("assign_ipv4"), "{}", e.msg);
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, DECODE_FAILURE);
    }
}
