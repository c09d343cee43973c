//! Shared helpers: fixture and conformance-vector loading, normalize-to-ready shortcuts.

use std::path::PathBuf;

use model::{FetchedPatient, Normalized, Outcome};
use serde_json::Value;

/// `shared/model/tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The read-only conformance folder; missing means a broken checkout, so fail loudly.
pub fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance"
    ));
    assert!(
        dir.join("shc-examples").is_dir(),
        "conformance vectors missing at {} (expected /work/shared/conformance next to the repo)",
        dir.display()
    );
    dir
}

/// A conformance file's bytes.
pub fn vector(rel: &str) -> Vec<u8> {
    let path = conformance_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("vector {}: {e}", path.display()))
}

/// Parses and normalizes, expecting the patient to be known.
pub fn ready(bytes: &[u8], patient: Option<&[u8]>) -> Normalized {
    let parsed = model::parse(bytes).unwrap();
    let fetched = patient.map(|p| FetchedPatient::parse(p).unwrap());
    match model::normalize(&parsed, fetched.as_ref()).unwrap() {
        Outcome::Ready(n) => n,
        Outcome::PatientNeeded(p) => panic!("patient needed: {}", p.reference),
    }
}

/// Parses and normalizes, expecting a rejection; returns its code.
pub fn reject_code(bytes: &[u8]) -> &'static str {
    let parsed = match model::parse(bytes) {
        Ok(p) => p,
        Err(e) => return e.code(),
    };
    match model::normalize(&parsed, None) {
        Err(e) => e.code(),
        Ok(o) => panic!("expected a rejection, got {o:?}"),
    }
}

/// A JSON value as bytes.
pub fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Only the SHALL-level DM violations.
pub fn shall_violations(bundle: &Value) -> Vec<model::Violation> {
    model::check_card_bundle(bundle)
        .into_iter()
        .filter(|v| v.shall)
        .collect()
}
