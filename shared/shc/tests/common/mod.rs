//! Helpers shared by the conformance tests: locating `../shared/conformance` and reading files.
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// The conformance folder beside the repository. Missing → the test fails loudly: a conformance
/// suite that silently runs nothing would prove nothing.
pub fn conformance() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        dir.join("shc-examples").is_dir(),
        "conformance vectors not found at {} — they live in ../shared/conformance beside the repository; \
         these tests cannot run without them",
        dir.display()
    );
    dir
}

pub fn shc_examples() -> PathBuf {
    conformance().join("shc-examples")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Prints which files a test ran, so the suite's coverage shows in the test output.
pub fn ran(test: &str, files: &[String]) {
    println!("{test}: {} file(s)", files.len());
    for f in files {
        println!("  {f}");
    }
    assert!(!files.is_empty(), "{test} ran on no files");
}
