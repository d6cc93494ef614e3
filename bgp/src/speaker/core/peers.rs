//! Peers coming and going: configured ones added, changed and removed
//! through the API, dynamic ones accepted from listen ranges.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::fsm::State;
use crate::policy::{Policy, Verdict};
use crate::rib::{AdjRibOut, PeerIndex, PeerInfo};
use crate::session::events::PeerCommand;
use crate::speaker::core::drain::Drained;
use crate::speaker::core::{Core, Output, PeerEntry, Retired};
use crate::speaker::{ExportMode, ImportMode, PeerConfig, PeerError, PeerOptions};

/// The peer's import policy: its rules, then its mode's default.
fn import_policy(o: &PeerOptions) -> Policy {
    let default = match o.import {
        ImportMode::All => Verdict::Accept,
        ImportMode::None => Verdict::Reject,
    };
    Policy::new(o.import_rules.clone(), default)
}

/// The peer's export policy: its rules, then its mode's.
fn export_policy(o: &PeerOptions) -> Policy {
    let mut rules = o.export_rules.clone();
    let default = match o.export {
        ExportMode::Originated => {
            rules.extend(Policy::node_default_export_rules());
            Verdict::Reject
        }
        ExportMode::All => Verdict::Accept,
        ExportMode::None => Verdict::Reject,
    };
    Policy::new(rules, default)
}

impl Core {
    pub(super) fn add_peer(
        &mut self,
        cfg: PeerConfig,
        dynamic: bool,
    ) -> Result<PeerIndex, PeerError> {
        self.add_peer_after(cfg, dynamic, None)
    }

    /// Add a peer whose session starts only once that of `previous` (the
    /// peer it replaces, just stopped) has ended, so the old session's
    /// Cease reaches the neighbour before the new session's OPEN.
    fn add_peer_after(
        &mut self,
        cfg: PeerConfig,
        dynamic: bool,
        previous: Option<PeerIndex>,
    ) -> Result<PeerIndex, PeerError> {
        if self.by_addr.contains_key(&cfg.address) {
            return Err(PeerError::Exists(cfg.address));
        }
        let local_as = cfg.options.local_asn.unwrap_or(self.cfg.asn);
        let mut info = PeerInfo::new(cfg.address, Ipv4Addr::UNSPECIFIED, cfg.asn, local_as);
        info.rr_client = cfg.options.route_reflector_client;
        info.next_hop_self = cfg.options.next_hop_self;
        info.next_hop_keep = cfg.options.next_hop_keep;
        info.allow_own_as = cfg.options.allow_own_as;
        let index = self.rib.add_peer(
            info,
            import_policy(&cfg.options),
            export_policy(&cfg.options),
        );
        if let Some(pw) = &cfg.options.password {
            self.out.push(Output::ListenerKey {
                address: cfg.address,
                key: Some(pw.clone()),
            });
        }
        self.out.push(Output::StartSession {
            peer: index,
            cfg: Box::new(cfg.clone()),
            after: previous,
        });
        self.by_addr.insert(cfg.address, index);
        self.peers.insert(
            index,
            PeerEntry {
                asn: cfg.asn,
                cfg,
                adj_out: AdjRibOut::new(index),
                state: State::Idle,
                established_at: None,
                established_count: 0,
                negotiated: None,
                last_error: None,
                generation: 0,
                stale_families: BTreeSet::new(),
                eor: BTreeSet::new(),
                dynamic,
                malformed: Default::default(),
            },
        );
        Ok(index)
    }

    /// Remove a peer: its session ends with a Cease, its paths go.
    pub(super) fn remove_peer(&mut self, addr: IpAddr) -> Result<(), PeerError> {
        self.remove_peer_index(addr, "peer removed from configuration")
            .map(drop)
    }

    fn remove_peer_index(&mut self, addr: IpAddr, why: &str) -> Result<PeerIndex, PeerError> {
        let index = self.by_addr.remove(&addr).ok_or(PeerError::Unknown(addr))?;
        if let Some(mut entry) = self.peers.remove(&index) {
            self.out.push(Output::StopSession {
                peer: index,
                notify: Some(why.into()),
            });
            entry.adj_out.clear(&mut self.rib);
            if entry.cfg.options.password.is_some() {
                self.out.push(Output::ListenerKey {
                    address: addr,
                    key: None,
                });
            }
        }
        self.retired.insert(index, Retired::default());
        self.update_track_paths();
        self.queue_drain(index, Drained::All { forget: true });
        Ok(index)
    }

