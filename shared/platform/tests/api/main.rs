//! Integration tests of the platform crate: configuration layering and validation, HTTP error
//! bodies, health and metrics endpoints, and span capture.

// clippy allows unwrap/indexing in `#[test]` functions only; helpers here share that licence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a test failure"
)]

mod config;
mod health;
mod http_errors;
mod metrics;
mod spans;
