//! The decision process (RFC 4271 §9.1): which received routes may be used
//! at all, and which one is best for a prefix.
//!
//! Order of preference, each step only breaking ties left by the ones
//! before (RFC 4271 §9.1.2.2 as an elimination over the candidate set):
//!
//! 0. Locally originated routes first. Our choice, like a weight: a route
//!    we originate beats any learned one for the same prefix.
//! 1. Highest LOCAL_PREF (RFC 4271 §9.1.1; 100 when absent).
//! 2. Shortest AS_PATH (§9.1.2.2 a; a set counts 1, confed segments 0).
//! 3. Lowest ORIGIN (§9.1.2.2 b).
//! 4. Lowest MED, compared only among routes from the same neighbouring AS
//!    (§9.1.2.2 c; absent MED is 0).
//! 5. eBGP-learned over iBGP-learned (§9.1.2.2 d). (IGP cost, §9.1.2.2 e,
//!    is not used: next hops are taken as equally close.)
//! 6. Lowest BGP Identifier, the ORIGINATOR_ID when present (§9.1.2.2 f,
//!    RFC 4456 §9).
//! 7. Shortest CLUSTER_LIST (RFC 4456 §9).
//! 8. Lowest peer address (§9.1.2.2 g), then peer index and path ID so
//!    that the outcome never depends on insertion order.
//!
//! The multipath set is what is left after step 5: equal up to the
//! router-ID tie-break and all of one kind (eBGP or iBGP).

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr};

use super::aspath;
use super::path::{NextHops, Path, Selection};
use super::peer::{PeerIndex, PeerInfo, PeerKind, RibConfig};
use crate::types::Asn;
use crate::wire::{Origin, PathAttributes};

/// LOCAL_PREF assumed when a route carries none (RFC 4271 §9.1.1 leaves the
/// degree of preference to local policy; 100 is the common default).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Why a received route may not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// Our AS appears more often than allowed (RFC 4271 §9.1.2).
    AsLoop,
    /// ORIGINATOR_ID is our router ID (RFC 4456 §8).
    OriginatorIsUs,
    /// CLUSTER_LIST contains our cluster ID (RFC 4456 §8).
    ClusterLoop,
}

/// Loop checks on a received route's attributes; `session_as` is the AS we
/// present on the session it came in on (checked besides the configured
/// one), `allow_own_as` how often either may appear (the peer's
/// allowas-in).
pub fn check_loops(
    attrs: &PathAttributes,
    cfg: &RibConfig,
    session_as: Asn,
    allow_own_as: u8,
) -> Result<(), Ineligible> {
    let path = attrs.as_path.as_ref();
    let allowed = usize::from(allow_own_as);
    // RFC 4271 §9.1.2: a route whose AS_PATH contains our AS is excluded;
    // "allowas-in" tolerates up to `allow_own_as` occurrences.
    if aspath::count(path, cfg.local_as) > allowed
        || (session_as != cfg.local_as && aspath::count(path, session_as) > allowed)
    {
        return Err(Ineligible::AsLoop);
    }
    // RFC 4456 §8: ignore a route carrying our own ORIGINATOR_ID or CLUSTER_ID.
    if attrs.originator_id == Some(cfg.router_id) {
        return Err(Ineligible::OriginatorIsUs);
    }
    if attrs.cluster_list.contains(&cfg.cluster_id()) {
        return Err(Ineligible::ClusterLoop);
    }
    Ok(())
}

/// What the steps compare, computed once per candidate.
struct Key {
    local: bool,
    local_pref: u32,
    as_len: u32,
    origin: Origin,
    neighbor_as: Option<Asn>,
    med: u32,
    ibgp: bool,
    router_id: u32,
    cluster_len: usize,
    address: IpAddr,
    peer: PeerIndex,
    path_id: u32,
}

impl Key {
    fn of(path: &Path, peer: Option<&PeerInfo>) -> Self {
        let a = &path.attrs;
        let peer_router_id = peer.map_or(Ipv4Addr::UNSPECIFIED, |p| p.router_id);
        Key {
            local: path.peer.is_local(),
            local_pref: a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            as_len: aspath::path_len(a.as_path.as_ref()),
            origin: a.origin.unwrap_or(Origin::Incomplete),
            neighbor_as: aspath::neighbor_as(a.as_path.as_ref()),
            med: a.med.unwrap_or(0),
            ibgp: peer.is_none_or(|p| p.kind() == PeerKind::Ibgp),
            router_id: u32::from(a.originator_id.unwrap_or(peer_router_id)),
            cluster_len: a.cluster_list.len(),
            address: peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.address),
            peer: path.peer,
            path_id: path.path_id,
        }
    }
}

