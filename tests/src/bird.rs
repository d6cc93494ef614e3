//! A real BIRD 2 daemon inside a test namespace.
//!
//! The harness writes a preamble (`router id`, `log stderr`, `protocol
//! device`) before the caller's configuration; BIRD runs in the foreground
//! with its control socket and log in a scratch dir and stops on drop. BIRD
//! touches the kernel's routing table only if asked ([`BirdBuilder::kernel_export`]).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::scratch::{self, ScratchDir};
use crate::{Daemon, Netns, try_wait_until};

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Options for starting a [`Bird`].
#[derive(Debug)]
pub struct BirdBuilder {
    ns: Netns,
    router_id: Option<Ipv4Addr>,
    kernel_export: bool,
}

impl BirdBuilder {
    /// BIRD's router ID; without one BIRD picks an interface address.
    pub fn router_id(mut self, id: Ipv4Addr) -> Self {
        self.router_id = Some(id);
        self
    }

    /// Export every route to the namespace's kernel table (IPv4 and IPv6).
    pub fn kernel_export(mut self, yes: bool) -> Self {
        self.kernel_export = yes;
        self
    }

    /// Start BIRD with `config` (protocols, filters...) after the preamble;
    /// returns once the control socket answers.
    pub fn start(self, config: &str) -> Result<Bird> {
        crate::require::bin("bird")?;
        crate::require::bin("birdc")?;
        let dir = scratch::run().tempdir("bird")?;
        let conf_path = dir.path().join("bird.conf");
        let socket = dir.path().join("bird.ctl");
        let mut conf = String::from("log stderr all;\nprotocol device {}\n");
        if let Some(id) = self.router_id {
            conf.insert_str(0, &format!("router id {id};\n"));
        }
        if self.kernel_export {
            conf.push_str("protocol kernel { ipv4 { export all; }; }\n");
            conf.push_str("protocol kernel { ipv6 { export all; }; }\n");
        }
        conf.push_str(config);
        std::fs::write(&conf_path, &conf).context("writing bird.conf")?;

        let mut cmd = self.ns.command("bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(&conf_path)
            .arg("-s")
            .arg(&socket);
        let daemon = Daemon::spawn("bird", cmd, &dir.path().join("bird.log"))?;
        let mut bird = Bird {
            daemon,
            socket,
            ns: self.ns,
            dir,
        };
        let status = try_wait_until(START_TIMEOUT, "BIRD's control socket", || {
            bird.daemon.ensure_running().map_err(|e| format!("{e:#}"))?;
            bird.birdc("show status").map_err(|e| format!("{e:#}"))
        });
        status.map_err(|e| anyhow!("{e}\nconfig:\n{conf}"))?;
        Ok(bird)
    }
}

/// A running BIRD; stopped on drop.
#[derive(Debug)]
pub struct Bird {
    daemon: Daemon,
    socket: PathBuf,
    ns: Netns,
    dir: ScratchDir,
}

/// One row of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolStatus {
    pub name: String,
    pub proto: String,
    /// `up`, `down`, `start`...
    pub state: String,
    /// When the state last changed (`16:20:01.123`): a session that was
    /// reset shows a later time.
    pub since: String,
    /// For BGP: `Established`, `Active`, `Connect`, `Idle`, possibly with a reason.
    pub info: String,
}

impl Bird {
    pub fn builder(ns: &Netns) -> BirdBuilder {
        BirdBuilder {
            ns: ns.clone(),
            router_id: None,
            kernel_export: false,
        }
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Scratch dir holding bird.conf, bird.ctl and bird.log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Run a `birdc` command (`"show route count"`) and return its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let mut cmd = std::process::Command::new("birdc");
        cmd.arg("-s")
            .arg(&self.socket)
            .args(command.split_whitespace());
        let out = crate::netns::output_of(cmd, &format!("birdc {command}"))?;
        // birdc exits 0 on some errors; BIRD error replies start with a 4 or
        // 8/9xxx code in its raw protocol but in text mode say so plainly.
        if out.contains("Unable to connect") || out.contains("syntax error") {
            anyhow::bail!("birdc {command}: {}", out.trim());
        }
        Ok(out)
    }

    /// `birdc show protocols all`.
    pub fn show_protocols_all(&self) -> Result<String> {
        self.birdc("show protocols all")
    }

