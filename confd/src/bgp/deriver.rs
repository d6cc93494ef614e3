//! [`BgpDeriver`]: keeps the node's [`NodeBgpView`] and updates it from
//! batches of deltas, recomputing only what they touch.
//!
//! | delta | recomputed |
//! |---|---|
//! | BGPPeer `p` | the peerings of `p` |
//! | another Node `n` | the mesh peering with `n`, and every BGPPeer (`n` may be selected by it, be the node its `peerIP` names, or be peered back) |
//! | BGPFilter `f` | the BGPPeers that use `f` |
//! | this Node, a BGPConfiguration | everything (AS, addresses, mesh switch, reflector role feed every peering) |
//! | IPPool, affinity, borrowed block | the prefixes (a node has few) |
//! | WorkloadEndpoint | nothing |
//!
//! Peerings are kept per source and merged by address: when two sources
//! name the same address the one with the greater [`PeerSource`](super::view::PeerSource) wins (an
//! explicit BGPPeer over a reverse peering over the mesh; one naming this node over a selector
//! over a global one). The output, [`BgpChanges`], lists only the peers and
//! prefixes whose value changed: a change to one BGPPeer changes only the
//! peers it gives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::globals::derive_globals;
use super::peers::{self, Contribution};
use super::prefixes::derive_prefixes;
use super::view::{NodeBgpView, PeerView, PrefixView};
use crate::item::ItemKey;
use crate::snapshot::{Delta, Snapshot};

/// One source of peerings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SourceKey {
    Mesh(String),
    Peer(String),
}

/// What changed in the view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BgpChanges {
    /// Node-wide settings changed ([`NodeBgpView::globals`]).
    pub globals: bool,
    /// Peers whose view changed: the new one, or `None` when removed.
    pub peers: BTreeMap<IpAddr, Option<PeerView>>,
    /// Prefixes whose view changed: the new one, or `None` when withdrawn.
    pub prefixes: BTreeMap<IpNet, Option<PrefixView>>,
}

impl BgpChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.globals && self.peers.is_empty() && self.prefixes.is_empty()
    }
}

/// The incremental deriver for one node.
#[derive(Debug, Clone)]
pub struct BgpDeriver {
    me: String,
    view: NodeBgpView,
    initialized: bool,
    contributions: BTreeMap<SourceKey, Contribution>,
    by_address: BTreeMap<IpAddr, BTreeSet<SourceKey>>,
    peer_problems: BTreeMap<SourceKey, Vec<String>>,
    prefix_problems: Vec<String>,
}

/// The view of node `me` from scratch.
pub fn derive(snap: &Snapshot, me: &str) -> NodeBgpView {
    let mut d = BgpDeriver::new(me);
    d.reset(snap);
    d.view
}

impl BgpDeriver {
    /// A deriver for node `me`, with an empty view.
    pub fn new(me: impl Into<String>) -> Self {
        BgpDeriver {
            me: me.into(),
            view: NodeBgpView::default(),
            initialized: false,
            contributions: BTreeMap::new(),
            by_address: BTreeMap::new(),
            peer_problems: BTreeMap::new(),
            prefix_problems: Vec::new(),
        }
    }

    /// The current view.
    pub fn view(&self) -> &NodeBgpView {
        &self.view
    }

