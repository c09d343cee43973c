//! Integration tests of the store: every test body runs against SQLite (temp file) and the local
//! PostgreSQL (own schema), through the `both!` macro.

// The test bodies are plain async fns called by the `both!`-generated #[test]s, so clippy's
// allow-*-in-tests settings do not reach them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test"
)]

mod helpers;

mod apply;
mod connect;
mod credentials;
mod events;
mod keys;
mod launch_sessions;
mod misc;
mod outbox;
mod shl;
mod wallets;