    /// The status of one protocol, `None` if BIRD has no such protocol.
    pub fn protocol(&self, name: &str) -> Result<Option<ProtocolStatus>> {
        let out = self.birdc("show protocols")?;
        Ok(parse_protocols(&out).into_iter().find(|p| p.name == name))
    }

    /// Wait until BGP protocol `name` is Established; the error quotes
    /// `show protocols all <name>` and the log tail.
    pub fn wait_established(&self, name: &str, timeout: Duration) -> Result<()> {
        try_wait_until(
            timeout,
            &format!("BIRD protocol {name} Established"),
            || match self.protocol(name) {
                Ok(Some(p)) if p.info.starts_with("Established") => Ok(()),
                Ok(Some(p)) => Err(format!("{} {}", p.state, p.info)),
                Ok(None) => Err("no such protocol".to_string()),
                Err(e) => Err(format!("{e:#}")),
            },
        )
        .map_err(|e| {
            let detail = self
                .birdc(&format!("show protocols all {name}"))
                .unwrap_or_default();
            anyhow!("{e}\n{detail}\nlog:\n{}", self.daemon.log_tail(20))
        })
    }

    /// Total of "N of M routes" over every table in `show route count`.
    pub fn route_count(&self) -> Result<u64> {
        let out = self.birdc("show route count")?;
        parse_route_count(&out).ok_or_else(|| anyhow!("unexpected `show route count`: {out}"))
    }

    /// Wait until BIRD holds a route for `prefix`; returns `show route
    /// <prefix> all`. The error quotes the whole `show route`.
    pub fn wait_route(&self, prefix: &str, timeout: Duration) -> Result<String> {
        try_wait_until(timeout, &format!("BIRD to learn {prefix}"), || {
            match self.has_route(prefix) {
                Ok(true) => Ok(()),
                Ok(false) => Err(self.birdc("show route").unwrap_or_default()),
                Err(e) => Err(format!("{e:#}")),
            }
        })?;
        self.birdc(&format!("show route {prefix} all"))
    }

    /// Does BIRD hold a route for exactly `prefix` (`10.0.0.0/24`)?
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        match self.birdc(&format!("show route {prefix}")) {
            Ok(out) => Ok(out.lines().any(|l| l.starts_with(prefix))),
            // birdc exits 1 on BIRD's "Network not found" reply: an answer.
            Err(e) if format!("{e:#}").contains("Network not found") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Parse `show protocols` by the header's column positions (Info may hold spaces).
pub fn parse_protocols(out: &str) -> Vec<ProtocolStatus> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("Name"));
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let info_col = header.find("Info").unwrap_or(header.len());
    lines
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(ProtocolStatus {
                name: f.next()?.to_string(),
                proto: f.next()?.to_string(),
                state: f.nth(1)?.to_string(),
                since: f.next().unwrap_or_default().to_string(),
                info: l.get(info_col..).unwrap_or("").trim().to_string(),
            })
        })
        .collect()
}

/// Sum N over lines "N of M routes for K networks in table T" (not the
/// "Total:" line BIRD adds when several tables are shown).
pub fn parse_route_count(out: &str) -> Option<u64> {
    let counts: Vec<u64> = out
        .lines()
        .filter(|l| l.contains(" routes for ") && l.contains(" in table "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protocol_rows_with_spaces_in_info() {
        let out = "BIRD 2.0.12 ready.\n\
Name       Proto      Table      State  Since         Info\n\
device1    Device     ---        up     16:20:01.123  \n\
peer1      BGP        ---        start  16:20:01.123  Active        Socket: Connection refused\n\
peer2      BGP        ---        up     16:20:03.001  Established   \n";
        let p = parse_protocols(out);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].name, "peer1");
        assert_eq!(p[1].state, "start");
        assert_eq!(p[2].since, "16:20:03.001");
        assert_eq!(p[1].info, "Active        Socket: Connection refused");
        assert_eq!(p[2].info, "Established");
        assert_eq!(p[0].info, "");
    }

    #[test]
    fn sums_route_counts_over_tables() {
        let out = "BIRD 2.0.12 ready.\n3 of 3 routes for 3 networks in table master4\n\
1 of 2 routes for 1 networks in table master6\n\
Total: 4 of 5 routes for 4 networks in 2 tables\n";
        assert_eq!(parse_route_count(out), Some(4));
        assert_eq!(parse_route_count("BIRD 2.0.12 ready.\n"), None);
    }
}
