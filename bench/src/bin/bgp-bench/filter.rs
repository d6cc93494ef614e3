//! The import filter of `--import-filter N`: N rules on the blaster's
//! session, given to manul-bgpd as `[[peer.import_rule]]` and to BIRD as
//! the function Calico's confd renders from a BGPFilter
//! (`BGPFilterBIRDFuncs`) called from the session's import filter before
//! `accept;` (`buildImportFilter`).
//!
//! The rules reject what the blaster does not announce — the default
//! route, then /16s of 100.0.0.0/8 (`In`) and /24s of 101.0.0.0/16
//! (`Equal`) in turn — so every announced prefix (11.0.0.0 onwards) is
//! tried against all N and accepted by the default: the most a filter of
//! N rules costs per prefix in an implementation that tries each rule.

use std::fmt::Write as _;

/// One rule: reject `cidr`, exactly (`Equal`) or it and inside it (`In`).
struct Rule {
    cidr: String,
    exact: bool,
}

fn rules(n: usize) -> Vec<Rule> {
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        out.push(Rule {
            cidr: "0.0.0.0/0".into(),
            exact: true,
        });
    }
    for i in 1..n {
        // Alternate: 100.k.0.0/16 (In), 101.0.k.0/24 (Equal).
        let k = (i - 1) / 2;
        out.push(if i % 2 == 1 {
            Rule {
                cidr: format!("100.{}.0.0/16", k % 256),
                exact: false,
            }
        } else {
            Rule {
                cidr: format!("101.{}.{}.0/24", k / 256, k % 256),
                exact: true,
            }
        });
    }
    out
}

/// manul-bgpd's `[[peer.import_rule]]` tables (after the peer's table).
pub fn manul(n: usize) -> String {
    let mut t = String::new();
    for r in rules(n) {
        let len: u8 = r
            .cidr
            .rsplit('/')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let _ = writeln!(
            t,
            "[[peer.import_rule]]\naction = \"reject\"\nprefix = \"{}\"{}",
            r.cidr,
            if r.exact {
                String::new()
            } else {
                format!("\nge = {len}")
            }
        );
    }
    t
}

/// The BIRD function Calico renders, named as Calico names it.
pub fn bird_function(n: usize) -> String {
    let mut t = String::from("function 'bgp_bench_importFilterV4'() {\n");
    for r in rules(n) {
        let op = if r.exact { "=" } else { "~" };
        let _ = writeln!(t, "  if ((net {op} {})) then {{ reject; }}", r.cidr);
    }
    t.push_str("}\n");
    t
}

/// The session's import statement in BIRD.
pub fn bird_import(n: usize) -> &'static str {
    if n == 0 {
        "import all;"
    } else {
        "import filter { 'bgp_bench_importFilterV4'(); accept; };"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_rules_both_ways() {
        let m = manul(3);
        assert_eq!(m.matches("[[peer.import_rule]]").count(), 3);
        assert!(m.contains("prefix = \"0.0.0.0/0\"\n"));
        assert!(m.contains("prefix = \"100.0.0.0/16\"\nge = 16"));
        assert!(m.contains("prefix = \"101.0.0.0/24\"\n"));
        let b = bird_function(3);
        assert!(b.contains("if ((net = 0.0.0.0/0)) then { reject; }"));
        assert!(b.contains("if ((net ~ 100.0.0.0/16)) then { reject; }"));
        assert!(b.contains("if ((net = 101.0.0.0/24)) then { reject; }"));
        assert_eq!(rules(100).len(), 100);
        assert_eq!(bird_import(0), "import all;");
    }
}
