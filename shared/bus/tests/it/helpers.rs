//! Shared test helpers: per-test prefixes and vhosts, bounded polling, receiving with a
//! deadline.

use std::future::Future;
use std::time::Duration;

use bus::{Bus, BusConfig, Consumer, Delivery};
use rand_core::{OsRng, RngCore};

/// Upper bound for any single wait in these tests (a liveness bound, not a performance target).
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn random_name(kind: &str) -> String {
    format!(
        "bustest-{kind}-{:012x}",
        OsRng.next_u64() & 0xffff_ffff_ffff
    )
}

/// A config with its own prefix and millisecond retry delays.
pub fn test_config(prefix: &str) -> BusConfig {
    BusConfig {
        prefix: prefix.to_owned(),
        retry_delays: vec![Duration::from_millis(200), Duration::from_millis(400)],
        connection_name: format!("{prefix}-test"),
        reconnect_min: Duration::from_millis(300),
        reconnect_max: Duration::from_secs(2),
        ..BusConfig::default()
    }
}

pub async fn connect(prefix: &str) -> Bus {
    Bus::connect(test_config(prefix)).await.unwrap()
}

/// Closes the bus after deleting its topology.
pub async fn teardown(bus: Bus) {
    bus.delete_topology().await.unwrap();
    bus.close().await;
}

/// Polls `check` every 50 ms until it returns true; panics after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next delivery, or a panic after [`DEADLINE`].
pub async fn recv(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(DEADLINE, consumer.recv())
        .await
        .expect("no delivery before the deadline")
        .expect("consumer ended")
}

/// Waits until `queue` holds exactly `n` ready messages.
pub async fn wait_count(bus: &Bus, queue: &str, n: u32) {
    wait_until(&format!("{queue} to hold {n}"), || async {
        bus.message_count(queue).await.unwrap() == n
    })
    .await;
}

pub use testkit::Vhost;
