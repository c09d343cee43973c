//! Publishing with confirms and consuming with (batched) manual acks.

use std::collections::HashSet;

use bus::{BusError, Outgoing};

use crate::helpers::{connect, random_name, recv, teardown, wait_count};

#[tokio::test]
async fn batch_of_1000_is_confirmed_then_consumed_with_ack_multiple() {
    let prefix = random_name("batch");
    let bus = connect(&prefix).await;
    let issue = bus.topology().queue("issue");
    let batch: Vec<Outgoing> = (0..1000)
        .map(|i| {
            Outgoing::to_queue(&issue, format!("{{\"n\":{i}}}"))
                .message_id(format!("job-{i}"))
                .content_type("application/json")
                .header_str("source", "test")
        })
        .collect();
    bus.publisher().publish_batch(&batch).await.unwrap();
    // Confirmed means stored: all 1000 are there before anyone consumes.
    wait_count(&bus, &issue, 1000).await;

    let mut consumer = bus.consumer("issue").unwrap();
    let mut seen = HashSet::new();
    let mut pending = None;
    for n in 1..=1000 {
        let delivery = recv(&mut consumer).await;
        assert_eq!(delivery.queue(), issue);
        assert_eq!(delivery.content_type(), Some("application/json"));
        assert_eq!(delivery.header_str("source").as_deref(), Some("test"));
        assert_eq!(delivery.delivery_count(), 0);
        assert!(!delivery.redelivered());
        let id = delivery.message_id().unwrap().to_owned();
        assert_eq!(
            delivery.body(),
            format!("{{\"n\":{}}}", &id[4..]).as_bytes()
        );
        assert!(seen.insert(id));
        // Ack every 100th with `multiple`, dropping the earlier ones unsettled (they are
        // covered by the multiple ack).
        if n % 100 == 0 {
            delivery.ack_multiple().await.unwrap();
            pending = None;
        } else {
            pending = Some(delivery);
        }
    }
    assert!(pending.is_none());
    assert_eq!(seen.len(), 1000);
    drop(consumer);
    // Nothing comes back: every delivery was acked.
    wait_count(&bus, &issue, 0).await;
    teardown(bus).await;
}

#[tokio::test]
async fn unroutable_publish_is_an_error_not_a_silent_drop() {
    let prefix = random_name("unroutable");
    let bus = connect(&prefix).await;
    let publisher = bus.publisher();
    let err = publisher
        .publish(&Outgoing::to_queue(
            format!("{prefix}.no-such-queue"),
            b"x".to_vec(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    assert_eq!(err.code(), "bus-unroutable");
    // In a batch, the routable ones are stored and the error still reports the batch.
    let issue = bus.topology().queue("issue");
    let err = publisher
        .publish_batch(&[
            Outgoing::to_queue(&issue, b"a".to_vec()),
            Outgoing::to_queue(format!("{prefix}.no-such-queue"), b"b".to_vec()),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    wait_count(&bus, &issue, 1).await;
    // The publisher's channel is still usable after per-message errors.
    publisher
        .publish(&Outgoing::to_queue(&issue, b"c".to_vec()))
        .await
        .unwrap();
    wait_count(&bus, &issue, 2).await;
    teardown(bus).await;
}

#[tokio::test]
async fn close_ends_consumers_and_refuses_publishes() {
    let prefix = random_name("close");
    let bus = connect(&prefix).await;
    let mut consumer = bus.consumer("deliver").unwrap();
    let publisher = bus.publisher();
    bus.delete_topology().await.unwrap();
    bus.close().await;
    assert!(!bus.is_ready());
    let ended = tokio::time::timeout(crate::helpers::DEADLINE, consumer.recv())
        .await
        .unwrap();
    assert!(ended.is_none());
    let err = publisher
        .publish(&Outgoing::to_queue(
            format!("{prefix}.deliver"),
            b"x".to_vec(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Closed), "{err:?}");
    assert!(!err.is_retryable());
}
