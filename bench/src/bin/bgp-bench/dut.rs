//! The three implementations as receiver / device under test: manul-bgpd,
//! BIRD 2 and GoBGP, configured alike — AS 65000, a passive eBGP session
//! from the blaster (AS 65001) importing everything and, for pass-through,
//! an eBGP session to the sink (AS 65002) exporting everything (so the next
//! hop and AS path are rewritten). Extended messages (RFC 8654) are enabled
//! wherever the implementation has them.
//!
//! Each offers a cheap per-session counter for polling (`received`) and a
//! whole-RIB count for the final check (`rib_count`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use manul_tests::scratch::{self, ScratchDir};
use manul_tests::{Bird, Daemon, Gobgp, Netns};
use serde_json::Value;

use crate::tools::{poll, sibling};
use crate::topo::{BLASTER, BLASTER_AS, DUT_AS, DUT_IN, DUT_OUT, SINK, SINK_AS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Manul,
    Bird,
    Gobgp,
}

impl Kind {
    /// How far apart to space probes of the receiver's count, in multiples
    /// of how long one takes (see [`crate::tools::poll`]).
    pub fn probe_spacing(self) -> u32 {
        match self {
            // Counting walks the RIB in GoBGP's main loop.
            Kind::Gobgp => 9,
            // A per-session counter, answered between units of work.
            Kind::Manul | Kind::Bird => 1,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Manul => "manul-bgpd",
            Kind::Bird => "BIRD",
            Kind::Gobgp => "GoBGP",
        }
    }
}

/// A running receiver / device under test.
#[derive(Debug)]
pub enum Dut {
    Manul(Manul),
    Bird(Bird),
    Gobgp(Gobgp),
}

impl Dut {
    /// Start `kind` in `ns`; with `pass`, also peer with (and export to)
    /// the sink; with `filter` rules, an import filter on the blaster's
    /// session ([`crate::filter`]).
    pub fn start(kind: Kind, ns: &Netns, pass: bool, filter: usize) -> Result<Self> {
        Ok(match kind {
            Kind::Manul => Dut::Manul(Manul::start(ns, &manul_config(pass, filter))?),
            Kind::Bird => Dut::Bird(
                Bird::builder(ns)
                    .router_id(DUT_IN.parse()?)
                    .start(&bird_config(pass, filter))?,
            ),
            Kind::Gobgp if filter > 0 => {
                bail!("--import-filter is not configured for GoBGP (manul and BIRD only)")
            }
            Kind::Gobgp => Dut::Gobgp(Gobgp::start(ns, &gobgp_config(pass))?),
        })
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        match self {
            Dut::Manul(m) => &mut m.daemon,
            Dut::Bird(b) => b.daemon(),
            Dut::Gobgp(g) => g.daemon(),
        }
    }

