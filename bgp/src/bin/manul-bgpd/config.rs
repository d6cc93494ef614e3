//! `manul-bgpd`'s TOML file, checked and turned into the speaker's config.
//!
//! ```toml
//! router_id = "10.0.0.1"
//! asn = 64512
//! listen = ["10.0.0.1:179"]          # default: 0.0.0.0:179 and [::]:179
//! status = "/run/manul-bgpd.sock"    # unix socket serving JSON status
//! cluster_id = "10.0.0.1"            # set: act as a route reflector
//! multipath = true
//!
//! [graceful_restart]
//! enabled = true
//! restart_time = 120
//! forwarding_preserved = false       # true: F bit in every OPEN (routes outlive the process)
//!
//! [[peer]]
//! address = "10.0.0.2"
//! asn = 64513
//! password = "secret"
//! families = ["ipv4", "ipv6"]
//! export = "originated"              # originated | all | none
//! next_hop_v6 = "2001:db8::1"        # IPv6 next hop when we are it (default: the interface's)
//! extended_next_hop = false          # RFC 8950: IPv4 routes with IPv6 next hops
//! add_path = "both"                  # RFC 7911: off | receive | send | both
//! add_path_send = "ecmp"             # ecmp (the multipath set) | all
//!
//! # Rules tried before import/export, in order; the first that matches
//! # decides (what none decides is left to import/export).
//! [[peer.import_rule]]
//! action = "reject"                  # accept | reject
//! prefix = "10.0.0.0/8"              # the prefix; with ge/le, inside it:
//! ge = 16                            #   lengths from ge (alone: up to the family's maximum)
//! le = 24                            #   to le (alone: from the prefix's own length)
//! negate = false                     # true: every prefix the above does not match
//! learned = false                    # true: only routes learned from a peer
//!
//! [[prefix]]
//! prefix = "10.65.0.0/26"
//! communities = ["64512:100"]
//! large_communities = ["64512:1:2"]
//! ```
//!
//! Unknown keys are errors (a typo must not silently do nothing); every error
//! names the line and the field.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use manul_bgp::policy::{Condition, PrefixMatch, Rule};
use manul_bgp::speaker::{
    AddPathConfig, AddPathSend, ExportMode, GracefulRestartConfig, ImportMode, ListenRange,
    PeerConfig, PeerOptions, SpeakerConfig,
};
use manul_bgp::types::Family;
use manul_bgp::wire::{Community, LargeCommunity};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    router_id: Ipv4Addr,
    asn: u32,
    listen: Option<Vec<SocketAddr>>,
    status: Option<PathBuf>,
    cluster_id: Option<Ipv4Addr>,
    #[serde(default)]
    multipath: bool,
    #[serde(default)]
    graceful_restart: GracefulRestartFile,
    #[serde(default)]
    peer: Vec<PeerFile>,
    #[serde(default)]
    listen_range: Vec<ListenRangeFile>,
    #[serde(default)]
    prefix: Vec<PrefixFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GracefulRestartFile {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_restart_time")]
    restart_time: u16,
    #[serde(default)]
    restarting: bool,
    #[serde(default)]
    forwarding_preserved: bool,
    #[serde(default = "default_deferral")]
    deferral_seconds: u64,
}

