//! Calico's label selector language: parse, evaluate, print.
//!
//! Grammar (as Calico's `libcalico-go/lib/selector`): `all()`, `global()`,
//! `has(k)`, `k == 'v'`, `k != 'v'`, `k in {'a','b'}`, `k not in {...}`,
//! `k contains 'v'`, `k starts with 'v'`, `k ends with 'v'`, any number of
//! leading `!`, `&&` binding tighter than `||`, parentheses. Strings take
//! single or double quotes and have no escapes. Whitespace is spaces and
//! tabs, as in Calico. An empty selector means `all()`. `global()` matches
//! every label set here (Calico uses it in namespace selectors to mean
//! "non-namespaced"; that context is the caller's).
//!
//! `!=` and `not in` match when the label is absent, as in Calico.
//! Errors carry the 1-based character column of the offending input.
//! Nesting deeper than [`MAX_DEPTH`] is refused, so no input can exhaust
//! the stack.

mod ast;
mod lexer;
mod parser;

use std::fmt;
use std::str::FromStr;

pub use ast::{Expr, Labels};

/// Deepest nesting of parentheses and negations accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    expr: Expr,
}

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector column {column}: {message}")]
pub struct SelectorError {
    /// 1-based character column of the problem.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

impl Selector {
    /// Parses `input`.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let tokens = lexer::lex(input)?;
        Ok(Selector {
            expr: parser::parse(&tokens)?,
        })
    }

    /// The selector that matches everything.
    pub fn all() -> Self {
        Selector { expr: Expr::All }
    }

    /// Whether `labels` match.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.expr.eval(labels)
    }

    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    /// Calico's canonical form (e.g. `(a == "x" && has(b))`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}
