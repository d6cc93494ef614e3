//! Running a replay: each input line becomes an input to the core, then a
//! pass (and more while paths are being drained); what the core outputs
//! is rendered as `<` lines. The harness plays the driver: it keeps the
//! clock, the timers the core set (fired by `advance`), and which peer
//! index is which address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use manul_bgp::rib::PeerIndex;
use manul_bgp::session::events::PeerEvent;
use manul_bgp::session::peer::{LocalIdentity, our_capabilities};
use manul_bgp::speaker::PeerConfig;
use manul_bgp::speaker::core::{Core, Input, Now, Output, Timer};
use manul_bgp::wire::{AddPathMode, Capability, GracefulRestart, Open, negotiate};

use crate::inputs::{down_reason, peer_config, speaker, state, update};
use crate::render::{self, Names};
use crate::words::{self, Result, Words, community, duration, family, large_community};

/// The wall clock at the start of every replay (Unix seconds).
const UNIX_START: u64 = 1_700_000_000;

pub struct World {
    core: Option<Core>,
    start: Instant,
    elapsed: Duration,
    /// Peer index -> address, from the sessions the core started.
    names: HashMap<PeerIndex, IpAddr>,
    /// Address -> the latest index and configuration it had.
    peers: HashMap<IpAddr, (PeerIndex, PeerConfig)>,
    /// Timers set and not yet fired: when, in the order set.
    timers: Vec<(Instant, Timer)>,
    outputs: Vec<Output>,
}

impl World {
    pub fn new() -> Self {
        Self {
            core: None,
            start: Instant::now(),
            elapsed: Duration::ZERO,
            names: HashMap::new(),
            peers: HashMap::new(),
            timers: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.start + self.elapsed,
            unix_secs: UNIX_START + self.elapsed.as_secs(),
        }
    }

    fn core(&mut self) -> Result<&mut Core> {
        self.core
            .as_mut()
            .ok_or_else(|| "no speaker yet: start with `> speaker ...`".to_string())
    }

    fn index(&self, a: IpAddr) -> Result<PeerIndex> {
        self.peers
            .get(&a)
            .map(|(i, _)| *i)
            .ok_or_else(|| format!("no peer {a} was ever started"))
    }

    /// Run one input line (without its `> `); the output lines it causes.
    pub fn step(&mut self, line: &str) -> Result<Vec<String>> {
        let mut parts = line.split_whitespace();
        let command = parts.next().ok_or("empty input")?;
        let rest: Vec<&str> = parts.collect();
        let w = Words::parse(&rest);
        let mut lines = Vec::new();
        match command {
            "speaker" => {
                let now = self.now();
                let mut core = Core::new(speaker(&w)?, now);
                core.set_watch_best(true);
                self.core = Some(core);
                self.pass(&mut lines)?;
            }
            "watch-peers" => {
                let snapshot = self.core()?.watch_peers();
                self.collect(&mut lines)?;
                let names = self.names();
                lines.extend(snapshot.iter().map(|s| render::peer_status(&names, s)));
            }
            "advance" => {
                self.elapsed += duration(&w.arg::<String>(0, "duration")?)?;
                self.fire(&mut lines)?;
            }
            "stop-all" => {
                self.core()?.stop_all(w.flag("graceful"));
                self.collect(&mut lines)?;
            }
            "problem" => {
                let a: IpAddr = w.arg(0, "peer address")?;
                let message = rest[1..].join(" ");
                let peer = self.index(a)?;
                self.input(
                    Input::Peer(PeerEvent::Problem { peer, message }),
                    &mut lines,
                )?;
                return Ok(lines);
            }
            _ => {
                let input = self.input_of(command, &w)?;
                self.input(input, &mut lines)?;
            }
        }
        w.done()?;
        Ok(lines)
    }

    /// Give the core one input, then end the pass (and drain).
    fn input(&mut self, input: Input, lines: &mut Vec<String>) -> Result<()> {
        let now = self.now();
        if let Err(e) = self.core()?.handle(input, now) {
            lines.push(format!("error {e}"));
        }
        self.pass(lines)
    }

    /// End the pass, then more while paths are being drained.
    fn pass(&mut self, lines: &mut Vec<String>) -> Result<()> {
        let now = self.now();
        loop {
            let core = self.core()?;
            core.end_pass(now);
            self.collect(lines)?;
            let core = self.core()?;
            if !core.draining() {
                return Ok(());
            }
            core.drain_some();
        }
    }