    /// Prefixes accepted from the blaster (a per-session counter, cheap).
    pub fn received(&self) -> Result<u64> {
        match self {
            Dut::Manul(m) => {
                let peers = m.query("peers")?;
                let peer = peers["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["address"] == BLASTER)
                    .ok_or_else(|| anyhow!("no peer {BLASTER} in {peers}"))?;
                Ok(peer["accepted"].as_u64().unwrap_or(0))
            }
            Dut::Bird(b) => {
                let out = b.birdc("show protocols all blaster")?;
                Ok(bird_imported(&out).unwrap_or(0))
            }
            Dut::Gobgp(g) => {
                let out = g.cli(&["neighbor", BLASTER, "-j"])?;
                let json: Value = serde_json::from_str(&out).context("gobgp neighbor -j")?;
                Ok(gobgp_accepted(&json))
            }
        }
    }

    /// Routes in the whole RIB: manul `summary`, BIRD `show route count`,
    /// GoBGP `global rib summary`.
    pub fn rib_count(&self) -> Result<u64> {
        match self {
            Dut::Manul(m) => m.query("summary")?["routes"]
                .as_u64()
                .ok_or_else(|| anyhow!("no routes in summary")),
            Dut::Bird(b) => b.route_count(),
            Dut::Gobgp(g) => {
                let out = g.cli(&["global", "rib", "summary", "-a", "ipv4"])?;
                gobgp_destinations(&out).ok_or_else(|| anyhow!("unexpected summary: {out}"))
            }
        }
    }
}

/// `Routes: N imported, ...` of `birdc show protocols all`.
pub fn bird_imported(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Routes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The sum of `accepted` over the address families of `gobgp neighbor X -j`
/// (GoBGP leaves zero counters out).
pub fn gobgp_accepted(json: &Value) -> u64 {
    json["afi_safis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["state"]["accepted"].as_u64())
        .sum()
}

/// `Destination: N, Path: M` of `gobgp global rib summary`.
pub fn gobgp_destinations(out: &str) -> Option<u64> {
    let rest = out.split("Destination:").nth(1)?;
    rest.split(',').next()?.trim().parse().ok()
}

fn manul_config(pass: bool, filter: usize) -> String {
    let mut c = format!(
        r#"router_id = "{DUT_IN}"
asn = {DUT_AS}
listen = ["{DUT_IN}:179"{extra_listen}]

[[peer]]
address = "{BLASTER}"
asn = {BLASTER_AS}
passive = true
families = ["ipv4"]
export = "none"
{rules}"#,
        extra_listen = if pass {
            format!(", \"{DUT_OUT}:179\"")
        } else {
            String::new()
        },
        rules = crate::filter::manul(filter),
    );
    if pass {
        c.push_str(&format!(
            r#"
[[peer]]
address = "{SINK}"
asn = {SINK_AS}
families = ["ipv4"]
connect_retry = 1
export = "all"
"#
        ));
    }
    c
}

fn bird_config(pass: bool, filter: usize) -> String {
    let mut c = if filter > 0 {
        crate::filter::bird_function(filter)
    } else {
        String::new()
    };
    c.push_str(&format!(
        r#"
protocol bgp blaster {{
    local {DUT_IN} as {DUT_AS};
    neighbor {BLASTER} as {BLASTER_AS};
    passive on;
    enable extended messages on;
    ipv4 {{ {import} export none; }};
}}
"#,
        import = crate::filter::bird_import(filter)
    ));
    if pass {
        c.push_str(&format!(
            r#"
protocol bgp sink {{
    local {DUT_OUT} as {DUT_AS};
    neighbor {SINK} as {SINK_AS};
    connect delay time 1;
    enable extended messages on;
    ipv4 {{ import none; export all; }};
}}
"#
        ));
    }
    c
}

fn gobgp_config(pass: bool) -> String {
    let listen = if pass {
        format!("\"{DUT_IN}\", \"{DUT_OUT}\"")
    } else {
        format!("\"{DUT_IN}\"")
    };
    let mut c = format!(
        r#"[global.config]
  as = {DUT_AS}
  router-id = "{DUT_IN}"
  port = 179
  local-address-list = [{listen}]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{BLASTER}"
    peer-as = {BLASTER_AS}
  [neighbors.transport.config]
    passive-mode = true
    local-address = "{DUT_IN}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    );
    if pass {
        c.push_str(&format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{SINK}"
    peer-as = {SINK_AS}
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "{DUT_OUT}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
        ));
    }
    c
}

/// manul-bgpd in a namespace, with its status socket.
#[derive(Debug)]
pub struct Manul {
    pub daemon: Daemon,
    status: PathBuf,
    _dir: ScratchDir,
}

impl Manul {
    fn start(ns: &Netns, config: &str) -> Result<Self> {
        let dir = scratch::run().tempdir("manul-bgpd")?;
        let status = dir.path().join("status.sock");
        let conf = dir.path().join("bgpd.toml");
        std::fs::write(
            &conf,
            format!("status = {:?}\n{config}", status.display().to_string()),
        )?;
        let mut cmd = ns.command(sibling("manul-bgpd")?);
        cmd.arg(&conf).env("RUST_LOG", "info");
        let daemon = Daemon::spawn("manul-bgpd", cmd, &dir.path().join("bgpd.log"))?;
        let mut m = Manul {
            daemon,
            status,
            _dir: dir,
        };
        let every = Duration::from_millis(50);
        let ready = poll(
            Duration::from_secs(15),
            every,
            1,
            "manul-bgpd status",
            || {
                m.daemon.ensure_running()?;
                Ok(m.query("peers").ok())
            },
        );
        ready.map_err(|e| anyhow!("{e:#}\nlog:\n{}", m.daemon.log_tail(20)))?;
        Ok(m)
    }

    fn query(&self, command: &str) -> Result<Value> {
        let mut s = UnixStream::connect(&self.status)
            .with_context(|| format!("connecting {}", self.status.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(format!("{command}\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let v: Value =
            serde_json::from_str(&out).with_context(|| format!("status reply {out:?}"))?;
        if let Some(e) = v.get("error") {
            bail!("manul-bgpd status {command}: {e}");
        }
        Ok(v)
    }
}

/// CPU time (user + system) a process has used so far, seconds: a
/// measure that other load on the machine does not inflate much.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("odd stat"))? + 1..];
    // Fields 14 (utime) and 15 (stime); `rest` starts at field 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(1)
        .max(1);
    Ok(ticks as f64 / hz as f64)
}

/// Peak resident set size of a process, KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM for pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_counters() {
        let bird = "blaster    BGP        ---        up     12:00:00  Established\n  Channel ipv4\n    State:          UP\n    Routes:         100000 imported, 0 exported, 100000 preferred\n";
        assert_eq!(bird_imported(bird), Some(100000));
        let gobgp = serde_json::json!({"afi_safis": [{"state": {"accepted": 7, "received": 7}}]});
        assert_eq!(gobgp_accepted(&gobgp), 7);
        assert_eq!(
            gobgp_destinations("Table ipv4-unicast\nDestination: 1000000, Path: 1000000\n"),
            Some(1000000)
        );
    }
}
