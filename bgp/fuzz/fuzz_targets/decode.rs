//! Fuzz target `decode`: one selector octet picks the session context,
//! the rest is a byte stream framed and decoded message by message, and
//! every message decoded without error must survive encode + decode. The
//! checks live in `manul_bgp::wire::fuzzing` so the corpus replay test
//! (`bgp/tests/fuzz_corpus.rs`) runs them too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| manul_bgp::wire::fuzzing::decode_roundtrip(data));
