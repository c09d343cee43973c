//! End-to-end pipeline benchmark on PostgreSQL (or SQLite with `BENCH_BACKEND=sqlite`):
//! publish → card stored → delivery message published, with the broker, the database and
//! vaxcred on one machine.
//!
//! 1. Sustained throughput: `BENCH_EVENTS` (default 20,000) one-dose events for distinct
//!    patients published as fast as confirms allow; the clock stops when a consumer of
//!    `{p}.deliver` (standing in for the delivery service) has received one delivery job per
//!    event (every card stored and its delivery published).
//! 2. Latency at a fixed rate: `BENCH_RATE` (default 500) events/s for `BENCH_SECONDS` (default
//!    10); per event, publish time → the credential row's `created_at` (card stored; its
//!    delivery message follows within the relay's next round). Reports p50/p99.
//!
//! Run: `cargo bench -p vaxcred-tests --bench pipeline`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark harness"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// As in `vaxcred serve`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use vaxcred_tests::fhir;
use vaxcred_tests::{bus_config, message, random_name, Backend, Pipeline, TestDb};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("sqlite") => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    let db = TestDb::new(backend, None).await;
    let mut config = bus_config(&random_name("bench"), None);
    config.prefetch = u16::try_from(env_usize("BENCH_PREFETCH", 200)).unwrap();
    let bus = bus::Bus::connect(config).await.unwrap();
    let p = Pipeline::start(db.store.clone(), db.dir.path().to_owned(), bus, None).await;
    // The delivery service's side of the queue: count delivery jobs (they travel in packs).
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut consumer = p.bus.consumer("deliver").unwrap();
    let counter = delivered.clone();
    let drain = tokio::spawn(async move {
        while let Some(d) = consumer.recv().await {
            let jobs = serde_json::from_slice::<store::DeliverMessage>(d.body())
                .unwrap()
                .into_jobs();
            counter.fetch_add(jobs.len(), Ordering::SeqCst);
            d.ack().await.unwrap();
        }
    });
    let deliver = delivered.clone();

    // 0. Warm-up on PostgreSQL: a burst into the fresh schema, then ANALYZE, as autovacuum
    //    does on any live database within a minute. A schema with no statistics has the planner
    //    choose sequential scans on tables that grew by thousands of rows since (measured: the
    //    snapshot's dose query alone went from 0.2 to 5 ms per batch). `BENCH_WARMUP=0` skips it.
    let warmup = match backend {
        Backend::Postgres => env_usize("BENCH_WARMUP", 10_000),
        Backend::Sqlite => 0,
    };
    let mut done_so_far = 0;
    if warmup > 0 {
        let (published, done) = burst(&p, &delivered, "W", 0, warmup).await;
        println!(
            "warm-up ({backend:?}, fresh schema, no statistics): {warmup} events, published in {:.2}s, done in {:.2}s => {:.0} events/s",
            published.as_secs_f64(),
            done.as_secs_f64(),
            warmup as f64 / done.as_secs_f64()
        );
        done_so_far = warmup;
        let schema = db.schema().unwrap();
        let status = std::process::Command::new("psql")
            .args([&vaxcred_tests::postgres_url(), "-qc"])
            .arg(format!("ANALYZE {schema}.patients, {schema}.patient_identifiers, {schema}.doses, {schema}.credentials, {schema}.events, {schema}.outbox"))
            .status()
            .unwrap();
        assert!(status.success(), "ANALYZE failed");
    }

    // 1. Throughput.
    let n = env_usize("BENCH_EVENTS", 20_000);
    let (published, done) = burst(&p, &delivered, "T", done_so_far, n).await;
    println!(
        "throughput ({backend:?}): {n} events, published in {:.2}s, all cards stored and delivery messages published in {:.2}s => {:.0} events/s end to end",
        published.as_secs_f64(),
        done.as_secs_f64(),
        n as f64 / done.as_secs_f64()
    );
    let publisher = p.bus.publisher();

    // 2. Latency at a fixed rate.
    let rate = env_usize("BENCH_RATE", 500);
    let seconds = env_usize("BENCH_SECONDS", 10);
    let total = rate * seconds;
    let tick = Duration::from_secs(1) / u32::try_from(rate).unwrap();
    let mut sent = Vec::with_capacity(total);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        interval.tick().await;
        let m = message(
            p.bus.topology(),
            fhir::dose(&format!("L-{i}"), 1, 1, "A1001"),
            Some(&format!("l-{i}")),
            None,
        );
        let at = chrono_now();
        publisher.publish(&m).await.unwrap();
        sent.push(at);
    }
    let expected = done_so_far + n + total;
    while deliver.load(Ordering::SeqCst) < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::with_capacity(total);
    for (i, at) in sent.iter().enumerate() {
        let patient = p
            .store
            .find_patient_by_identifier(&p.issuer_id, fhir::MRN, &format!("L-{i}"))
            .await
            .unwrap()
            .unwrap();
        let creds = p.store.list_credentials(&patient.id).await.unwrap();
        let stored = creds.iter().map(|c| c.created_at).min().unwrap();
        latencies.push((stored - *at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "latency ({backend:?}) at {rate} events/s for {seconds}s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (publish → card stored)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    drain.abort();
    p.stop().await;
    db.cleanup().await;
}

/// Publishes `n` one-dose events for new patients `{tag}-{i}` as fast as confirms allow and
/// waits until `before + n` delivery jobs were consumed; returns (publish time, total).
async fn burst(
    p: &Pipeline,
    deliver: &AtomicUsize,
    tag: &str,
    before: usize,
    n: usize,
) -> (Duration, Duration) {
    let messages: Vec<_> = (0..n)
        .map(|i| {
            message(
                p.bus.topology(),
                fhir::dose(&format!("{tag}-{i}"), 1, 1, "A1001"),
                Some(&format!("{tag}-{i}")),
                None,
            )
        })
        .collect();
    let start = Instant::now();
    let publisher = p.bus.publisher();
    let publish = async {
        for chunk in messages.chunks(500) {
            publisher.publish_batch(chunk).await.unwrap();
        }
        start.elapsed()
    };
    let wait = async {
        loop {
            if deliver.load(Ordering::SeqCst) >= before + n {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::join!(publish, wait)
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