    /// Fire the timers due now, earliest first.
    fn fire(&mut self, lines: &mut Vec<String>) -> Result<()> {
        let now = self.now().instant;
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= now)
                .min_by_key(|(i, (at, _))| (*at, *i))
                .map(|(i, _)| i);
            let Some(i) = due else { return Ok(()) };
            let (_, timer) = self.timers.remove(i);
            lines.push(self.names().fired(&timer));
            self.input(Input::Timer(timer), lines)?;
        }
    }

    fn names(&self) -> Names<'_> {
        Names {
            peers: &self.names,
            start: self.start,
            unix_start: UNIX_START,
        }
    }

    /// Take the core's outputs: note what the harness must remember, render.
    fn collect(&mut self, lines: &mut Vec<String>) -> Result<()> {
        let mut outputs = std::mem::take(&mut self.outputs);
        self.core()?.take_outputs(&mut outputs);
        for o in outputs.drain(..) {
            match &o {
                Output::StartSession { peer, cfg, .. } => {
                    self.names.insert(*peer, cfg.address);
                    self.peers.insert(cfg.address, (*peer, (**cfg).clone()));
                }
                Output::SetTimer { timer, at } => self.timers.push((*at, *timer)),
                _ => {}
            }
            lines.extend(render::output(&self.names(), &o));
        }
        self.outputs = outputs;
        Ok(())
    }

    /// The inputs that map one to one on the core's.
    fn input_of(&self, command: &str, w: &Words) -> Result<Input> {
        let peer = || -> Result<PeerIndex> { self.index(w.arg(0, "peer address")?) };
        Ok(match command {
            "add-peer" => Input::AddPeer(peer_config(w)?),
            "update-peer" => Input::UpdatePeer(peer_config(w)?),
            "remove-peer" => Input::RemovePeer(w.arg(0, "peer address")?),
            "originate" => Input::Originate {
                prefix: w.arg(0, "prefix")?,
                communities: w.list("communities", community)?,
                large_communities: w.list("large", large_community)?,
            },
            "withdraw" => Input::Withdraw(w.arg(0, "prefix")?),
            "connect" => Input::Incoming(w.arg::<SocketAddr>(0, "remote address:port")?),
            "state" => Input::Peer(PeerEvent::State {
                peer: peer()?,
                state: state(&w.arg::<String>(1, "state")?)?,
            }),
            "up" => {
                let a: IpAddr = w.arg(0, "peer address")?;
                let cfg = &self
                    .peers
                    .get(&a)
                    .ok_or_else(|| format!("no peer {a} was ever started"))?
                    .1;
                self.up(peer()?, cfg, w)?
            }
            "update" => Input::Peer(PeerEvent::Routes {
                peer: peer()?,
                changes: update(peer()?, w)?,
            }),
            "eor" => Input::Peer(PeerEvent::EndOfRib {
                peer: peer()?,
                family: family(&w.arg::<String>(1, "family")?)?,
            }),
            "refresh" => Input::Peer(PeerEvent::RouteRefresh {
                peer: peer()?,
                family: family(&w.arg::<String>(1, "family")?)?,
                subtype: w.opt("subtype")?.unwrap_or(0),
            }),
            "down" => Input::Peer(PeerEvent::Down {
                peer: peer()?,
                reason: down_reason(&w.arg::<String>(1, "reason")?)?,
            }),
            "ended" => Input::Peer(PeerEvent::Ended { peer: peer()? }),
            other => return Err(format!("unknown input {other:?}")),
        })
    }

    /// The session came up: our OPEN (as the session task makes it)
    /// negotiated against the peer's, built from the line.
    fn up(&self, peer: PeerIndex, cfg: &PeerConfig, w: &Words) -> Result<Input> {
        let speaker = self.core.as_ref().ok_or("no speaker")?.config();
        let local = LocalIdentity::of(speaker);
        let ours = Open {
            version: 4,
            asn: cfg.options.local_asn.unwrap_or(speaker.asn),
            hold_time: cfg.options.hold_time,
            router_id: speaker.router_id,
            capabilities: our_capabilities(&local, cfg),
        };
        let asn = w.opt("asn")?.unwrap_or(cfg.asn);
        let families = match w.list("families", family)? {
            f if f.is_empty() => cfg.options.families.clone(),
            f => f,
        };
        let mut caps: Vec<Capability> = families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::FourOctetAs(asn));
        if !w.flag("no-route-refresh") {
            caps.push(Capability::RouteRefresh);
        }
        if w.flag("enhanced-refresh") {
            caps.push(Capability::EnhancedRouteRefresh);
        }
        if w.flag("extended-next-hop") {
            caps.push(Capability::ExtendedNextHop(vec![(
                manul_bgp::types::Family::Ipv4Unicast,
                manul_bgp::types::afi::IPV6,
            )]));
        }
        if let Some(a) = w.opt::<String>("add-path")? {
            let mode = match a.as_str() {
                "receive" => AddPathMode::Receive,
                "send" => AddPathMode::Send,
                "both" => AddPathMode::Both,
                _ => return Err(format!("bad add-path={a} (receive, send, both)")),
            };
            caps.push(Capability::AddPath(
                families.iter().map(|f| (*f, mode)).collect(),
            ));
        }
        if let Some(restart_time) = w.opt::<u16>("gr")? {
            let forwarding = w.list("gr-forwarding", family)?;
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: w.flag("gr-restarting"),
                notification: false,
                restart_time,
                families: families
                    .iter()
                    .map(|f| (*f, forwarding.contains(f)))
                    .collect(),
            }));
        }
        let router_id = match (w.opt::<Ipv4Addr>("router-id")?, cfg.address) {
            (Some(id), _) => id,
            (None, IpAddr::V4(a)) => a,
            (None, IpAddr::V6(_)) => return Err("router-id= needed for an IPv6 peer".into()),
        };
        let theirs = Open {
            version: 4,
            asn,
            hold_time: w.opt("hold")?.unwrap_or(90),
            router_id,
            capabilities: caps,
        };
        let local_addr: IpAddr = match w.opt("local")? {
            Some(a) => a,
            None => IpAddr::V4(speaker.router_id),
        };
        Ok(Input::Peer(PeerEvent::Up {
            peer,
            negotiated: Box::new(negotiate(&ours, &theirs)),
            peer_router_id: router_id,
            peer_asn: asn,
            local: SocketAddr::new(local_addr, 179),
            remote: SocketAddr::new(cfg.address, cfg.port),
            interface: w.list("interface", words::parsed::<ipnet::IpNet>)?,
        }))
    }
}
