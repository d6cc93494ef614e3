//! Where the package under test lives, for tests that read its files.
//!
//! `env!("CARGO_MANIFEST_DIR")` is fixed when the test binary is compiled,
//! and a target directory shared by several clones (as `scripts/test`
//! uses) may hold a binary compiled from another clone, which may be gone.
//! cargo and nextest also set `CARGO_MANIFEST_DIR` when they run a test:
//! that one is the clone being tested.

use std::path::PathBuf;

/// The package directory of the running test, given the one compiled in
/// (use [`crate::package_dir!`]).
pub fn package_dir_or(compiled: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(compiled), PathBuf::from)
}

/// The running test's package directory (see the module doc).
#[macro_export]
macro_rules! package_dir {
    () => {
        $crate::package::package_dir_or(env!("CARGO_MANIFEST_DIR"))
    };
}
