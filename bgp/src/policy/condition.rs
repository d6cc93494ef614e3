//! Match conditions of a policy rule.

use ipnet::IpNet;

use crate::rib::aspath;
use crate::rib::{PeerKind, RouteSource};
use crate::types::{Asn, Family};
use crate::wire::{Community, LargeCommunity, PathAttributes};

use super::PolicyContext;

/// A prefix inside `net` whose length is within `ge..=le`. Without `ge` and
/// `le` only `net` itself matches; `ge` alone means up to the family's
/// maximum, `le` alone means from `net`'s own length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixMatch {
    pub net: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixMatch {
    /// Exactly `net`.
    pub fn exact(net: IpNet) -> Self {
        Self {
            net,
            ge: None,
            le: None,
        }
    }

    /// `net` or anything more specific.
    pub fn orlonger(net: IpNet) -> Self {
        Self {
            net,
            ge: Some(net.prefix_len()),
            le: None,
        }
    }

    /// The lengths matched, `lo..=hi` (empty when `lo > hi`).
    pub fn lengths(&self) -> (u8, u8) {
        match (self.ge, self.le) {
            (None, None) => (self.net.prefix_len(), self.net.prefix_len()),
            (Some(ge), None) => (ge, self.net.max_prefix_len()),
            (None, Some(le)) => (self.net.prefix_len(), le),
            (Some(ge), Some(le)) => (ge, le),
        }
    }

    pub fn matches(&self, prefix: &IpNet) -> bool {
        let (lo, hi) = self.lengths();
        self.net.contains(prefix) && (lo..=hi).contains(&prefix.prefix_len())
    }
}

/// One condition; a rule matches when all of its conditions hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Prefix(PrefixMatch),
    /// The prefix is not one [`PrefixMatch`] matches (a prefix of the
    /// other family never is).
    NotPrefix(PrefixMatch),
    Family(Family),
    /// COMMUNITIES contains the value (RFC 1997).
    Community(Community),
    /// LARGE_COMMUNITY contains the value (RFC 8092).
    LargeCommunity(LargeCommunity),
    /// The AS appears anywhere in AS_PATH.
    AsPathContains(Asn),
    /// The route originates in the AS (last AS of the path).
    OriginAs(Asn),
    /// AS_PATH length (as route selection counts it) within `min..=max`.
    AsPathLen {
        min: u32,
        max: u32,
    },
    /// The session the policy runs for: the sender on import, the
    /// receiver on export.
    PeerKind(PeerKind),
    /// Where the route was learned (or that we originate it).
    Source(RouteSource),
    /// On export: the route is being reflected (iBGP to iBGP, RFC 4456).
    Reflected,
    /// The route was learned from a peer (iBGP or eBGP), not originated
    /// by this speaker.
    Learned,
    /// Never holds: a rule with it never matches (it stands for a
    /// condition this speaker has nothing to test against).
    Never,
}

impl Condition {
    pub fn matches(&self, prefix: &IpNet, attrs: &PathAttributes, ctx: &PolicyContext) -> bool {
        let path = attrs.as_path.as_ref();
        match self {
            Condition::Prefix(m) => m.matches(prefix),
            Condition::NotPrefix(m) => !m.matches(prefix),
            Condition::Family(f) => Family::of(prefix) == *f,
            Condition::Community(c) => attrs.communities.contains(c),
            Condition::LargeCommunity(c) => attrs.large_communities.contains(c),
            Condition::AsPathContains(asn) => aspath::count(path, *asn) > 0,
            Condition::OriginAs(asn) => aspath::origin_as(path) == Some(*asn),
            Condition::AsPathLen { min, max } => (*min..=*max).contains(&aspath::path_len(path)),
            Condition::PeerKind(k) => ctx.peer_kind == *k,
            Condition::Source(s) => ctx.source == *s,
            Condition::Reflected => ctx.reflected,
            Condition::Learned => ctx.source != RouteSource::Local,
            Condition::Never => false,
        }
    }

    /// Whether the condition tests the prefix alone (its family or its
    /// place), not the route's attributes or where it came from.
    pub fn on_prefix(&self) -> bool {
        matches!(
            self,
            Condition::Prefix(_) | Condition::NotPrefix(_) | Condition::Family(_)
        )
    }
}
