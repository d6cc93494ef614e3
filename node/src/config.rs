//! manul-node's settings: command-line options, each also read from the
//! environment variable calico-node uses for it (`--help` lists every
//! option with its variable and default), and from a TOML file
//! (`--config`, `MANUL_CONFIG`) whose keys are the long option names
//! (`nodename = "host-a"`, `etcd_endpoints = "..."`, `as = 64512`).
//! Precedence: command line, then environment, then the file, then the
//! default. An unknown key in the file is an error.

use std::net::SocketAddr;

use clap::Parser;
use ipnet::IpNet;

/// manul-node: the per-host agent. Registers this host's Node in etcd,
/// creates the default IP pool when the cluster has none, runs confd, the
/// BGP speaker and felix, and answers /status, /metrics, /liveness and
/// /readiness over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    /// A TOML file with any of these options (keys: the long names, `-` or `_`).
    #[arg(long, env = "MANUL_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// This host's Calico node name (default: the hostname).
    #[arg(long, env = "NODENAME")]
    pub nodename: Option<String>,
    /// IPv4 address: an address (optionally with /len), `autodetect`, or `none`.
    #[arg(long, env = "IP", default_value = "autodetect")]
    pub ip: String,
    /// IPv6 address: an address (optionally with /len), `autodetect`, or `none`.
    #[arg(long, env = "IP6", default_value = "none")]
    pub ip6: String,
    /// How `autodetect` finds the IPv4 address: `first-found`,
    /// `interface=REGEX`, `skip-interface=REGEX`, `can-reach=ADDR`.
    #[arg(long, env = "IP_AUTODETECTION_METHOD", default_value = "first-found")]
    pub ip_autodetection_method: String,
    /// How `autodetect` finds the IPv6 address (same methods).
    #[arg(long, env = "IP6_AUTODETECTION_METHOD", default_value = "first-found")]
    pub ip6_autodetection_method: String,
    /// This node's AS number (default: the cluster's, 64512).
    #[arg(long = "as", env = "AS")]
    pub as_number: Option<u32>,
    /// The BGP router ID (Calico's CALICO_ROUTER_ID): an IPv4 address, or
    /// `hash` for one derived from the node name as Calico does (a node
    /// with no IPv4 address needs one of these to run BGP); unset: the
    /// node's IPv4 address.
    #[arg(long, env = "CALICO_ROUTER_ID")]
    pub router_id: Option<crate::router_id::RouterIdSource>,
    /// etcd client URLs, comma-separated.
    #[arg(long, env = "ETCD_ENDPOINTS", default_value = "http://127.0.0.1:2379")]
    pub etcd_endpoints: String,
    /// PEM CA certificate for etcd.
    #[arg(long, env = "ETCD_CA_CERT_FILE")]
    pub etcd_ca_cert_file: Option<String>,
    /// PEM client certificate for etcd.
    #[arg(long, env = "ETCD_CERT_FILE")]
    pub etcd_cert_file: Option<String>,
    /// PEM client key for etcd.
    #[arg(long, env = "ETCD_KEY_FILE")]
    pub etcd_key_file: Option<String>,
    /// Do not create the default pools.
    #[arg(long, env = "NO_DEFAULT_POOLS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_default_pools: bool,
    /// CIDR of the default IPv4 pool.
    #[arg(long, env = "CALICO_IPV4POOL_CIDR", default_value = "192.168.0.0/16")]
    pub ipv4pool_cidr: IpNet,
    /// Block size of the default IPv4 pool.
    #[arg(long, env = "CALICO_IPV4POOL_BLOCK_SIZE", default_value_t = 26)]
    pub ipv4pool_block_size: u32,
    /// VXLAN mode of the default IPv4 pool: Never, Always, CrossSubnet.
    #[arg(long, env = "CALICO_IPV4POOL_VXLAN", default_value = "Never")]
    pub ipv4pool_vxlan: String,
    /// NAT outgoing traffic of the default IPv4 pool.
    #[arg(long, env = "CALICO_IPV4POOL_NAT_OUTGOING", default_value_t = true, action = clap::ArgAction::Set)]
    pub ipv4pool_nat_outgoing: bool,
    /// Run the eBPF dataplane (Calico's BPFEnabled): felix's TC programs on
    /// workload interfaces and its maps; kernel routes only where the host
    /// cannot run them.
    #[arg(long, env = "FELIX_BPFENABLED", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub bpf_enabled: bool,
    /// The bpffs directory felix pins its eBPF programs, maps and links in
    /// (one per host: agents sharing a kernel need one each).
    #[arg(long, env = "MANUL_BPF_PIN_DIR", default_value = manul_felix::ebpf::DEFAULT_PIN_DIR)]
    pub bpf_pin_dir: std::path::PathBuf,
    /// How felix attaches its programs: `auto` (TCX on Linux 6.6 and
    /// later, else legacy TC), `tcx`, or `tc` (clsact + cls_bpf filter).
    #[arg(long, env = "FELIX_BPFATTACHTYPE", default_value = "auto")]
    pub bpf_attach_type: manul_felix::ebpf::AttachMode,
    /// Remove every kernel route manul owns (protocol 80), its NAT table
    /// (nftables `inet manul`) and its eBPF programs, maps and attachments,
    /// and exit.
    #[arg(long, default_value_t = false)]
    pub cleanup: bool,
    /// Directory of BGP password secrets: key KEY of secret NAME
    /// (`password.secretKeyRef`) is the file DIR/NAME/KEY, as Kubernetes
    /// mounts a secret; read again every 2 s.
    #[arg(long, env = "MANUL_SECRETS_DIR", default_value = "/etc/manul/secrets")]
    pub secrets_dir: std::path::PathBuf,
    /// Where the HTTP status endpoint listens (keep it on loopback).
    #[arg(long, env = "MANUL_STATUS_LISTEN", default_value = "127.0.0.1:9099")]
    pub status_listen: SocketAddr,
    /// How pods on different nodes reach each other (Calico's
    /// CALICO_NETWORKING_BACKEND): `bird` (BGP: the speaker runs, remote
    /// blocks are learned from peers; VXLAN pools' routes are computed
    /// from IPAM as Calico's felix does), `vxlan` (no BGP at all: remote
    /// blocks of VXLAN pools from IPAM block affinities and the Nodes'
    /// VTEPs), `none` (no BGP; the same as `vxlan` for what manul routes).
    #[arg(
        long,
        env = "CALICO_NETWORKING_BACKEND",
        default_value = "bird",
        value_enum
    )]
    pub networking_backend: Backend,
    /// MTU of vxlan.calico (Calico's FELIX_VXLANMTU); 0: the uplink's
    /// MTU less 50.
    #[arg(long, env = "FELIX_VXLANMTU", default_value_t = 0)]
    pub vxlan_mtu: u32,
    /// MTU of vxlan-v6.calico (Calico's FELIX_VXLANMTUV6); 0: the uplink's
    /// MTU less 70.
    #[arg(long = "vxlan-mtu-v6", env = "FELIX_VXLANMTUV6", default_value_t = 0)]
    pub vxlan_mtu_v6: u32,
    /// Where the pod MTU is written for the CNI plugin (its `mtu_file`),
    /// as calico-node writes it; agents sharing one filesystem (the lab,
    /// tests) need one each.
    #[arg(long, env = "MANUL_MTU_FILE", default_value = manul_felix::mtu::DEFAULT_MTU_FILE)]
    pub mtu_file: std::path::PathBuf,
}

