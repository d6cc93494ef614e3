//! Ready-made policies for the node agent.

use super::{Action, Condition, Policy, Rule, Verdict};
use crate::rib::RouteSource;

impl Policy {
    /// The node agent's default export: the routes we originate, plus the
    /// routes route reflection requires us to pass on (RFC 4456 §6) when we
    /// are a reflector; nothing learned is otherwise re-advertised.
    pub fn node_default_export() -> Self {
        Self::new(Self::node_default_export_rules(), Verdict::Reject)
    }

    /// The rules of [`Policy::node_default_export`] (its default rejects).
    pub fn node_default_export_rules() -> Vec<Rule> {
        vec![
            Rule::new(
                vec![Condition::Source(RouteSource::Local)],
                vec![Action::Accept],
            ),
            Rule::new(vec![Condition::Reflected], vec![Action::Accept]),
        ]
    }
}
