//! What the Loc-RIB best path becomes when advertised to one peer
//! (RFC 4271 §9.2, §5.1; RFC 4456 §6, §8), export policy included.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use super::aspath;
use super::decision::DEFAULT_LOCAL_PREF;
use super::interner::Attrs;
use super::path::Path;
use super::peer::{PeerIndex, PeerInfo, PeerKind, RibConfig, RouteSource};
use super::table::Rib;
use crate::policy::{Outcome, Policy, PolicyContext};
use crate::types::Family;
use crate::wire::{AsPath, PathAttributes};

/// Whether a route from `source` (learned from `from`, `None` when ours)
/// may go to `to`, and whether that is a reflection.
/// `None`: not advertised.
pub fn advertise_rule(
    source: RouteSource,
    from: Option<&PeerInfo>,
    to: &PeerInfo,
    attrs: &PathAttributes,
) -> Option<bool> {
    match (source, to.kind()) {
        (RouteSource::Ibgp, PeerKind::Ibgp) => {
            // RFC 4271 §9.2: iBGP-learned routes are not passed to iBGP
            // peers, unless we reflect (RFC 4456 §6): from a client to all
            // clients and non-clients, from a non-client to clients only.
            let from_client = from.is_some_and(|f| f.rr_client);
            if !(from_client || to.rr_client) {
                return None;
            }
            // RFC 4456 §6: never back to the route's originator.
            if attrs.originator_id == Some(to.router_id) {
                return None;
            }
            Some(true)
        }
        _ => Some(false),
    }
}

