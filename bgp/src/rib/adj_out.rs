//! Adj-RIB-Out (RFC 4271 §3.2, §9.2): what to send one peer when best paths
//! change, grouped by shared attributes and next hop so the encoder packs
//! many prefixes into each UPDATE.
//!
//! Nothing per prefix is stored: what a peer was sent for a prefix is, by
//! construction, the export of the prefix's previous best path, so each
//! change is exported twice (old and new best) and only a difference is
//! sent. RFC 4271 §3.2 lets an implementation keep the Adj-RIBs-Out in any
//! form; this one costs no memory per prefix and peer, which is what lets
//! a full table pass through at the size of one table.
//!
//! Two exceptions to "send what the export says":
//! - a route that cannot be encoded for the session (an IPv6 route whose
//!   next hop is IPv4: no IPv6 address to offer; an IPv4 route with an
//!   IPv6 next hop without RFC 8950) is not sent, not counted as
//!   advertised, and counted as unsendable with the reason (status);
//! - families the session did not negotiate are skipped (RFC 4760 §6).
//!
//! With ADD-PATH in a family (RFC 7911, `add_path`), a peer is sent
//! several paths per prefix, each with a path identifier, and what it was
//! sent is stored per prefix: the old set of paths cannot be derived from
//! the old best path alone. Identifiers are per prefix and stable for a
//! path's source (peer and received identifier): the smallest free one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::decided::Decided;
use super::export::ExportCache;
use super::interner::Attrs;
use super::path::Path;
use super::paths::Slot;
use super::peer::{PeerIndex, PeerInfo};
use super::table::Rib;
use crate::policy::Policy;
use crate::types::Family;
use crate::wire::Nlri;
use smallvec::SmallVec;

/// Which paths of a prefix go to an ADD-PATH peer (each with its own path
/// identifier), export policy and the RFC 4271 §9.2 / RFC 4456 rules
/// applied to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddPathSend {
    /// The best path and every path equal to it up to the multipath
    /// point of the decision process (RFC 4271 §9.1.2.2 a-d): what a
    /// multipath router installs, so the peer gets the same ECMP set.
    #[default]
    Ecmp,
    /// Every path the RIB holds for the prefix, the best first (BIRD's
    /// `add paths tx`).
    All,
}

/// What the session negotiated that decides what can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutSession {
    /// Negotiated families (RFC 4760), by [`family_index`].
    pub families: [bool; 2],
    /// IPv4 routes may carry IPv6 next hops (RFC 8950).
    pub extended_next_hop_v4: bool,
    /// Families in which path identifiers are sent (RFC 7911), and which
    /// paths.
    pub add_path_tx: [bool; 2],
    pub add_path_send: AddPathSend,
}

impl Default for OutSession {
    /// Everything goes (a peer the core has not told about its session:
    /// the RIB's own tests).
    fn default() -> Self {
        Self {
            families: [true; 2],
            extended_next_hop_v4: true,
            add_path_tx: [false; 2],
            add_path_send: AddPathSend::Ecmp,
        }
    }
}

/// 0 for IPv4, 1 for IPv6.
pub fn family_index(f: Family) -> usize {
    match f {
        Family::Ipv4Unicast => 0,
        Family::Ipv6Unicast => 1,
    }
}

/// Whether a route of `family` with `next_hop` can be encoded on a
/// session; why not (RFC 4760 §3: the next hop's family follows the
/// NLRI's; RFC 8950 lifts that for IPv4 NLRI when negotiated).
pub fn encodable(
    family: Family,
    next_hop: IpAddr,
    session: &OutSession,
) -> Result<(), &'static str> {
    match (family, next_hop) {
        (Family::Ipv4Unicast, IpAddr::V4(_)) | (Family::Ipv6Unicast, IpAddr::V6(_)) => Ok(()),
        (Family::Ipv4Unicast, IpAddr::V6(_)) if session.extended_next_hop_v4 => Ok(()),
        (Family::Ipv4Unicast, IpAddr::V6(_)) => Err(
            "IPv4 route with an IPv6 next hop: the peer did not negotiate extended next hop (RFC 8950), and the session's interface has no IPv4 address",
        ),
        (Family::Ipv6Unicast, IpAddr::V4(_)) => Err(
            "IPv6 route with no IPv6 next hop: the session's interface has no global IPv6 address (set the peer's next_hop_v6)",
        ),
    }
}