    /// Change a peer: a change to what shapes its session replaces the
    /// session; anything else applies to the running one.
    pub(super) fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), PeerError> {
        let index = *self
            .by_addr
            .get(&cfg.address)
            .ok_or(PeerError::Unknown(cfg.address))?;
        let Some(entry) = self.peers.get_mut(&index) else {
            return Err(PeerError::Unknown(cfg.address));
        };
        // What the peer sent is judged again (a route refresh) when what
        // we accept from it changed: the import policy, or how often our
        // AS may appear in its paths.
        let import_changed = entry.cfg.options.import != cfg.options.import
            || entry.cfg.options.import_rules != cfg.options.import_rules
            || entry.cfg.options.allow_own_as != cfg.options.allow_own_as;
        // A peer that cannot be asked (no route refresh capability, RFC
        // 2918 §2) has its session reset instead, as BIRD does: the table
        // keeps routes after import policy only, so what the new policy
        // accepts that the old one did not can come back no other way.
        let cannot_refresh = import_changed
            && entry.state == State::Established
            && entry.negotiated.as_ref().is_some_and(|n| !n.route_refresh);
        if entry.cfg.needs_reset(&cfg) || cannot_refresh {
            let dynamic = entry.dynamic;
            let why = if cannot_refresh {
                tracing::warn!(peer = %cfg.address, "the import policy changed and the peer does not support route refresh: resetting the session");
                "import policy changed; the peer does not support route refresh"
            } else {
                "peer removed from configuration"
            };
            let previous = self.remove_peer_index(cfg.address, why)?;
            return self.add_peer_after(cfg, dynamic, Some(previous)).map(drop);
        }
        let previous_export = self
            .rib
            .set_policies(
                index,
                import_policy(&cfg.options),
                export_policy(&cfg.options),
            )
            .ok();
        let previous_info = self.rib.peer(index).cloned();
        if let Some(mut info) = previous_info.clone() {
            info.rr_client = cfg.options.route_reflector_client;
            info.next_hop_self = cfg.options.next_hop_self;
            info.next_hop_keep = cfg.options.next_hop_keep;
            info.allow_own_as = cfg.options.allow_own_as;
            let _ = self.rib.set_peer_info(index, info);
        }
        entry.cfg = cfg.clone();
        let mut commands = vec![PeerCommand::Reconfigure(Box::new(cfg))];
        if entry.state == State::Established {
            if import_changed {
                // RFC 2918: ask for the routes again rather than reset.
                if let Some(n) = &entry.negotiated {
                    commands.extend(n.families.iter().map(|f| PeerCommand::RequestRefresh(*f)));
                }
            }
            if !self.deferring {
                // What decides the next hop or the reflection rules changed:
                // compare with what the old settings sent.
                let info_changed = previous_info.as_ref().is_some_and(|old| {
                    self.rib.peer(index).is_some_and(|new| {
                        (old.next_hop_self, old.next_hop_keep, old.rr_client)
                            != (new.next_hop_self, new.next_hop_keep, new.rr_client)
                    })
                });
                let out = match (info_changed, previous_export.as_ref(), previous_info) {
                    (true, Some(policy), Some(old)) => {
                        entry.adj_out.resync(&mut self.rib, policy, old)
                    }
                    _ => entry.adj_out.sync(&mut self.rib, previous_export.as_ref()),
                };
                if !out.is_empty() {
                    commands.push(PeerCommand::Send(out));
                }
            }
        }
        for command in commands {
            self.out.push(Output::ToPeer {
                peer: index,
                command,
            });
        }
        Ok(())
    }

    /// A connection from `remote`: to its configured peer, or to a new
    /// dynamic peer from a matching listen range; otherwise refused (no
    /// [`Output::Accept`]: the driver drops it).
    pub(super) fn incoming(&mut self, remote: SocketAddr) {
        let addr = match remote.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if let Some(&peer) = self.by_addr.get(&addr) {
            self.out.push(Output::Accept { peer });
            return;
        }
        let Some(range) = self
            .cfg
            .listen_ranges
            .iter()
            .find(|r| r.range.contains(&addr))
        else {
            tracing::debug!(%remote, "connection from an unknown address refused");
            return;
        };
        let mut options = range.options.clone();
        options.passive = true;
        let cfg = PeerConfig {
            address: addr,
            port: remote.port(),
            asn: range.asn.unwrap_or(0),
            options,
        };
        match self.add_peer(cfg, true) {
            Ok(peer) => self.out.push(Output::Accept { peer }),
            Err(e) => tracing::warn!(%remote, "dynamic peer: {e}"),
        }
    }
}