    /// Problems in the input (bad addresses, missing filters…), for logs
    /// and status.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.view.globals.problems.clone();
        out.extend(self.peer_problems.values().flatten().cloned());
        out.extend(self.prefix_problems.iter().cloned());
        out
    }

    /// Recompute everything from `snap`.
    pub fn reset(&mut self, snap: &Snapshot) -> BgpChanges {
        self.initialized = false;
        self.apply(snap, &[])
    }

    /// Bring the view up to `snap`, which is the previous snapshot with
    /// `deltas` applied.
    pub fn apply(&mut self, snap: &Snapshot, deltas: &[Delta]) -> BgpChanges {
        let me = self.me.clone();
        let mut full = !self.initialized;
        let mut prefixes = full;
        let mut sources = BTreeSet::new();
        let mut other_nodes = false;
        let mut filters = BTreeSet::new();
        for d in deltas {
            match &d.key {
                ItemKey::BgpConfig(_) => full = true,
                ItemKey::Node(n) if *n == me => full = true,
                ItemKey::Node(n) => {
                    sources.insert(SourceKey::Mesh(n.clone()));
                    other_nodes = true;
                }
                ItemKey::BgpPeer(p) => {
                    sources.insert(SourceKey::Peer(p.clone()));
                }
                ItemKey::BgpFilter(f) => {
                    filters.insert(f.clone());
                }
                ItemKey::IpPool(_) | ItemKey::Affinity(_) | ItemKey::Block(_) => prefixes = true,
                ItemKey::Workload { .. } | ItemKey::FelixConfig(_) => {}
            }
        }
        let mut changes = BgpChanges::default();
        if full {
            prefixes = true;
            let globals = derive_globals(snap, &me);
            changes.globals = globals != self.view.globals;
            self.view.globals = globals;
            sources.extend(self.contributions.keys().cloned());
            sources.extend(
                snap.nodes()
                    .filter(|(n, _)| *n != me)
                    .map(|(n, _)| SourceKey::Mesh(n.to_owned())),
            );
            sources.extend(snap.peers().map(|(p, _)| SourceKey::Peer(p.to_owned())));
        } else {
            for (name, peer) in snap.peers() {
                let filtered = peer.spec.filters.iter().any(|f| filters.contains(f));
                // Any BGPPeer may select, name or peer back with a node.
                if other_nodes || filtered {
                    sources.insert(SourceKey::Peer(name.to_owned()));
                }
            }
            // A peer removed or changed away from a filter: it is in `sources`
            // already through its own delta.
        }
        self.initialized = true;

        let mut touched = BTreeSet::new();
        for source in sources {
            let mut problems = Vec::new();
            let new = self.contribution(snap, &source, &mut problems);
            if problems.is_empty() {
                self.peer_problems.remove(&source);
            } else {
                self.peer_problems.insert(source.clone(), problems);
            }
            let old = self.contributions.remove(&source).unwrap_or_default();
            if old == new {
                if !new.is_empty() {
                    self.contributions.insert(source, new);
                }
                continue;
            }
            for addr in old.keys() {
                touched.insert(*addr);
                if let Some(set) = self.by_address.get_mut(addr) {
                    set.remove(&source);
                    if set.is_empty() {
                        self.by_address.remove(addr);
                    }
                }
            }
            for addr in new.keys() {
                touched.insert(*addr);
                self.by_address
                    .entry(*addr)
                    .or_default()
                    .insert(source.clone());
            }
            if !new.is_empty() {
                self.contributions.insert(source, new);
            }
        }
        for addr in touched {
            let winner = self.winner(&addr);
            if self.view.peers.get(&addr) != winner.as_ref() {
                match &winner {
                    Some(v) => self.view.peers.insert(addr, v.clone()),
                    None => self.view.peers.remove(&addr),
                };
                changes.peers.insert(addr, winner);
            }
        }

        if prefixes {
            let mut problems = Vec::new();
            let new = derive_prefixes(snap, &me, &mut problems);
            self.prefix_problems = problems;
            for (prefix, view) in &new {
                if self.view.prefixes.get(prefix) != Some(view) {
                    changes.prefixes.insert(*prefix, Some(view.clone()));
                }
            }
            for prefix in self.view.prefixes.keys() {
                if !new.contains_key(prefix) {
                    changes.prefixes.insert(*prefix, None);
                }
            }
            self.view.prefixes = new;
        }
        changes
    }

    fn contribution(
        &self,
        snap: &Snapshot,
        source: &SourceKey,
        problems: &mut Vec<String>,
    ) -> Contribution {
        let globals = &self.view.globals;
        match source {
            SourceKey::Mesh(n) if *n == self.me => Contribution::new(),
            SourceKey::Mesh(n) => match snap.node(n) {
                Some(node) => {
                    peers::mesh(globals, snap.global_bgp_config().map(|c| &c.spec), n, node)
                }
                None => Contribution::new(),
            },
            SourceKey::Peer(p) => match snap.bgp_peer(p) {
                Some(peer) => peers::bgp_peer(snap, &self.me, globals, p, peer, problems),
                None => Contribution::new(),
            },
        }
    }

    fn winner(&self, addr: &IpAddr) -> Option<PeerView> {
        self.by_address
            .get(addr)?
            .iter()
            .filter_map(|s| self.contributions.get(s)?.get(addr))
            .max_by(|a, b| a.source.cmp(&b.source))
            .cloned()
    }
}