/// Prefixes to announce with the same attributes and next hop. The
/// attributes hold no NEXT_HOP: the encoder puts `next_hop` in NEXT_HOP or
/// MP_REACH_NLRI as the family requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutGroup {
    pub family: Family,
    pub attrs: Attrs,
    pub next_hop: IpAddr,
    /// Sent after an IPv6 `next_hop` (RFC 2545 §3): ours, when we are the
    /// next hop and share a link with the peer.
    pub link_local: Option<Ipv6Addr>,
    pub prefixes: Vec<IpNet>,
    /// ADD-PATH identifiers (RFC 7911), one per prefix; empty without.
    pub path_ids: Vec<u32>,
}

/// What to send to a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutUpdate {
    pub withdrawn: Vec<IpNet>,
    /// Withdrawn paths of ADD-PATH families, with their identifiers.
    pub withdrawn_paths: Vec<Nlri>,
    pub announce: Vec<OutGroup>,
}

impl OutUpdate {
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.withdrawn_paths.is_empty() && self.announce.is_empty()
    }
}

/// Collects announcements into groups of shared attributes and next hop.
#[derive(Default)]
struct Builder {
    out: OutUpdate,
    groups: HashMap<(usize, IpAddr, Family), usize, FxBuildHasher>,
    /// The group of the last announcement (consecutive prefixes mostly
    /// share one), to skip the lookup.
    last: Option<((usize, IpAddr, Family), usize)>,
    /// Our IPv6 next hop and the link-local address sent with it.
    link_local: Option<(Ipv6Addr, Ipv6Addr)>,
}

impl Builder {
    fn new(rib: &Rib, peer: PeerIndex) -> Self {
        let link_local = rib
            .peer(peer)
            .and_then(|i| Some((i.local_v6?, i.local_link_local?)));
        Self {
            link_local,
            ..Self::default()
        }
    }

    fn announce_path(&mut self, prefix: IpNet, attrs: &Attrs, next_hop: IpAddr, id: u32) {
        let i = self.group(prefix, attrs, next_hop);
        let g = &mut self.out.announce[i];
        g.prefixes.push(prefix);
        g.path_ids.push(id);
    }

    fn announce(&mut self, prefix: IpNet, attrs: &Attrs, next_hop: IpAddr) {
        let i = self.group(prefix, attrs, next_hop);
        self.out.announce[i].prefixes.push(prefix);
    }

    fn group(&mut self, prefix: IpNet, attrs: &Attrs, next_hop: IpAddr) -> usize {
        let family = Family::of(&prefix);
        let key = (Attrs::as_ptr(attrs) as usize, next_hop, family);
        match self.last {
            Some((k, i)) if k == key => i,
            _ => {
                let announce = &mut self.out.announce;
                let link_local = match (self.link_local, next_hop) {
                    (Some((ours, ll)), IpAddr::V6(nh)) if nh == ours => Some(ll),
                    _ => None,
                };
                let i = *self.groups.entry(key).or_insert_with(|| {
                    announce.push(OutGroup {
                        family,
                        attrs: Attrs::clone(attrs),
                        next_hop,
                        link_local,
                        prefixes: Vec::new(),
                        path_ids: Vec::new(),
                    });
                    announce.len() - 1
                });
                self.last = Some((key, i));
                i
            }
        }
    }
}

/// One path sent to an ADD-PATH peer.
#[derive(Debug)]
struct SentPath {
    /// Where it came from: peer and received path identifier.
    source: (PeerIndex, u32),
    /// The identifier it was sent with.
    id: u32,
    attrs: Attrs,
    next_hop: IpAddr,
    /// Encodable, so sent (else counted as unsendable).
    sent: bool,
}

type SentPaths = SmallVec<[SentPath; 2]>;

/// One peer's Adj-RIB-Out: a count of what it holds from us (and, in
/// ADD-PATH families, what paths it holds).
#[derive(Debug)]
pub struct AdjRibOut {
    peer: PeerIndex,
    advertised: usize,
    session: OutSession,
    /// Prefixes the export wanted sent that cannot be encoded.
    unsendable: usize,
    last_unsendable: Option<String>,
    /// ADD-PATH families: the paths sent (or unsendable) per prefix.
    paths: HashMap<IpNet, SentPaths, FxBuildHasher>,
    /// The peer's address, for the log.
    address: Option<IpAddr>,
}

