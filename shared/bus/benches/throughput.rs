//! Throughput of the bus on the local RabbitMQ: publish with batched confirms, publish with one
//! confirm per message, and consume + `ack_multiple`, each in messages per second.
//!
//! `cargo bench -p bus --bench throughput` (env `BUS_BENCH_N`, default 20 000 messages;
//! `AMQP_URL` to point elsewhere). Uses its own random prefix and deletes it afterwards.

use std::error::Error;
use std::time::{Duration, Instant};

use bus::{Bus, BusConfig, Outgoing};
use rand_core::{OsRng, RngCore};

const BATCH: usize = 500;
const ACK_EVERY: usize = 100;
const SINGLE: usize = 1_000;

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

async fn consume_all(bus: &Bus, queue: &str, n: usize) -> Result<Duration, Box<dyn Error>> {
    let mut consumer = bus.consumer(queue)?;
    let start = Instant::now();
    let mut got = 0usize;
    while got < n {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await?
            .ok_or("consumer ended")?;
        got += 1;
        // The last message always settles everything before it.
        if got % ACK_EVERY == 0 || got == n {
            delivery.ack_multiple().await?;
        }
    }
    Ok(start.elapsed())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::var("BUS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut config = BusConfig::from_env();
    config.prefix = format!("busbench-{:08x}", OsRng.next_u32());
    config.prefetch = 500;
    config.retry_delays = vec![Duration::from_secs(1)];
    let bus = Bus::connect(config).await?;
    let issue = bus.topology().queue("issue");
    let body = vec![b'x'; 1024];
    let message = |i: usize| Outgoing::to_queue(&issue, body.clone()).message_id(format!("b-{i}"));
    let publisher = bus.publisher();

    // 1. Publish only, confirms awaited per batch.
    let start = Instant::now();
    let items: Vec<Outgoing> = (0..n).map(message).collect();
    for chunk in items.chunks(BATCH) {
        publisher.publish_batch(chunk).await?;
    }
    let publish = start.elapsed();
    // 2. Consume + ack the backlog.
    let consume = consume_all(&bus, "issue", n).await?;

    // 3. One confirm per message, for comparison.
    let start = Instant::now();
    for i in 0..SINGLE {
        publisher.publish(&message(i)).await?;
    }
    let single = start.elapsed();
    consume_all(&bus, "issue", SINGLE).await?;

    // 4. Pipeline: publish and consume at the same time.
    let start = Instant::now();
    let consumer_bus = bus.clone();
    let consumer = tokio::spawn(async move {
        consume_all(&consumer_bus, "issue", n)
            .await
            .map_err(|e| e.to_string())
    });
    for chunk in items.chunks(BATCH) {
        publisher.publish_batch(chunk).await?;
    }
    consumer.await??;
    let pipeline = start.elapsed();

    println!(
        "bus throughput, {n} messages of 1 KiB, quorum queue, batch {BATCH}, ack every {ACK_EVERY}"
    );
    println!(
        "  publish, batched confirms : {:>9.0} msg/s",
        rate(n, publish)
    );
    println!(
        "  publish, one confirm each : {:>9.0} msg/s ({SINGLE} messages)",
        rate(SINGLE, single)
    );
    println!(
        "  consume + ack_multiple    : {:>9.0} msg/s",
        rate(n, consume)
    );
    println!(
        "  publish ∥ consume + ack   : {:>9.0} msg/s",
        rate(n, pipeline)
    );

    bus.delete_topology().await?;
    bus.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}
