//! Integration tests of the `model` crate: one binary, one module per concern.

// clippy.toml lets `#[test]` functions unwrap; the helpers and proptest bodies here are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod amendments;
mod conformance_vectors;
mod fixtures;
mod fuzz;
mod helpers;
mod properties;
mod rejects;