impl Default for GracefulRestartFile {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_time: default_restart_time(),
            restarting: false,
            forwarding_preserved: false,
            deferral_seconds: default_deferral(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_restart_time() -> u16 {
    120
}
fn default_deferral() -> u64 {
    60
}
fn default_port() -> u16 {
    179
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerFile {
    address: IpAddr,
    #[serde(default = "default_port")]
    port: u16,
    asn: u32,
    #[serde(flatten)]
    options: OptionsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenRangeFile {
    range: IpNet,
    asn: Option<u32>,
    #[serde(flatten)]
    options: OptionsFile,
}

#[derive(Debug, Default, Deserialize)]
struct OptionsFile {
    local_asn: Option<u32>,
    #[serde(default)]
    passive: bool,
    password: Option<String>,
    ttl_security: Option<u8>,
    multihop: Option<u8>,
    source_address: Option<IpAddr>,
    families: Option<Vec<FamilyName>>,
    hold_time: Option<u16>,
    keepalive: Option<u64>,
    connect_retry: Option<u64>,
    max_prefixes: Option<u32>,
    #[serde(default)]
    allow_own_as: u8,
    #[serde(default)]
    route_reflector_client: bool,
    #[serde(default)]
    next_hop_self: bool,
    #[serde(default)]
    next_hop_keep: bool,
    restart_time: Option<u16>,
    #[serde(default)]
    import: ImportName,
    #[serde(default)]
    export: ExportName,
    #[serde(default)]
    import_rule: Vec<RuleFile>,
    #[serde(default)]
    export_rule: Vec<RuleFile>,
    next_hop_v6: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    extended_next_hop: bool,
    #[serde(default)]
    add_path: AddPathName,
    #[serde(default)]
    add_path_send: AddPathSendName,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AddPathName {
    #[default]
    Off,
    Receive,
    Send,
    Both,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AddPathSendName {
    #[default]
    Ecmp,
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    action: ActionName,
    prefix: Option<IpNet>,
    ge: Option<u8>,
    le: Option<u8>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    learned: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ActionName {
    Accept,
    Reject,
}

impl RuleFile {
    fn into_rule(self) -> Result<Rule> {
        let mut conditions = Vec::new();
        match self.prefix {
            Some(net) => {
                if net.trunc() != net {
                    bail!(
                        "prefix {net} has host bits set (did you mean {}?)",
                        net.trunc()
                    );
                }
                for (name, v) in [("ge", self.ge), ("le", self.le)] {
                    if v.is_some_and(|v| v > net.max_prefix_len()) {
                        bail!("{name} is longer than a prefix of {net}'s family");
                    }
                }
                let m = PrefixMatch {
                    net,
                    ge: self.ge,
                    le: self.le,
                };
                conditions.push(if self.negate {
                    Condition::NotPrefix(m)
                } else {
                    Condition::Prefix(m)
                });
            }
            None if self.ge.is_some() || self.le.is_some() || self.negate => {
                bail!("ge, le and negate need a prefix")
            }
            None => {}
        }
        if self.learned {
            conditions.push(Condition::Learned);
        }
        Ok(match self.action {
            ActionName::Accept => Rule::accept(conditions),
            ActionName::Reject => Rule::reject(conditions),
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FamilyName {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ImportName {
    #[default]
    All,
    None,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ExportName {
    #[default]
    Originated,
    All,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefixFile {
    prefix: IpNet,
    #[serde(default)]
    communities: Vec<String>,
    #[serde(default)]
    large_communities: Vec<String>,
}

/// A prefix to originate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    pub prefix: IpNet,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The whole daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub speaker: SpeakerConfig,
    pub peers: Vec<PeerConfig>,
    pub prefixes: Vec<Originate>,
    pub status: Option<PathBuf>,
}

fn rules(list: Vec<RuleFile>, what: &str) -> Result<Vec<Rule>> {
    list.into_iter()
        .enumerate()
        .map(|(i, r)| r.into_rule().with_context(|| format!("{what}[{i}]")))
        .collect()
}

impl OptionsFile {
    fn into_options(self) -> Result<PeerOptions> {
        let d = PeerOptions::default();
        if let Some(t) = self.restart_time.filter(|t| *t > 4095) {
            anyhow::bail!("restart_time: {t} exceeds 4095 seconds (12 bits, RFC 4724 §3)");
        }
        Ok(PeerOptions {
            local_asn: self.local_asn,
            passive: self.passive,
            password: self.password,
            ttl_security: self.ttl_security,
            multihop: self.multihop,
            source_address: self.source_address,
            families: self.families.map_or(d.families, |f| {
                f.into_iter()
                    .map(|f| match f {
                        FamilyName::Ipv4 => Family::Ipv4Unicast,
                        FamilyName::Ipv6 => Family::Ipv6Unicast,
                    })
                    .collect()
            }),
            hold_time: self.hold_time.unwrap_or(d.hold_time),
            keepalive: self.keepalive.map(Duration::from_secs),
            connect_retry: self
                .connect_retry
                .map_or(d.connect_retry, Duration::from_secs),
            max_prefixes: self.max_prefixes,
            allow_own_as: self.allow_own_as,
            route_reflector_client: self.route_reflector_client,
            next_hop_self: self.next_hop_self,
            next_hop_keep: self.next_hop_keep,
            restart_time: self.restart_time,
            import: match self.import {
                ImportName::All => ImportMode::All,
                ImportName::None => ImportMode::None,
            },
            export: match self.export {
                ExportName::Originated => ExportMode::Originated,
                ExportName::All => ExportMode::All,
                ExportName::None => ExportMode::None,
            },
            import_rules: rules(self.import_rule, "import_rule")?,
            export_rules: rules(self.export_rule, "export_rule")?,
            next_hop_v6: self.next_hop_v6,
            extended_next_hop: self.extended_next_hop,
            add_path: AddPathConfig {
                receive: matches!(self.add_path, AddPathName::Receive | AddPathName::Both),
                send: matches!(self.add_path, AddPathName::Send | AddPathName::Both),
                send_paths: match self.add_path_send {
                    AddPathSendName::Ecmp => AddPathSend::Ecmp,
                    AddPathSendName::All => AddPathSend::All,
                },
            },
        })
    }
}

/// `aa:nn` (RFC 1997), each part 0..=65535.
pub fn parse_community(s: &str) -> Result<Community> {
    let parts: Vec<&str> = s.split(':').collect();
    let [a, n] = parts[..] else {
        bail!("community {s:?} is not of the form aa:nn");
    };
    let a: u16 = a
        .parse()
        .with_context(|| format!("community {s:?}: {a:?} is not 0..=65535"))?;
    let n: u16 = n
        .parse()
        .with_context(|| format!("community {s:?}: {n:?} is not 0..=65535"))?;
    Ok(Community(u32::from(a) << 16 | u32::from(n)))
}

/// `global:local1:local2` (RFC 8092), each part 0..=4294967295.
pub fn parse_large_community(s: &str) -> Result<LargeCommunity> {
    let parts: Vec<u32> = s
        .split(':')
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("large community {s:?}: parts must be 0..=4294967295"))?;
    let [global, local1, local2] = parts[..] else {
        bail!("large community {s:?} is not of the form global:local1:local2");
    };
    Ok(LargeCommunity {
        global,
        local1,
        local2,
    })
}

/// Parse and check a configuration file's text. `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Config> {
    let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    if file.asn == 0 {
        bail!("{origin}: asn: 0 is not a valid AS number");
    }
    let listen = file.listen.unwrap_or_else(|| {
        vec![
            "0.0.0.0:179".parse().expect("literal"),
            "[::]:179".parse().expect("literal"),
        ]
    });
    let mut peers = Vec::with_capacity(file.peer.len());
    for (i, p) in file.peer.into_iter().enumerate() {
        if p.asn == 0 {
            bail!(
                "{origin}: peer[{i}] ({}): asn: 0 is not a valid AS number",
                p.address
            );
        }
        if p.options.ttl_security.is_some() && p.options.multihop.is_some() {
            bail!(
                "{origin}: peer[{i}] ({}): ttl_security and multihop exclude each other",
                p.address
            );
        }
        if peers.iter().any(|q: &PeerConfig| q.address == p.address) {
            bail!("{origin}: peer[{i}]: {} is configured twice", p.address);
        }
        let options = p
            .options
            .into_options()
            .with_context(|| format!("{origin}: peer[{i}] ({})", p.address))?;
        peers.push(PeerConfig {
            address: p.address,
            port: p.port,
            asn: p.asn,
            options,
        });
    }
    let mut prefixes = Vec::with_capacity(file.prefix.len());
    for (i, p) in file.prefix.into_iter().enumerate() {
        if p.prefix.trunc() != p.prefix {
            bail!(
                "{origin}: prefix[{i}]: {} has host bits set (did you mean {}?)",
                p.prefix,
                p.prefix.trunc()
            );
        }
        let communities = p
            .communities
            .iter()
            .map(|c| parse_community(c))
            .collect::<Result<_>>()
            .with_context(|| format!("{origin}: prefix[{i}] ({}): communities", p.prefix))?;
        let large_communities = p
            .large_communities
            .iter()
            .map(|c| parse_large_community(c))
            .collect::<Result<_>>()
            .with_context(|| format!("{origin}: prefix[{i}] ({}): large_communities", p.prefix))?;
        prefixes.push(Originate {
            prefix: p.prefix,
            communities,
            large_communities,
        });
    }
    let gr = file.graceful_restart;
    if gr.restart_time > 4095 {
        bail!(
            "{origin}: graceful_restart.restart_time: {} exceeds 4095 seconds (12 bits, RFC 4724)",
            gr.restart_time
        );
    }
    Ok(Config {
        speaker: SpeakerConfig {
            router_id: file.router_id,
            asn: file.asn,
            listen,
            cluster_id: file.cluster_id,
            graceful_restart: GracefulRestartConfig {
                enabled: gr.enabled,
                restart_time: gr.restart_time,
                restarting: gr.restarting,
                forwarding_preserved: gr.forwarding_preserved,
                deferral: Duration::from_secs(gr.deferral_seconds),
                ..GracefulRestartConfig::default()
            },
            multipath: file.multipath,
            listen_ranges: file
                .listen_range
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok(ListenRange {
                        range: r.range,
                        asn: r.asn,
                        options: r
                            .options
                            .into_options()
                            .with_context(|| format!("{origin}: listen_range[{i}]"))?,
                    })
                })
                .collect::<Result<_>>()?,
        },
        peers,
        prefixes,
        status: file.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
router_id = "10.0.0.1"
asn = 4200000001
listen = ["10.0.0.1:179"]
status = "/run/bgpd.sock"
multipath = true

[graceful_restart]
restart_time = 90

[[peer]]
address = "10.0.0.2"
asn = 64513
password = "pw"
families = ["ipv4"]
hold_time = 9
export = "all"
max_prefixes = 100
next_hop_v6 = "2001:db8::1"
extended_next_hop = true
add_path = "send"
add_path_send = "all"

[[listen_range]]
range = "10.1.0.0/24"
asn = 64600
passive = true

[[prefix]]
prefix = "10.65.0.0/26"
communities = ["64512:100"]
large_communities = ["4200000001:1:2"]
"#;

    #[test]
    fn a_full_file_parses() {
        let c = parse(FULL, "t.toml").unwrap();
        assert_eq!(c.speaker.asn, 4200000001);
        assert_eq!(c.speaker.graceful_restart.restart_time, 90);
        assert!(c.speaker.multipath);
        let p = &c.peers[0];
        assert_eq!(p.port, 179);
        assert_eq!(p.options.password.as_deref(), Some("pw"));
        assert_eq!(p.options.families, [Family::Ipv4Unicast]);
        assert_eq!(p.options.export, ExportMode::All);
        assert_eq!(p.options.max_prefixes, Some(100));
        assert_eq!(p.options.next_hop_v6, Some("2001:db8::1".parse().unwrap()));
        assert!(p.options.extended_next_hop);
        let ap = p.options.add_path;
        assert!(ap.send && !ap.receive && ap.send_paths == AddPathSend::All);
        assert_eq!(
            c.speaker.listen_ranges[0].options.add_path,
            AddPathConfig::default()
        );
        assert!(c.speaker.listen_ranges[0].options.passive);
        assert_eq!(c.prefixes[0].communities, [Community(64512 << 16 | 100)]);
        assert_eq!(c.prefixes[0].large_communities[0].global, 4200000001);
        assert_eq!(c.status, Some(PathBuf::from("/run/bgpd.sock")));
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let bad_type = "router_id = \"10.0.0.1\"\nasn = \"many\"\n";
        let e = format!("{:#}", parse(bad_type, "t.toml").unwrap_err());
        assert!(
            e.contains("t.toml") && e.contains("line 2") && e.contains("asn"),
            "{e}"
        );

        let typo = "router_id = \"10.0.0.1\"\nasn = 1\n[[peer]]\naddress = \"10.0.0.2\"\nasn = 2\npasword = \"x\"\n";
        let e = format!("{:#}", parse(typo, "t.toml").unwrap_err());
        // Peer options are flattened, so serde reports the peer's table line.
        assert!(e.contains("line 3") && e.contains("pasword"), "{e}");

        let host_bits =
            "router_id = \"10.0.0.1\"\nasn = 1\n[[prefix]]\nprefix = \"10.65.0.1/26\"\n";
        let e = format!("{:#}", parse(host_bits, "t.toml").unwrap_err());
        assert!(e.contains("prefix[0]") && e.contains("10.65.0.0/26"), "{e}");

        let community = "router_id = \"10.0.0.1\"\nasn = 1\n[[prefix]]\nprefix = \"10.65.0.0/26\"\ncommunities = [\"70000:1\"]\n";
        let e = format!("{:#}", parse(community, "t.toml").unwrap_err());
        assert!(e.contains("communities") && e.contains("70000"), "{e}");

        let zero = "router_id = \"10.0.0.1\"\nasn = 0\n";
        assert!(format!("{:#}", parse(zero, "t.toml").unwrap_err()).contains("asn"));
    }

    #[test]
    fn rules_parse_and_bad_ones_are_named() {
        let text = r#"
router_id = "10.0.0.1"
asn = 1
[[peer]]
address = "10.0.0.2"
asn = 2
[[peer.import_rule]]
action = "reject"
prefix = "0.0.0.0/0"
[[peer.import_rule]]
action = "accept"
prefix = "10.0.0.0/8"
ge = 16
le = 24
negate = true
learned = true
[[peer.export_rule]]
action = "reject"
"#;
        let c = parse(text, "t.toml").unwrap();
        let o = &c.peers[0].options;
        assert_eq!(
            o.import_rules,
            vec![
                Rule::reject(vec![Condition::Prefix(PrefixMatch::exact(
                    "0.0.0.0/0".parse().unwrap()
                ))]),
                Rule::accept(vec![
                    Condition::NotPrefix(PrefixMatch {
                        net: "10.0.0.0/8".parse().unwrap(),
                        ge: Some(16),
                        le: Some(24),
                    }),
                    Condition::Learned,
                ]),
            ]
        );
        assert_eq!(o.export_rules, vec![Rule::reject(vec![])]);
        let bad = text.replace("ge = 16", "ge = 40");
        let e = format!("{:#}", parse(&bad, "t.toml").unwrap_err());
        assert!(
            e.contains("peer[0]") && e.contains("import_rule[1]") && e.contains("ge"),
            "{e}"
        );
        let bad = text.replace("\"10.0.0.0/8\"", "\"10.0.0.1/8\"");
        let e = format!("{:#}", parse(&bad, "t.toml").unwrap_err());
        assert!(e.contains("host bits"), "{e}");
    }

    #[test]
    fn defaults_listen_on_both_families() {
        let c = parse("router_id = \"10.0.0.1\"\nasn = 1\n", "t").unwrap();
        assert_eq!(c.speaker.listen.len(), 2);
        assert!(c.speaker.graceful_restart.enabled);
        assert!(c.peers.is_empty());
    }
}
