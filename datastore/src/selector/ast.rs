//! The selector syntax tree, its evaluation over labels, and Calico's
//! canonical printing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// A set of labels a selector can be evaluated against.
pub trait Labels {
    /// The value of `key`, if present.
    fn get_label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for [(&str, &str)] {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// A selector expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `all()`: matches everything.
    All,
    /// `global()`: matches everything (see the module doc).
    Global,
    /// `has(k)`.
    Has(String),
    /// `k == 'v'`.
    Eq(String, String),
    /// `k != 'v'` (true when `k` is absent).
    Ne(String, String),
    /// `k contains 'v'`.
    Contains(String, String),
    /// `k starts with 'v'`.
    StartsWith(String, String),
    /// `k ends with 'v'`.
    EndsWith(String, String),
    /// `k in {...}`.
    In(String, BTreeSet<String>),
    /// `k not in {...}` (true when `k` is absent).
    NotIn(String, BTreeSet<String>),
    /// `!e`.
    Not(Box<Expr>),
    /// `a && b && ...` (two or more).
    And(Vec<Expr>),
    /// `a || b || ...` (two or more).
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression over `labels`.
    pub fn eval<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let with = |k: &str, f: &dyn Fn(&str) -> bool| labels.get_label(k).is_some_and(f);
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(k) => labels.get_label(k).is_some(),
            Expr::Eq(k, v) => with(k, &|x| x == v),
            Expr::Ne(k, v) => labels.get_label(k) != Some(v.as_str()),
            Expr::Contains(k, v) => with(k, &|x| x.contains(v.as_str())),
            Expr::StartsWith(k, v) => with(k, &|x| x.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => with(k, &|x| x.ends_with(v.as_str())),
            Expr::In(k, set) => with(k, &|x| set.contains(x)),
            Expr::NotIn(k, set) => !with(k, &|x| set.contains(x)),
            Expr::Not(e) => !e.eval(labels),
            Expr::And(es) => es.iter().all(|e| e.eval(labels)),
            Expr::Or(es) => es.iter().any(|e| e.eval(labels)),
        }
    }
}

/// Calico quotes with `"` unless the value contains one.
fn quoted(s: &str) -> String {
    if s.contains('"') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

fn write_set(f: &mut fmt::Formatter<'_>, k: &str, op: &str, set: &BTreeSet<String>) -> fmt::Result {
    let items: Vec<String> = set.iter().map(|s| quoted(s)).collect();
    write!(f, "{k} {op} {{{}}}", items.join(", "))
}

fn write_list(f: &mut fmt::Formatter<'_>, es: &[Expr], sep: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{e}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Global => f.write_str("global()"),
            Expr::Has(k) => write!(f, "has({k})"),
            Expr::Eq(k, v) => write!(f, "{k} == {}", quoted(v)),
            Expr::Ne(k, v) => write!(f, "{k} != {}", quoted(v)),
            Expr::Contains(k, v) => write!(f, "{k} contains {}", quoted(v)),
            Expr::StartsWith(k, v) => write!(f, "{k} starts with {}", quoted(v)),
            Expr::EndsWith(k, v) => write!(f, "{k} ends with {}", quoted(v)),
            Expr::In(k, set) => write_set(f, k, "in", set),
            Expr::NotIn(k, set) => write_set(f, k, "not in", set),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(es) => write_list(f, es, " && "),
            Expr::Or(es) => write_list(f, es, " || "),
        }
    }
}