type Exported = Option<(Attrs, IpAddr)>;

fn same(a: &Exported, b: &Exported) -> bool {
    match (a, b) {
        (Some((aa, an)), Some((ba, bn))) => Attrs::ptr_eq(aa, ba) && an == bn,
        (None, None) => true,
        _ => false,
    }
}

impl AdjRibOut {
    pub fn new(peer: PeerIndex) -> Self {
        Self {
            peer,
            advertised: 0,
            session: OutSession::default(),
            unsendable: 0,
            last_unsendable: None,
            paths: HashMap::default(),
            address: None,
        }
    }

    /// The session came up with `session`'s parameters (it holds nothing
    /// from us yet).
    pub fn start(&mut self, rib: &mut Rib, session: OutSession) {
        self.clear(rib);
        self.session = session;
        self.address = rib.peer(self.peer).map(|i| i.address);
    }

    /// Whether some family sends more than the best path (ADD-PATH).
    pub fn sends_paths(&self) -> bool {
        self.session.add_path_tx.contains(&true)
    }

    /// Number of prefixes advertised.
    pub fn len(&self) -> usize {
        self.advertised
    }

    /// Number of prefixes the export would send that cannot be encoded.
    pub fn unsendable(&self) -> usize {
        self.unsendable
    }

    /// Why the last unsendable prefix could not be sent, with the prefix.
    pub fn last_unsendable(&self) -> Option<&str> {
        self.last_unsendable.as_deref()
    }

    fn negotiated(&self, prefix: &IpNet) -> bool {
        self.session.families[family_index(Family::of(prefix))]
    }

    fn add_path(&self, prefix: &IpNet) -> bool {
        self.session.add_path_tx[family_index(Family::of(prefix))]
    }

    /// Whether an export for `prefix` can be encoded; records why not.
    fn check(&mut self, prefix: &IpNet, e: &Exported, note: bool) -> bool {
        match e {
            Some((_, nh)) => self.check_hop(prefix, *nh, note),
            None => false,
        }
    }

