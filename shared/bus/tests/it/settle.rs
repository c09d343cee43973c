//! Settlement: dead-lettering with reason headers, DLQ list/replay, delayed retry, and the
//! broker's delivery limit for messages that keep being rejected.

use std::time::{Duration, Instant};

use bus::{Outgoing, Settled};

use crate::helpers::{connect, random_name, recv, teardown, wait_count, wait_until, DEADLINE};

#[tokio::test]
async fn dead_letter_adds_reason_headers_and_replay_returns_the_message() {
    let prefix = random_name("dlq");
    let bus = connect(&prefix).await;
    let ingest = bus.topology().queue("ingest");
    let dlq = bus.topology().dlq();
    bus.publisher()
        .publish(
            &Outgoing::to_queue(&ingest, b"not json".to_vec())
                .message_id("evt-1")
                .header_str("source", "ehr-a"),
        )
        .await
        .unwrap();
    let mut consumer = bus.consumer("ingest").unwrap();
    let delivery = recv(&mut consumer).await;
    delivery
        .dead_letter(
            "fhir-malformed-json",
            "body is not valid JSON\r\nforged line",
        )
        .await
        .unwrap();
    wait_count(&bus, &dlq, 1).await;
    wait_count(&bus, &ingest, 0).await;

    let letters = bus.dlq_list(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.message_id.as_deref(), Some("evt-1"));
    assert_eq!(letter.error_code.as_deref(), Some("fhir-malformed-json"));
    // Control characters are neutralised so a reason cannot forge log lines.
    assert_eq!(
        letter.reason.as_deref(),
        Some("body is not valid JSON  forged line")
    );
    assert_eq!(letter.source_queue.as_deref(), Some(ingest.as_str()));
    assert_eq!(
        bus::headers::get_string(Some(&letter.headers), "source").as_deref(),
        Some("ehr-a")
    );
    assert_eq!(letter.body, b"not json");
    assert_eq!(letter.x_death, None);
    // Listing does not consume.
    wait_count(&bus, &dlq, 1).await;

    // Replay with a filter that matches nothing leaves it; with its id moves it back.
    let report = bus.dlq_replay(10, Some("other")).await.unwrap();
    assert_eq!((report.replayed, report.skipped), (0, 1));
    wait_count(&bus, &dlq, 1).await;
    let report = bus.dlq_replay(10, Some("evt-1")).await.unwrap();
    assert_eq!((report.replayed, report.skipped), (1, 0));
    wait_count(&bus, &dlq, 0).await;

    let again = recv(&mut consumer).await;
    assert_eq!(again.message_id(), Some("evt-1"));
    assert_eq!(again.header_str("source").as_deref(), Some("ehr-a"));
    assert_eq!(again.header_str(bus::headers::ERROR), None);
    assert_eq!(again.header_str(bus::headers::SOURCE_QUEUE), None);
    assert_eq!(again.body(), b"not json");
    again.ack().await.unwrap();
    drop(consumer);
    wait_count(&bus, &ingest, 0).await;
    teardown(bus).await;
}

