//! Locating and reading the shared conformance vectors; missing vectors fail loudly.

use std::path::PathBuf;

pub fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance"
    ));
    assert!(
        dir.join("shl-examples").is_dir(),
        "conformance vectors missing at {} (they live in /work/shared/conformance)",
        dir.display()
    );
    dir
}

/// Bytes of a file under `shl-examples/` (or any path relative to the conformance folder when
/// it starts with `../`).
pub fn read_bytes(rel: &str) -> Vec<u8> {
    let path = conformance_dir().join("shl-examples").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn read_text(rel: &str) -> String {
    String::from_utf8(read_bytes(rel)).unwrap()
}

pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read_bytes(rel)).unwrap()
}

/// The key every HL7 example uses (README of shl-examples).
pub const HL7_KEY: &str = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q";