    /// Whether a route for `prefix` with next hop `nh` can be encoded;
    /// with `note`, records (and logs, once per reason) why not.
    fn check_hop(&mut self, prefix: &IpNet, nh: IpAddr, note: bool) -> bool {
        match encodable(Family::of(prefix), nh, &self.session) {
            Ok(()) => true,
            Err(why) => {
                if note {
                    // One log line per reason while prefixes stay unsendable
                    // (a full table must not log a line per prefix).
                    let known = self
                        .last_unsendable
                        .as_deref()
                        .is_some_and(|l| l.ends_with(why));
                    if !known {
                        let peer = self.address.map(|a| a.to_string()).unwrap_or_default();
                        tracing::warn!(%peer, %prefix, next_hop = %nh, "not advertised (and others like it): {why}");
                    }
                    self.last_unsendable = Some(format!("{prefix}: {why}"));
                }
                false
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.advertised == 0
    }

    /// What this peer gets for one prefix whose best path went from `old`
    /// to `new` (`old_policy`: the export policy `old` was sent under, when
    /// it is not the current one).
    fn diff(
        &mut self,
        rib: &mut Rib,
        cache: &mut ExportCache,
        out: &mut Builder,
        prefix: IpNet,
        (old, new): (Option<&Path>, Option<&Path>),
        old_policy: Option<&Policy>,
    ) {
        let peer = self.peer;
        let was = old.and_then(|p| rib.export_route_with(peer, &prefix, p, cache, old_policy));
        let now = new.and_then(|p| rib.export_route(peer, &prefix, p, cache));
        self.record(rib, out, prefix, was, now);
    }

    /// Record what changes for `prefix`: it was sent `was`, it gets `now`.
    fn record(
        &mut self,
        rib: &mut Rib,
        out: &mut Builder,
        prefix: IpNet,
        was: Exported,
        now: Exported,
    ) {
        let (was_ok, now_ok) = (
            self.check(&prefix, &was, false),
            self.check(&prefix, &now, true),
        );
        let (was_bad, now_bad) = (was.is_some() && !was_ok, now.is_some() && !now_ok);
        self.unsendable =
            (self.unsendable + usize::from(now_bad)).saturating_sub(usize::from(was_bad));
        if self.unsendable == 0 {
            self.last_unsendable = None;
        }
        let (was, now) = match (was_ok, now_ok) {
            (true, true) => (was, now),
            _ => {
                let keep = |e: Exported, ok: bool, rib: &mut Rib| match (e, ok) {
                    (Some((a, nh)), true) => Some((a, nh)),
                    (Some((a, _)), false) => {
                        rib.release(a);
                        None
                    }
                    (None, _) => None,
                };
                (keep(was, was_ok, rib), keep(now, now_ok, rib))
            }
        };
        match (&was, &now) {
            (None, None) => {}
            (Some(_), None) => {
                out.out.withdrawn.push(prefix);
                self.advertised = self.advertised.saturating_sub(1);
            }
            (None, Some((a, nh))) => {
                out.announce(prefix, a, *nh);
                self.advertised += 1;
            }
            (Some(_), Some((a, nh))) => {
                if !same(&was, &now) {
                    out.announce(prefix, a, *nh);
                }
            }
        }
        for (a, _) in was.into_iter().chain(now) {
            rib.release(a);
        }
    }

    /// What a batch of decisions ([`Rib::take_decided`], each prefix at
    /// most once) means for this peer.
    pub fn apply(&mut self, rib: &mut Rib, decided: &Decided) -> OutUpdate {
        let mut cache = ExportCache::default();
        let mut out = Builder::new(rib, self.peer);
        let peer = self.peer;
        let all_families = self.session.families == [true; 2];
        let add_path = self.sends_paths();
        let export = |rib: &mut Rib, cache: &mut ExportCache, prefix: &IpNet, slot: Slot| {
            let route = rib.route(slot);
            // Never back to the peer it came from (the common case of a
            // full table arriving): decided without making the path.
            if route.peer == peer {
                return None;
            }
            let path = route.path(slot.path_id);
            rib.export_route(peer, prefix, &path, cache)
        };
        for d in decided.iter() {
            if !all_families && !self.negotiated(&d.prefix) {
                continue;
            }
            if add_path && self.add_path(&d.prefix) {
                self.paths_changed(rib, &mut cache, &mut out, d.prefix, None);
                continue;
            }
            if d.paths_only {
                continue;
            }
            let was = d
                .previous
                .and_then(|s| export(rib, &mut cache, &d.prefix, s));
            let now = d.best.and_then(|s| export(rib, &mut cache, &d.prefix, s));
            if was.is_none() && now.is_none() {
                // Nothing for this peer (a route it sent us itself).
                continue;
            }
            self.record(rib, &mut out, d.prefix, was, now);
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out.out
    }

    /// Advertise the whole Loc-RIB: to a peer that holds nothing from us
    /// (`previous` is `None`: session up, route refresh), or to one whose
    /// export policy was `previous` until now (only the difference goes).
    pub fn sync(&mut self, rib: &mut Rib, previous: Option<&Policy>) -> OutUpdate {
        let mut cache = ExportCache::default();
        let mut out = Builder::new(rib, self.peer);
        if previous.is_none() {
            self.clear(rib);
        }
        for prefix in rib.prefixes() {
            if !self.negotiated(&prefix) {
                continue;
            }
            if self.add_path(&prefix) {
                self.paths_changed(rib, &mut cache, &mut out, prefix, previous);
                continue;
            }
            let Some(best) = rib.best(&prefix) else {
                continue;
            };
            let old = previous.map(|_| &best);
            self.diff(
                rib,
                &mut cache,
                &mut out,
                prefix,
                (old, Some(&best)),
                previous,
            );
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out.out
    }

    /// [`Self::sync`] when the peer's own settings changed as well
    /// (next-hop-self, next-hop-keep, reflector client): what it was sent
    /// is what `previous` gave under `previous_info`, since for a peer
    /// without ADD-PATH it is derived rather than stored. ADD-PATH peers
    /// keep what they were sent, so [`Self::sync`]'s comparison applies.
    pub fn resync(
        &mut self,
        rib: &mut Rib,
        previous: &Policy,
        previous_info: PeerInfo,
    ) -> OutUpdate {
        let Some(current) = rib.peer(self.peer).cloned() else {
            return OutUpdate::default();
        };
        let _ = rib.set_peer_info(self.peer, previous_info);
        let mut cache = ExportCache::default();
        let mut was = Vec::new();
        let mut add_path = Vec::new();
        for prefix in rib.prefixes() {
            if !self.negotiated(&prefix) {
                continue;
            }
            if self.add_path(&prefix) {
                add_path.push(prefix);
                continue;
            }
            if let Some(best) = rib.best(&prefix) {
                let sent =
                    rib.export_route_with(self.peer, &prefix, &best, &mut cache, Some(previous));
                was.push((prefix, best, sent));
            }
        }
        for handle in std::mem::take(&mut cache).into_handles() {
            rib.release(handle);
        }
        let _ = rib.set_peer_info(self.peer, current);
        let mut out = Builder::new(rib, self.peer);
        for (prefix, best, sent) in was {
            let now = rib.export_route(self.peer, &prefix, &best, &mut cache);
            self.record(rib, &mut out, prefix, sent, now);
        }
        for prefix in add_path {
            self.paths_changed(rib, &mut cache, &mut out, prefix, Some(previous));
        }
        for handle in cache.into_handles() {
            rib.release(handle);
        }
        out.out
    }

    /// The session went down: it holds nothing from us any more.
    pub fn clear(&mut self, rib: &mut Rib) {
        self.advertised = 0;
        self.unsendable = 0;
        self.last_unsendable = None;
        for (_, sent) in self.paths.drain() {
            for p in sent {
                rib.release(p.attrs);
            }
        }
    }

    /// ADD-PATH (RFC 7911): bring what the peer holds for `prefix` to the
    /// prefix's path set now ([`Rib::path_set`]), each path exported on
    /// its own; paths gone are withdrawn by identifier, new or changed
    /// ones announced. `_previous` (an export policy change) needs nothing
    /// more: what was sent is stored.
    fn paths_changed(
        &mut self,
        rib: &mut Rib,
        cache: &mut ExportCache,
        out: &mut Builder,
        prefix: IpNet,
        _previous: Option<&Policy>,
    ) {
        let set = rib.path_set(&prefix, self.session.add_path_send);
        let old = self.paths.remove(&prefix).unwrap_or_default();
        let mut new = SentPaths::new();
        for path in &set {
            let Some((attrs, nh)) = rib.export_route(self.peer, &prefix, path, cache) else {
                continue;
            };
            let source = (path.peer, path.path_id);
            let sent = self.check_hop(&prefix, nh, true);
            // Its identifier: the one this source had, else the smallest
            // not taken by the paths kept or the others being added.
            let kept = |id: u32| {
                old.iter()
                    .any(|p| p.id == id && set.iter().any(|s| (s.peer, s.path_id) == p.source))
            };
            let id = match old.iter().find(|p| p.source == source) {
                Some(p) => p.id,
                None => (1..u32::MAX)
                    .find(|&id| !kept(id) && !new.iter().any(|p: &SentPath| p.id == id))
                    .unwrap_or(u32::MAX),
            };
            new.push(SentPath {
                source,
                id,
                attrs,
                next_hop: nh,
                sent,
            });
        }
        for p in &old {
            let still = new.iter().any(|n| n.id == p.id && n.sent);
            if p.sent && !still {
                out.out
                    .withdrawn_paths
                    .push(Nlri::with_path_id(prefix, p.id));
            }
        }
        for n in &new {
            let same = old.iter().any(|p| {
                p.id == n.id
                    && p.sent
                    && Attrs::ptr_eq(&p.attrs, &n.attrs)
                    && p.next_hop == n.next_hop
            });
            if n.sent && !same {
                out.announce_path(prefix, &n.attrs, n.next_hop, n.id);
            }
        }
        let count = |v: &SentPaths| {
            (
                usize::from(v.iter().any(|p| p.sent)),
                usize::from(v.iter().any(|p| !p.sent)),
            )
        };
        let ((old_sent, old_bad), (new_sent, new_bad)) = (count(&old), count(&new));
        self.advertised = (self.advertised + new_sent).saturating_sub(old_sent);
        self.unsendable = (self.unsendable + new_bad).saturating_sub(old_bad);
        if self.unsendable == 0 {
            self.last_unsendable = None;
        }
        for p in old {
            rib.release(p.attrs);
        }
        if !new.is_empty() {
            self.paths.insert(prefix, new);
        }
    }
}
