//! Replays the committed corpus of the `decode` fuzz target
//! (`bgp/fuzz/corpus/decode/`) through the same checks the fuzzer runs,
//! `manul_bgp::wire::fuzzing::decode_roundtrip`, in the normal test suite:
//! no cargo-fuzz, no nightly. A missing or empty corpus fails the test.

use std::panic::{AssertUnwindSafe, catch_unwind};

use manul_bgp::wire::fuzzing::decode_roundtrip;

#[test]
fn every_corpus_input_decodes_and_round_trips() {
    let dir = manul_tests::package_dir!().join("fuzz/corpus/decode");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} unreadable: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz corpus {} is empty; see bgp/fuzz/README.md",
        dir.display()
    );
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| decode_roundtrip(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} corpus inputs failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}
