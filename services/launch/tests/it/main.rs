//! Integration tests of the launch app: the app and an in-process mock EHR (real wire formats:
//! SMART configuration, authorize redirect, token endpoint checking PKCE and the ES384 client
//! assertion, FHIR reads) on 127.0.0.1, sessions in the local PostgreSQL (own schema per test),
//! cards signed with the issuer's file key store. `browser` drives a real headless Chromium.

// Fixtures and the mock EHR are plain fns, which clippy's allow-*-in-tests settings do not reach.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test"
)]

mod browser;
mod flow;
mod helpers;
mod mock_ehr;
mod receivers;
