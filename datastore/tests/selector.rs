//! Selector parsing, evaluation, printing and errors.

use std::collections::BTreeMap;

use manul_datastore::Selector;
use manul_datastore::selector::MAX_DEPTH;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn eval(sel: &str, pairs: &[(&str, &str)]) -> bool {
    Selector::parse(sel)
        .unwrap_or_else(|e| panic!("{sel}: {e}"))
        .matches(&labels(pairs))
}

#[test]
fn basic_operations() {
    let l = [("app", "web"), ("tier", "front"), ("rack", "r1")];
    assert!(eval("all()", &l));
    assert!(eval("", &l) && eval("   ", &[]));
    assert!(eval("global()", &l));
    assert!(eval("has(app)", &l) && !eval("has(x)", &l));
    assert!(eval("!has(x)", &l) && !eval("!has(app)", &l));
    assert!(eval("app == 'web'", &l) && eval("app == \"web\"", &l) && !eval("app == 'db'", &l));
    assert!(eval("app != 'db'", &l) && !eval("app != 'web'", &l));
    assert!(eval("missing != 'x'", &l), "!= matches an absent label");
    assert!(!eval("missing == 'x'", &l));
    assert!(eval("rack in {'r1','r2'}", &l) && !eval("rack in {'r3'}", &l));
    assert!(eval("rack not in {'r3', \"r4\"}", &l) && !eval("rack not in {'r1'}", &l));
    assert!(
        eval("missing not in {'a'}", &l),
        "not in matches an absent label"
    );
    assert!(!eval("missing in {'a'}", &l));
    assert!(eval("rack in {'r1',}", &l), "trailing comma, as Calico");
    assert!(!eval("rack in {}", &l));
    assert!(
        eval("app contains 'e'", &l)
            && eval("app starts with 'w'", &l)
            && eval("app ends  with 'b'", &l)
    );
    assert!(eval("k8s.io/zone-x == 'a'", &[("k8s.io/zone-x", "a")]));
    assert!(eval("\t( has( app ) )\t&&app=='web'", &l));
}

#[test]
fn precedence() {
    // `!a && b || c` is `((!a) && b) || c`.
    let sel = "!has(a) && has(b) || has(c)";
    assert!(eval(sel, &[("b", "")]));
    assert!(!eval(sel, &[("a", ""), ("b", "")]));
    assert!(eval(sel, &[("a", ""), ("c", "")]));
    assert!(!eval(sel, &[]));
    assert_eq!(
        Selector::parse(sel).unwrap().to_string(),
        "((!has(a) && has(b)) || has(c))"
    );
    // `a || b && c` is `a || (b && c)`.
    assert!(eval("has(a) || has(b) && has(c)", &[("a", "")]));
    assert!(!eval("has(a) || has(b) && has(c)", &[("b", "")]));
    assert!(!eval("(has(a) || has(b)) && has(c)", &[("a", "")]));
    assert!(eval("!(has(a) || has(b))", &[]));
    assert!(eval("!!has(a)", &[("a", "")]));
}

#[test]
fn canonical_printing() {
    let s = Selector::parse("b in {'y', 'x', 'x'} && a == 'q\"'").unwrap();
    assert_eq!(s.to_string(), "(b in {\"x\", \"y\"} && a == 'q\"')");
    let again = Selector::parse(&s.to_string()).unwrap();
    assert_eq!(again, s);
    assert_eq!(Selector::parse("").unwrap(), Selector::all());
    let double = Selector::parse("!(!has(a))").unwrap();
    assert_eq!(double.to_string(), "has(a)");
    assert_eq!(
        Selector::parse("!(!(has(a) && has(b)))")
            .unwrap()
            .to_string(),
        "(has(a) && has(b))"
    );
}

fn err(sel: &str) -> (usize, String) {
    let e = Selector::parse(sel).expect_err(sel);
    (e.column, e.message)
}

#[test]
fn errors_with_columns() {
    assert_eq!(err("a = 'b'").0, 3);
    assert_eq!(err("a == 'b").0, 6);
    assert!(err("a == 'b").1.contains("unterminated"));
    assert_eq!(err("a == b").0, 6);
    assert!(err("a == b").1.contains("expected a quoted string"));
    assert_eq!(err("has(a) &&").0, 10);
    assert!(err("has(a) &&").1.contains("end of selector"));
    assert_eq!(err("(has(a)").0, 8);
    assert!(err("(has(a)").1.contains("expected ')'"));
    assert_eq!(err("has(a))").0, 7);
    assert_eq!(err("a & b").0, 3);
    assert_eq!(err("a | b").0, 3);
    assert_eq!(err("has()").0, 5);
    assert_eq!(err("all(x)").0, 5);
    assert_eq!(err("a foo 'x'").0, 3);
    assert_eq!(err("a in 'x'").0, 6);
    assert_eq!(err("a in {'x'").0, 10);
    assert_eq!(err("a not 'x'").0, 7);
    assert_eq!(err("a starts 'x'").0, 10);
    assert_eq!(err("has(a) has(b)").0, 8);
    assert_eq!(err("é == 'x'").0, 1);
    assert_eq!(
        err("x == 'é' && #").0,
        13,
        "columns count characters, not bytes"
    );
    assert_eq!(err("has (a)").0, 5, "Calico needs has( with no space");
    assert!(
        err("a == 'b'\n").1.contains("unexpected character"),
        "only spaces and tabs are whitespace"
    );
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let ok = format!("{}has(a){}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(eval(&ok, &[("a", "")]));
    let deep = format!("{}has(a){}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(err(&deep).1.contains("nested"));
    let nots = format!("{}has(a)", "!".repeat(100_001));
    assert!(eval(&nots, &[]));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let alphabet = [
        "(", ")", "!", "&&", "||", "a", "'x'", "\"", "==", "!=", "in", "not", "{", "}", ",", " ",
        "has(", "all()", "é", "=",
    ];
    // A small deterministic generator over the token alphabet.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(state % 12) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        state = state.wrapping_add(1);
        if let Ok(sel) = Selector::parse(&s) {
            let _ = sel.matches(&labels(&[("a", "x")]));
            assert_eq!(Selector::parse(&sel.to_string()).as_ref(), Ok(&sel), "{s}");
        }
    }
}
