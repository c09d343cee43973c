//! Integration tests of the bus against the real local RabbitMQ (127.0.0.1:5672). Each test
//! uses its own random prefix (or its own vhost when it closes connections) and removes what it
//! declared.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns fail the test by panicking"
)]

mod helpers;
mod publish;
mod reconnect;
mod settle;
mod topology;
