//! Integration tests of the delivery service against the real local PostgreSQL (own schema per
//! test) or SQLite (temp file), in-process wallet and SMS servers speaking the real wire formats,
//! the local RabbitMQ (own prefix), and a real headless Chromium for the viewer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test"
)]

mod helpers;

mod links;
mod sms;
mod ssrf;
mod viewer;
mod wallet;
mod worker;
