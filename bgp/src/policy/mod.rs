//! Import and export policies: ordered rules of match conditions and
//! actions, applied to one route at a time.
//!
//! Rules are tried in order. A rule whose conditions all hold runs its
//! actions in order; the first [`Action::Accept`] or [`Action::Reject`]
//! decides, and a matching rule without one only modifies the route and
//! lets the next rules run. When no rule decides, the policy's default
//! verdict does. Modifications are copy-on-write: the shared attributes
//! are never changed, a modified copy is interned again.

mod action;
mod condition;
mod defaults;

#[cfg(test)]
mod tests;

use ipnet::IpNet;

use crate::rib::{AttrInterner, Attrs, PeerKind, RouteSource};
use crate::types::Asn;
use crate::wire::PathAttributes;

pub use action::Action;
pub use condition::{Condition, PrefixMatch};

/// What a policy decides when no rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
}

/// Conditions, then actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

impl Rule {
    pub fn new(conditions: Vec<Condition>, actions: Vec<Action>) -> Self {
        Self {
            conditions,
            actions,
        }
    }
}

/// An ordered list of rules and a default verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub default: Verdict,
}

/// What a policy knows about the route besides its prefix and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyContext {
    /// Our AS on the session (what [`Action::Prepend`] prepends).
    pub local_as: Asn,
    /// The session's kind: the sender on import, the receiver on export.
    pub peer_kind: PeerKind,
    /// Where the route came from.
    pub source: RouteSource,
    /// On export: the route is being reflected to an iBGP peer.
    pub reflected: bool,
}

/// The result of running a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rejected,
    Accepted {
        /// The same handle when nothing changed, else a re-interned copy.
        attrs: Attrs,
        /// An [`Action::NextHopSelf`] ran.
        next_hop_self: bool,
    },
}

impl Policy {
    /// Whether the outcome can differ between prefixes (a prefix or family
    /// condition). When not, one evaluation serves every prefix of an
    /// UPDATE with the same attributes.
    pub fn by_prefix(&self) -> bool {
        self.rules.iter().any(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::Prefix(_) | Condition::Family(_)))
        })
    }

    /// Accept everything unchanged.
    pub fn accept_all() -> Self {
        Self {
            rules: Vec::new(),
            default: Verdict::Accept,
        }
    }

    /// Reject everything.
    pub fn reject_all() -> Self {
        Self {
            rules: Vec::new(),
            default: Verdict::Reject,
        }
    }

    /// Run the policy on one route.
    pub fn apply(
        &self,
        prefix: &IpNet,
        attrs: &Attrs,
        ctx: &PolicyContext,
        interner: &mut AttrInterner,
    ) -> Outcome {
        let mut copy: Option<PathAttributes> = None;
        let mut next_hop_self = false;
        let mut verdict = None;
        'rules: for rule in &self.rules {
            let current = copy.as_ref().unwrap_or(attrs);
            if !rule
                .conditions
                .iter()
                .all(|c| c.matches(prefix, current, ctx))
            {
                continue;
            }
            for action in &rule.actions {
                match action {
                    Action::Accept => {
                        verdict = Some(Verdict::Accept);
                        break 'rules;
                    }
                    Action::Reject => {
                        verdict = Some(Verdict::Reject);
                        break 'rules;
                    }
                    Action::NextHopSelf => next_hop_self = true,
                    other => {
                        let current = copy.as_ref().unwrap_or(attrs);
                        if other.modifies(current) {
                            let owned = copy.get_or_insert_with(|| PathAttributes::clone(attrs));
                            other.apply(owned, ctx);
                        }
                    }
                }
            }
        }
        match verdict.unwrap_or(self.default) {
            Verdict::Reject => Outcome::Rejected,
            Verdict::Accept => Outcome::Accepted {
                attrs: match copy {
                    Some(changed) => interner.intern(changed),
                    None => Attrs::clone(attrs),
                },
                next_hop_self,
            },
        }
    }
}
