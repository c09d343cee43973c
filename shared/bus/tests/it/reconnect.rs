//! Connection loss: the broker closes our connections (own vhost only); the bus reports
//! not-ready, reconnects, redeclares, and consumers and publishers resume without losing a
//! message.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bus::{Bus, Outgoing};

use crate::helpers::{random_name, test_config, wait_until, Vhost};

const TOTAL: usize = 300;

#[tokio::test]
async fn consumer_and_publisher_resume_after_the_broker_closes_the_connection() {
    let vhost = Vhost::create().await;
    let mut config = test_config(&random_name("reconnect"));
    config.url = vhost.url();
    let bus = Bus::connect(config).await.unwrap();
    assert!(bus.is_ready());
    assert_eq!(bus.connection_generation(), 1);
    let ingest = bus.topology().queue("ingest");

    // Record every readiness value the bus goes through.
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let mut readiness = bus.readiness();
    let recorder = {
        let transitions = transitions.clone();
        tokio::spawn(async move {
            while readiness.changed().await.is_ok() {
                let ready = *readiness.borrow_and_update();
                transitions.lock().unwrap().push(ready);
            }
        })
    };

    // Consumer: ack everything, remember distinct ids (redeliveries after the loss are allowed).
    let received = Arc::new(Mutex::new(HashSet::new()));
    let deliveries = Arc::new(Mutex::new(0usize));
    let mut consumer = bus.consumer("ingest").unwrap();
    let worker = {
        let (received, deliveries) = (received.clone(), deliveries.clone());
        tokio::spawn(async move {
            while let Some(delivery) = consumer.recv().await {
                let id = delivery.message_id().unwrap().to_owned();
                // A failed ack (connection gone) means the broker redelivers: fine.
                if delivery.ack().await.is_ok() {
                    received.lock().unwrap().insert(id);
                }
                *deliveries.lock().unwrap() += 1;
            }
        })
    };

    // Publisher in the background, like the outbox relay: republish a batch until confirmed.
    let publish_errors = Arc::new(Mutex::new(0usize));
    let producer = {
        let bus = bus.clone();
        let ingest = ingest.clone();
        let publish_errors = publish_errors.clone();
        tokio::spawn(async move {
            let publisher = bus.publisher();
            for batch in 0..TOTAL / 10 {
                let items: Vec<Outgoing> = (0..10)
                    .map(|i| {
                        let n = batch * 10 + i;
                        Outgoing::to_queue(&ingest, format!("{n}")).message_id(format!("m-{n}"))
                    })
                    .collect();
                let mut tries = 0;
                while let Err(error) = publisher.publish_batch(&items).await {
                    assert!(error.is_retryable(), "{error:?}");
                    *publish_errors.lock().unwrap() += 1;
                    tries += 1;
                    assert!(tries < 20, "publishing never recovered");
                }
                // Spread the publishing over the outage.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };

    wait_until("a third received", || async {
        received.lock().unwrap().len() >= TOTAL / 3
    })
    .await;
    vhost.close_connections().await;

    wait_until("reconnected", || async {
        bus.connection_generation() >= 2 && bus.is_ready()
    })
    .await;
    producer.await.unwrap();
    wait_until("all received", || async {
        received.lock().unwrap().len() == TOTAL
    })
    .await;
    wait_until("queue drained", || async {
        bus.message_count(&ingest).await.unwrap() == 0
    })
    .await;

    let seen = transitions.lock().unwrap().clone();
    assert!(
        seen.windows(2).any(|w| w == [false, true]),
        "readiness should go false then true: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&true));
    let total_deliveries = *deliveries.lock().unwrap();
    assert!(total_deliveries >= TOTAL, "{total_deliveries}");
    println!(
        "reconnect: {total_deliveries} deliveries for {TOTAL} messages, {} publish retries, readiness {seen:?}",
        publish_errors.lock().unwrap()
    );

    bus.close().await;
    worker.await.unwrap();
    recorder.abort();
    vhost.delete().await;
}

#[tokio::test]
async fn publish_returns_within_the_timeout_while_the_broker_is_unreachable() {
    let vhost = Vhost::create().await;
    let mut config = test_config(&random_name("hang"));
    config.url = vhost.url();
    config.publish_timeout = std::time::Duration::from_secs(1);
    let bus = Bus::connect(config).await.unwrap();
    let publisher = bus.publisher();
    let ingest = bus.topology().queue("ingest");
    publisher
        .publish(&Outgoing::to_queue(&ingest, b"ok".to_vec()))
        .await
        .unwrap();

    // Without its vhost the bus cannot reconnect: it stays not-ready and every publish gives
    // up at the timeout instead of hanging (lapin#409).
    vhost.delete().await;
    wait_until("not ready", || async { !bus.is_ready() }).await;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let err = publisher
            .publish(&Outgoing::to_queue(&ingest, b"lost".to_vec()))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "publish took {:?}",
            started.elapsed()
        );
    }
    assert!(bus
        .wait_ready(std::time::Duration::from_millis(200))
        .await
        .is_err());
    bus.close().await;
}