/// Calico's `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// BGP (calico-node's BIRD; manul's own speaker).
    Bird,
    /// VXLAN only: no BGP anywhere.
    Vxlan,
    /// No BGP (Calico's policy-only mode).
    None,
}

impl Backend {
    /// Whether this node runs BGP.
    pub fn bgp(self) -> bool {
        self == Backend::Bird
    }

    /// The name as the variable takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Bird => "bird",
            Backend::Vxlan => "vxlan",
            Backend::None => "none",
        }
    }
}

impl Config {
    /// Parse `args` (the process's, with the program name first), filling
    /// what neither they nor the environment set from the `--config` file.
    pub fn load_from(args: Vec<std::ffi::OsString>) -> anyhow::Result<Config> {
        use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
        let cmd = Config::command();
        let matches = cmd.clone().try_get_matches_from(args.clone())?;
        let first = Config::from_arg_matches(&matches)?;
        let Some(path) = &first.config else {
            return Ok(first);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut args = args;
        for (key, value) in table {
            let long = key.replace('_', "-");
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
                .ok_or_else(|| anyhow::anyhow!("{}: unknown key {key:?}", path.display()))?;
            let given = matches!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if given {
                continue;
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!(
                    "{}: {key} must be a string, number or boolean, not {other}",
                    path.display()
                ),
            };
            args.push(format!("--{long}={value}").into());
        }
        Ok(Config::from_arg_matches(&cmd.try_get_matches_from(args)?)?)
    }

    /// The node name: `--nodename`, else the hostname.
    pub fn node_name(&self) -> anyhow::Result<String> {
        if let Some(n) = self
            .nodename
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            return Ok(n.to_string());
        }
        Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")?
            .trim()
            .to_string())
    }

    /// The etcd settings.
    pub fn etcd(&self) -> anyhow::Result<manul_datastore::EtcdConfig> {
        let get = |n: &str| -> Option<String> {
            match n {
                "ETCD_ENDPOINTS" => Some(self.etcd_endpoints.clone()),
                "ETCD_CA_CERT_FILE" => self.etcd_ca_cert_file.clone(),
                "ETCD_CERT_FILE" => self.etcd_cert_file.clone(),
                "ETCD_KEY_FILE" => self.etcd_key_file.clone(),
                other => std::env::var(other).ok(),
            }
        };
        Ok(manul_datastore::EtcdConfig::from_vars(get)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_option_has_its_variable_and_default_in_help() {
        let help = Config::command().render_long_help().to_string();
        for v in [
            "NODENAME",
            "IP6",
            "AS",
            "ETCD_ENDPOINTS",
            "CALICO_IPV4POOL_CIDR",
            "NO_DEFAULT_POOLS",
            "CALICO_NETWORKING_BACKEND",
            "FELIX_VXLANMTU",
            "FELIX_VXLANMTUV6",
            "MANUL_MTU_FILE",
            "CALICO_ROUTER_ID",
        ] {
            assert!(help.contains(&format!("env: {v}")), "{v} missing:\n{help}");
        }
        assert!(help.contains("[default: 192.168.0.0/16]"), "{help}");
        assert!(help.contains("[default: first-found]"), "{help}");
        assert!(help.contains("[default: bird]"), "{help}");
        assert!(help.contains("[default: /var/lib/calico/mtu]"), "{help}");
    }

    #[test]
    fn a_toml_file_fills_what_is_not_given() {
        let dir = std::env::temp_dir().join(format!("manul-node-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.toml");
        std::fs::write(
            &file,
            "nodename = \"from-file\"\nas = 65010\nno_default_pools = true\nip = \"10.1.0.1/24\"\n",
        )
        .unwrap();
        let args = |extra: &[&str]| {
            let mut v: Vec<std::ffi::OsString> =
                vec!["manul-node".into(), "--config".into(), file.clone().into()];
            v.extend(extra.iter().map(Into::into));
            v
        };
        let c = Config::load_from(args(&[])).unwrap();
        assert_eq!(c.nodename.as_deref(), Some("from-file"));
        assert_eq!(c.as_number, Some(65010));
        assert!(c.no_default_pools);
        // The command line wins.
        let c = Config::load_from(args(&["--nodename", "cli"])).unwrap();
        assert_eq!(c.nodename.as_deref(), Some("cli"));
        std::fs::write(&file, "bogus = 1\n").unwrap();
        let e = Config::load_from(args(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown key \"bogus\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_parse() {
        let c = Config::try_parse_from([
            "manul-node",
            "--nodename",
            "h1",
            "--ip",
            "10.0.0.1/24",
            "--as",
            "65001",
            "--no-default-pools",
        ])
        .unwrap();
        assert_eq!(c.as_number, Some(65001));
        assert!(c.no_default_pools);
        assert_eq!(c.node_name().unwrap(), "h1");
        assert_eq!(c.networking_backend, Backend::Bird);
        let c = Config::try_parse_from([
            "manul-node",
            "--networking-backend",
            "vxlan",
            "--vxlan-mtu",
            "1400",
            "--vxlan-mtu-v6",
            "1380",
        ])
        .unwrap();
        assert_eq!(c.networking_backend, Backend::Vxlan);
        assert!(!c.networking_backend.bgp());
        assert_eq!((c.vxlan_mtu, c.vxlan_mtu_v6), (1400, 1380));
        let c = Config::try_parse_from(["manul-node", "--router-id", "hash"]).unwrap();
        assert_eq!(c.router_id, Some(crate::router_id::RouterIdSource::Hash));
        // An invalid value stops the agent at start, saying what is wrong.
        let e = Config::try_parse_from(["manul-node", "--router-id", "fd00::1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither an IPv4 address nor `hash`"), "{e}");
        let e = Config::try_parse_from(["manul-node", "--networking-backend", "gobgp"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bird") && e.contains("vxlan"), "{e}");
    }
}