/// Keep only the candidates whose `key` is the smallest.
fn keep_min<K: Ord>(cands: &mut Vec<usize>, keys: &[Key], key: impl Fn(&Key) -> K) {
    if let Some(min) = cands.iter().map(|&i| key(&keys[i])).min() {
        cands.retain(|&i| key(&keys[i]) == min);
    }
}

/// Run the decision process over the (eligible) paths of one prefix.
pub fn select<'a>(
    paths: &[Path],
    cfg: &RibConfig,
    peer: impl Fn(PeerIndex) -> Option<&'a PeerInfo>,
) -> Selection {
    match select_index(paths, cfg, peer) {
        Some((best, next_hops)) => Selection {
            best: Some(paths[best].clone()),
            next_hops,
        },
        None => Selection::default(),
    }
}

/// [`select`] by position: the index of the best of `paths` and the next
/// hops to install; `None` when there are no paths.
pub fn select_index<'a>(
    paths: &[Path],
    cfg: &RibConfig,
    peer: impl Fn(PeerIndex) -> Option<&'a PeerInfo>,
) -> Option<(usize, NextHops)> {
    match paths {
        [] => return None,
        [only] => return Some((0, smallvec::smallvec![only.next_hop])),
        _ => {}
    }
    let (best, multipath) = ranked(paths, peer)?;
    let mut next_hops: NextHops = smallvec::smallvec![paths[best].next_hop];
    if cfg.multipath && !paths[best].peer.is_local() {
        for i in multipath {
            if !next_hops.contains(&paths[i].next_hop) {
                next_hops.push(paths[i].next_hop);
            }
        }
    }
    Some((best, next_hops))
}

/// The best of `paths` and every path equal to it up to the multipath
/// point (after step 5), by position: the best first, then the others in
/// the order of the final tie-break. Empty without paths. What an
/// ADD-PATH peer is sent (`AddPathSend::Ecmp`), whether or not this
/// speaker installs multipath itself. A locally originated best path
/// stands alone.
pub fn ecmp_set<'a>(
    paths: &[Path],
    peer: impl Fn(PeerIndex) -> Option<&'a PeerInfo>,
) -> Vec<usize> {
    match paths {
        [] => return Vec::new(),
        [_] => return vec![0],
        _ => {}
    }
    let Some((best, multipath)) = ranked(paths, peer) else {
        return Vec::new();
    };
    let mut set = vec![best];
    if !paths[best].peer.is_local() {
        set.extend(multipath.into_iter().filter(|&i| i != best));
    }
    set
}

/// The decision process over two or more paths: the best, and the
/// multipath candidates (after step 5) in tie-break order.
fn ranked<'a>(
    paths: &[Path],
    peer: impl Fn(PeerIndex) -> Option<&'a PeerInfo>,
) -> Option<(usize, Vec<usize>)> {
    let keys: Vec<Key> = paths.iter().map(|p| Key::of(p, peer(p.peer))).collect();
    let mut c: Vec<usize> = (0..paths.len()).collect();
    keep_min(&mut c, &keys, |k| !k.local); // step 0
    keep_min(&mut c, &keys, |k| Reverse(k.local_pref)); // step 1, §9.1.1
    keep_min(&mut c, &keys, |k| k.as_len); // step 2, §9.1.2.2 a
    keep_min(&mut c, &keys, |k| k.origin); // step 3, §9.1.2.2 b
    // Step 4, §9.1.2.2 c: drop a route when another from the same
    // neighbouring AS has a lower MED.
    let snapshot = c.clone();
    c.retain(|&i| {
        !snapshot
            .iter()
            .any(|&j| keys[j].neighbor_as == keys[i].neighbor_as && keys[j].med < keys[i].med)
    });
    keep_min(&mut c, &keys, |k| k.ibgp); // step 5, §9.1.2.2 d
    let mut multipath = c.clone();
    // Steps 6-8 as one total order (§9.1.2.2 f, RFC 4456 §9, §9.1.2.2 g).
    let tie = |k: &Key| (k.router_id, k.cluster_len, k.address, k.peer, k.path_id);
    keep_min(&mut c, &keys, tie);
    let &best = c.first()?;
    multipath.sort_by_key(|&i| tie(&keys[i]));
    Some((best, multipath))
}
