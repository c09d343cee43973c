//! Integration tests of the `shl` crate: the published SHL vectors (HL7 IG, SHL validator), the
//! validator's passcode/manifest exchange replayed, and property tests. One binary so the crate
//! links once.

// Helpers outside `#[test]` fns are not covered by clippy.toml's test allowances; in test code
// a panic is a failed test, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a failed test"
)]

mod conformance;
mod dev_tools;
mod helpers;
mod passcode;
mod props;
