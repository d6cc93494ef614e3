//! Actions of a policy rule.

use crate::rib::aspath;
use crate::wire::{AsPath, Community, LargeCommunity, PathAttributes};

use super::PolicyContext;

/// One action. [`Action::Accept`] and [`Action::Reject`] end the policy;
/// the others modify the route and go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
    /// Add to COMMUNITIES unless already there.
    AddCommunity(Community),
    /// Add to LARGE_COMMUNITY unless already there.
    AddLargeCommunity(LargeCommunity),
    /// Remove every occurrence from COMMUNITIES.
    RemoveCommunity(Community),
    /// Prepend our AS (the session's) this many times.
    Prepend(u8),
    SetLocalPref(u32),
    SetMed(u32),
    /// Advertise ourselves as the next hop (export only).
    NextHopSelf,
}

impl Action {
    /// Whether this action needs a copy of the attributes to change.
    pub(super) fn modifies(&self, attrs: &PathAttributes) -> bool {
        match self {
            Action::Accept | Action::Reject | Action::NextHopSelf => false,
            Action::AddCommunity(c) => !attrs.communities.contains(c),
            Action::AddLargeCommunity(c) => !attrs.large_communities.contains(c),
            Action::RemoveCommunity(c) => attrs.communities.contains(c),
            Action::Prepend(n) => *n > 0,
            Action::SetLocalPref(v) => attrs.local_pref != Some(*v),
            Action::SetMed(v) => attrs.med != Some(*v),
        }
    }

    /// Apply a modifying action to a private copy.
    pub(super) fn apply(&self, attrs: &mut PathAttributes, ctx: &PolicyContext) {
        match self {
            Action::Accept | Action::Reject | Action::NextHopSelf => {}
            Action::AddCommunity(c) => {
                if !attrs.communities.contains(c) {
                    attrs.communities.push(*c);
                }
            }
            Action::AddLargeCommunity(c) => {
                if !attrs.large_communities.contains(c) {
                    attrs.large_communities.push(*c);
                }
            }
            Action::RemoveCommunity(c) => attrs.communities.retain(|x| x != c),
            Action::Prepend(n) => {
                let path = attrs.as_path.get_or_insert_with(AsPath::default);
                aspath::prepend(path, ctx.local_as, usize::from(*n));
            }
            Action::SetLocalPref(v) => attrs.local_pref = Some(*v),
            Action::SetMed(v) => attrs.med = Some(*v),
        }
    }
}
