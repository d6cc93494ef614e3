//! Replay tests of the speaker's core: no sockets, no root, no clock.
//!
//! Each `cases/*.replay` file is a transcript: `>` lines are inputs to
//! the core, `<` lines what it must output in answer (see README.md). The
//! test replays the inputs and compares the whole transcript it makes
//! with the file. `REPLAY_BLESS=1 cargo test -p manul-bgp --test replay`
//! writes the transcripts made instead (review the diff before committing).

mod drive;
mod inputs;
mod render;
mod words;

use std::path::{Path, PathBuf};

/// Replay one file's inputs; the transcript that makes: every line but
/// the `<` ones as it was, each input followed by its outputs.
fn transcript(text: &str) -> Result<String, String> {
    let mut world = drive::World::new();
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('<') {
            continue;
        }
        out.push_str(line.trim_end());
        out.push('\n');
        let Some(input) = trimmed.strip_prefix('>') else {
            continue;
        };
        let outputs = world
            .step(input.trim())
            .map_err(|e| format!("line {}: {e}\n  {line}", n + 1))?;
        for o in outputs {
            out.push_str("< ");
            out.push_str(&o);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Where `expected` and `actual` first differ, with context.
fn difference(expected: &str, actual: &str) -> Option<String> {
    let e: Vec<&str> = expected.lines().map(str::trim_end).collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i))?;
    let around = |v: &[&str]| {
        v.iter()
            .enumerate()
            .skip(first.saturating_sub(3))
            .take(8)
            .map(|(i, l)| format!("{:4} {}{l}", i + 1, if i == first { "*" } else { " " }))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some(format!(
        "first difference at line {}\n--- expected\n{}\n--- actual\n{}",
        first + 1,
        around(&e),
        around(&a)
    ))
}

/// Run one case: `Ok` when it matches (or was blessed).
fn check(path: &Path, bless: bool) -> Result<(), String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let actual = transcript(&text).map_err(|e| format!("{name}: {e}"))?;
    match difference(&text, &actual) {
        None => Ok(()),
        Some(_) if bless => std::fs::write(path, &actual).map_err(|e| format!("{name}: {e}")),
        Some(d) => Err(format!(
            "{name}: {d}\n(REPLAY_BLESS=1 rewrites the expectations)"
        )),
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "replay"))
        .collect();
    v.sort();
    v
}

#[test]
fn replay_cases() {
    let bless = std::env::var_os("REPLAY_BLESS").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(!cases.is_empty(), "no replay cases");
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c, bless).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} replay cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The comparison can fail: a case with one expected line changed, or one
/// missing, or one too many, does not pass.
#[test]
fn a_wrong_expectation_fails() {
    let text = "> speaker asn=65001 router-id=10.0.0.1\n\
                > add-peer 10.0.0.2 asn=65002\n\
                < 10.0.0.2 start asn=65002\n";
    let actual = transcript(text).expect("replays");
    assert_eq!(difference(text, &actual), None);
    for wrong in [
        text.replace("start asn=65002", "start asn=65003"),
        text.replace("< 10.0.0.2 start asn=65002\n", ""),
        format!("{text}< 10.0.0.2 end-of-rib ipv4-unicast\n"),
    ] {
        let actual = transcript(&wrong).expect("replays");
        assert!(difference(&wrong, &actual).is_some(), "{wrong}");
    }
}

/// A mistyped input is an error naming its line, not silently nothing.
#[test]
fn a_bad_input_names_its_line() {
    let e = transcript("> speaker asn=65001 router-id=10.0.0.1\n> add-peer 10.0.0.2 asm=65002\n")
        .unwrap_err();
    assert!(e.starts_with("line 2:"), "{e}");
}
