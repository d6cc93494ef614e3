//! Import and export policies: ordered rules of match conditions and
//! actions, applied to one route at a time.
//!
//! Rules are tried in order. A rule whose conditions all hold runs its
//! actions in order; the first [`Action::Accept`] or [`Action::Reject`]
//! decides, and a matching rule without one only modifies the route and
//! lets the next rules run. When no rule decides, the policy's default
//! verdict does. Modifications are copy-on-write: the shared attributes
//! are never changed, a modified copy is interned again.
//!
//! A policy whose every rule decides (accepts or rejects, modifying
//! nothing) — a route filter — is precomputed by prefix when it is made
//! ([`index`]), so a long one costs little more per prefix than a short one.

mod action;
mod condition;
mod defaults;
mod index;

#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

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

    /// Accept when `conditions` hold.
    pub fn accept(conditions: Vec<Condition>) -> Self {
        Self::new(conditions, vec![Action::Accept])
    }

    /// Reject when `conditions` hold.
    pub fn reject(conditions: Vec<Condition>) -> Self {
        Self::new(conditions, vec![Action::Reject])
    }

    /// The verdict of a rule that decides at once, modifying nothing (its
    /// first action is [`Action::Accept`] or [`Action::Reject`]).
    pub fn verdict(&self) -> Option<Verdict> {
        match self.actions.first()? {
            Action::Accept => Some(Verdict::Accept),
            Action::Reject => Some(Verdict::Reject),
            _ => None,
        }
    }
}

/// An ordered list of rules and a default verdict.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    default: Verdict,
    /// Set when every rule decides ([`Rule::verdict`]).
    index: Option<Arc<index::Index>>,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules && self.default == other.default
    }
}

impl Eq for Policy {}

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
    /// `rules` in order, then `default`.
    pub fn new(rules: Vec<Rule>, default: Verdict) -> Self {
        let index = index::Index::build(&rules).map(Arc::new);
        Self {
            rules,
            default,
            index,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The verdict when no rule decides.
    pub fn default_verdict(&self) -> Verdict {
        self.default
    }

    /// Whether the outcome can differ between prefixes (a prefix or family
    /// condition). When not, one evaluation serves every prefix of an
    /// UPDATE with the same attributes.
    pub fn by_prefix(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.conditions.iter().any(Condition::on_prefix))
    }

    /// Whether every outcome is a verdict on the route as it is (no rule
    /// modifies it): then [`Policy::decide`] answers.
    pub fn decides_only(&self) -> bool {
        self.index.is_some()
    }

    /// The verdict on one route, for a policy that only decides
    /// ([`Policy::decides_only`]; `None` otherwise), found through its
    /// precomputed index.
    pub fn decide(
        &self,
        prefix: &IpNet,
        attrs: &PathAttributes,
        ctx: &PolicyContext,
    ) -> Option<Verdict> {
        let index = self.index.as_ref()?;
        Some(match index.first(&self.rules, prefix, attrs, ctx) {
            Some(i) => self.rules[i].verdict().unwrap_or(self.default),
            None => self.default,
        })
    }

    /// Accept everything unchanged.
    pub fn accept_all() -> Self {
        Self::new(Vec::new(), Verdict::Accept)
    }

    /// Reject everything.
    pub fn reject_all() -> Self {
        Self::new(Vec::new(), Verdict::Reject)
    }

    /// Run the policy on one route.
    pub fn apply(
        &self,
        prefix: &IpNet,
        attrs: &Attrs,
        ctx: &PolicyContext,
        interner: &mut AttrInterner,
    ) -> Outcome {
        if let Some(verdict) = self.decide(prefix, attrs, ctx) {
            return match verdict {
                Verdict::Reject => Outcome::Rejected,
                Verdict::Accept => Outcome::Accepted {
                    attrs: Attrs::clone(attrs),
                    next_hop_self: false,
                },
            };
        }
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