#[tokio::test]
async fn retry_comes_back_after_the_delay_with_an_attempt_counter_then_dead_letters() {
    let prefix = random_name("retry");
    let bus = connect(&prefix).await;
    let deliver = bus.topology().queue("deliver");
    bus.publisher()
        .publish(
            &Outgoing::to_queue(&deliver, b"job".to_vec())
                .message_id("job-7")
                .header_str("channel", "sms"),
        )
        .await
        .unwrap();
    let mut consumer = bus.consumer("deliver").unwrap();
    let first = recv(&mut consumer).await;
    assert_eq!(first.attempt(), 0);
    let sent = Instant::now();
    first.retry(0).await.unwrap();

    let second = recv(&mut consumer).await;
    // The copy waited in {p}.retry.deliver.200ms (TTL) before coming back.
    assert!(
        sent.elapsed() >= Duration::from_millis(180),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(second.attempt(), 1);
    assert_eq!(second.message_id(), Some("job-7"));
    assert_eq!(second.header_str("channel").as_deref(), Some("sms"));
    assert_eq!(second.body(), b"job");
    let death = second.x_death().unwrap();
    assert_eq!(death.reason, "expired");
    assert_eq!(death.queue, format!("{prefix}.retry.deliver.200ms"));

    // The schedule has two delays: one more retry (400 ms), then the DLQ.
    let outcome = second
        .retry_or_dead_letter("sms-gateway-down", "gateway kept failing")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Settled::Retried {
            attempt: 2,
            delay: Duration::from_millis(400)
        }
    );
    let third = recv(&mut consumer).await;
    assert_eq!(third.attempt(), 2);
    let outcome = third
        .retry_or_dead_letter("sms-gateway-down", "retries_exhausted")
        .await
        .unwrap();
    assert_eq!(outcome, Settled::DeadLettered);
    wait_count(&bus, &bus.topology().dlq(), 1).await;
    let letters = bus.dlq_list(10).await.unwrap();
    assert_eq!(letters[0].error_code.as_deref(), Some("sms-gateway-down"));
    assert_eq!(letters[0].reason.as_deref(), Some("retries_exhausted"));
    assert_eq!(
        bus::headers::get_i64(Some(&letters[0].headers), bus::headers::ATTEMPT),
        Some(2)
    );
    drop(consumer);
    teardown(bus).await;
}

/// Observed on RabbitMQ 3.10.8 with `x-delivery-limit = 5`: the message is delivered 6 times
/// (first without `x-delivery-count`, then 1..=5) and then dead-lettered with reason
/// `delivery_limit`. Other broker versions differ by one; this pins the one we run on.
const DELIVERIES_BEFORE_DLQ: usize = 6;

#[tokio::test]
async fn reject_requeue_reaches_the_dlq_by_delivery_limit() {
    let prefix = random_name("limit");
    let bus = connect(&prefix).await;
    let ingest = bus.topology().queue("ingest");
    let dlq = bus.topology().dlq();
    let publisher = bus.publisher();
    publisher
        .publish(&Outgoing::to_queue(&ingest, b"poison".to_vec()).message_id("poison"))
        .await
        .unwrap();
    let mut consumer = bus.consumer("ingest").unwrap();
    let mut counts = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(Some(delivery)) => {
                assert_eq!(delivery.message_id(), Some("poison"));
                counts.push(delivery.delivery_count());
                delivery.reject_requeue().await.unwrap();
            }
            Ok(None) => panic!("consumer ended"),
            Err(_) => {
                if bus.message_count(&dlq).await.unwrap() == 1 {
                    break;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poison never reached the DLQ: {counts:?}"
        );
    }
    assert_eq!(
        counts.len(),
        DELIVERIES_BEFORE_DLQ,
        "delivery counts seen: {counts:?}"
    );
    assert_eq!(counts, vec![0, 1, 2, 3, 4, 5]);

    // A good message behind it is processed normally (no head-of-line blocking).
    publisher
        .publish(&Outgoing::to_queue(&ingest, b"good".to_vec()).message_id("good"))
        .await
        .unwrap();
    let good = recv(&mut consumer).await;
    assert_eq!(good.message_id(), Some("good"));
    good.ack().await.unwrap();

    let letters = bus.dlq_list(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let death = letters[0].x_death.clone().unwrap();
    assert_eq!(death.reason, "delivery_limit");
    assert_eq!(death.queue, ingest);
    assert_eq!(letters[0].error_code, None);
    assert_eq!(letters[0].source_queue.as_deref(), Some(ingest.as_str()));
    drop(consumer);
    wait_until("ingest drained", || async {
        bus.message_count(&ingest).await.unwrap() == 0
    })
    .await;
    teardown(bus).await;
}