/// The attribute changes that do not depend on the prefix (before policy).
pub fn transform(
    attrs: &PathAttributes,
    source: RouteSource,
    from: Option<&PeerInfo>,
    to: &PeerInfo,
    reflected: bool,
    cfg: &RibConfig,
) -> PathAttributes {
    let mut a = attrs.clone();
    a.next_hop = None;
    a.as_path.get_or_insert_with(AsPath::default);
    match to.kind() {
        PeerKind::Ebgp => {
            // RFC 4271 §5.1.5: no LOCAL_PREF to external peers.
            a.local_pref = None;
            // RFC 4271 §5.1.4: a MED received from a neighbouring AS is not
            // propagated to other neighbouring ASes; only ours goes out.
            if source != RouteSource::Local {
                a.med = None;
            }
            // RFC 4456 §8: ORIGINATOR_ID and CLUSTER_LIST are non-transitive
            // and internal to the AS.
            a.originator_id = None;
            a.cluster_list.clear();
        }
        PeerKind::Ibgp => {
            // RFC 4271 §5.1.5: LOCAL_PREF is always sent to internal peers.
            a.local_pref = Some(a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
            if reflected {
                // RFC 4456 §8: set ORIGINATOR_ID if absent, prepend CLUSTER_ID.
                if a.originator_id.is_none() {
                    a.originator_id = from.map(|f| f.router_id);
                }
                a.cluster_list.insert(0, cfg.cluster_id());
            }
        }
    }
    a
}

/// Per-run memo of [`transform`] and the final AS prepend, so that many
/// prefixes sharing attributes cost one copy. Holds the handles it maps.
#[derive(Debug, Default)]
pub struct ExportCache {
    pre: HashMap<(usize, PeerIndex), (Attrs, Attrs), FxBuildHasher>,
    post: HashMap<usize, (Attrs, Attrs), FxBuildHasher>,
    /// Whole outcomes under a policy without prefix conditions, which are
    /// the same for every prefix of a family with the same best route.
    whole: HashMap<WholeKey, (Attrs, Exported), FxBuildHasher>,
}

/// Best path's attributes, peer and next hop; family; policy (by address).
type WholeKey = (usize, PeerIndex, IpAddr, Family, usize);

type Exported = Option<(Attrs, IpAddr)>;

impl ExportCache {
    /// Every handle the cache holds (to release once done).
    pub fn into_handles(self) -> Vec<Attrs> {
        let whole = self
            .whole
            .into_values()
            .flat_map(|(a, out)| [Some(a), out.map(|(b, _)| b)])
            .flatten();
        self.pre
            .into_values()
            .chain(self.post.into_values())
            .flat_map(|(a, b)| [a, b])
            .chain(whole)
            .collect()
    }
}

impl Rib {
    /// The route to advertise to `to` for `prefix` when `best` is the
    /// Loc-RIB best path: attributes and next hop, or `None` when nothing
    /// is to be advertised (and anything advertised before is withdrawn).
    pub fn export_route(
        &mut self,
        to: PeerIndex,
        prefix: &IpNet,
        best: &Path,
        cache: &mut ExportCache,
    ) -> Option<(Attrs, IpAddr)> {
        self.export_route_with(to, prefix, best, cache, None)
    }

    /// [`Self::export_route`] under `policy` instead of the peer's export
    /// policy (what the peer was sent before its policy changed).
    pub fn export_route_with(
        &mut self,
        to: PeerIndex,
        prefix: &IpNet,
        best: &Path,
        cache: &mut ExportCache,
        policy: Option<&Policy>,
    ) -> Option<(Attrs, IpAddr)> {
        // Never send a route back to the peer it was learned from.
        if best.peer == to {
            return None;
        }
        let current = &self.slot(to)?.export;
        let policy_used = policy.unwrap_or(current);
        if policy_used.by_prefix() {
            return self.export_one(to, prefix, best, cache, policy);
        }
        let key = (
            ptr(&best.attrs),
            best.peer,
            best.next_hop,
            Family::of(prefix),
            policy_used as *const Policy as usize,
        );
        if let Some((_, out)) = cache.whole.get(&key) {
            return out.clone();
        }
        let out = self.export_one(to, prefix, best, cache, policy);
        cache
            .whole
            .insert(key, (Attrs::clone(&best.attrs), out.clone()));
        out
    }

    /// [`Self::export_route_with`] for one prefix, without the whole-outcome memo.
    fn export_one(
        &mut self,
        to: PeerIndex,
        prefix: &IpNet,
        best: &Path,
        cache: &mut ExportCache,
        policy: Option<&Policy>,
    ) -> Option<(Attrs, IpAddr)> {
        let to_slot = self.slot(to)?;
        let to_info = &to_slot.info;
        let from = self.slot(best.peer).map(|s| &s.info);
        let source = match from {
            _ if best.peer.is_local() => RouteSource::Local,
            Some(f) => f.kind().into(),
            None => return None,
        };
        let reflected = advertise_rule(source, from, to_info, &best.attrs)?;
        let family = Family::of(prefix);
        let self_address = to_info
            .local_address(family)
            .or_else(|| to_info.local_address(other(family)));
        let pre = match cache.pre.get(&(ptr(&best.attrs), best.peer)) {
            Some((_, out)) => Attrs::clone(out),
            None => {
                let t = transform(&best.attrs, source, from, to_info, reflected, &self.cfg);
                let out = self.interner.intern(t);
                cache.pre.insert(
                    (ptr(&best.attrs), best.peer),
                    (Attrs::clone(&best.attrs), Attrs::clone(&out)),
                );
                out
            }
        };
        let to_slot = self.peers.get(to.0 as usize).and_then(Option::as_ref)?;
        let to_info = &to_slot.info;
        let ctx = PolicyContext {
            local_as: to_info.local_as,
            peer_kind: to_info.kind(),
            source,
            reflected,
        };
        let policy = policy.unwrap_or(&to_slot.export);
        let (attrs, policy_nhs) = match policy.apply(prefix, &pre, &ctx, &mut self.interner) {
            Outcome::Rejected => return None,
            Outcome::Accepted {
                attrs,
                next_hop_self,
            } => (attrs, next_hop_self),
        };
        let kind = to_info.kind();
        let (local_as, nhs_config, keep) = (
            to_info.local_as,
            to_info.next_hop_self,
            to_info.next_hop_keep,
        );
        let attrs = match kind {
            // RFC 4271 §5.1.2: prepend our AS towards an external peer.
            PeerKind::Ebgp => match cache.post.get(&ptr(&attrs)) {
                Some((_, out)) => Attrs::clone(out),
                None => {
                    let mut a = PathAttributes::clone(&attrs);
                    aspath::prepend(a.as_path.get_or_insert_with(AsPath::default), local_as, 1);
                    let out = self.interner.intern(a);
                    cache
                        .post
                        .insert(ptr(&attrs), (Attrs::clone(&attrs), Attrs::clone(&out)));
                    out
                }
            },
            PeerKind::Ibgp => attrs,
        };
        // RFC 4271 §5.1.3: towards eBGP we are the next hop; towards iBGP
        // the next hop is kept unless next-hop-self applies (not to reflected
        // routes, RFC 4456 §10) or the route is ours. With next-hop-keep
        // (BIRD's `next hop keep`) a received next hop goes on unchanged to
        // eBGP peers too: RFC 4271 §5.1.3 lets a speaker pass a next hop
        // that is not its own ("third party") when it knows the peer can
        // reach it, which the configuration says here.
        let ours = best.next_hop.is_unspecified();
        let use_self = match kind {
            _ if ours || policy_nhs => true,
            PeerKind::Ebgp => nhs_config || !keep,
            PeerKind::Ibgp => nhs_config && !reflected,
        };
        let next_hop = if use_self {
            self_address?
        } else {
            best.next_hop
        };
        Some((attrs, next_hop))
    }

    /// Let go of an attribute handle held outside the table (Adj-RIB-Out).
    pub fn release(&mut self, handle: Attrs) {
        self.interner.release(handle);
    }
}

fn ptr(a: &Attrs) -> usize {
    std::sync::Arc::as_ptr(a) as usize
}

fn other(family: Family) -> Family {
    match family {
        Family::Ipv4Unicast => Family::Ipv6Unicast,
        Family::Ipv6Unicast => Family::Ipv4Unicast,
    }
}
