//! What the benchmarks share: where the test photos are.

use std::path::PathBuf;

/// The test photos (`scripts/fetch-testdata`, whose stamp `tests/common` checks too):
/// `$VISAGE_TESTDATA`, or the cache it fills.
pub fn testdata() -> PathBuf {
    let root = std::env::var_os("VISAGE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/visage/testdata")
        });
    assert!(
        root.join(".complete-v4").exists(),
        "run scripts/fetch-testdata first"
    );
    root
}
