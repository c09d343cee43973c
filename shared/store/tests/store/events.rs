//! Idempotent event recording and status transitions.

use store::{EventStatus, IncomingEvent, Recorded, Store};

use crate::helpers::{both, change, dose, issuer};

fn msg(id: Option<&str>, hash: &str) -> IncomingEvent {
    IncomingEvent {
        message_id: id.map(str::to_owned),
        content_hash: hash.to_owned(),
        source: Some("ehr-a".to_owned()),
    }
}

async fn record_events_is_idempotent(store: Store) {
    let first = store
        .record_events(&[
            msg(Some("m1"), "h1"),
            msg(Some("m2"), "h2"),
            msg(Some("m1"), "h1"),
            msg(None, "h3"),
        ])
        .await
        .unwrap();
    let Recorded::New { event_id: e1 } = first[0].clone() else {
        panic!("{:?}", first[0])
    };
    assert!(matches!(first[1], Recorded::New { .. }));
    assert_eq!(
        first[2],
        Recorded::DuplicateInBatch {
            event_id: e1.clone(),
            first_index: 0
        }
    );
    assert!(matches!(first[3], Recorded::New { .. }));

    // Redelivered before processing: process again.
    let again = store
        .record_events(&[msg(Some("m1"), "h1"), msg(None, "h3")])
        .await
        .unwrap();
    assert_eq!(
        again[0],
        Recorded::Unfinished {
            event_id: e1.clone(),
            status: EventStatus::Received
        }
    );
    assert!(matches!(again[1], Recorded::Unfinished { .. }));

    // Same message id from another source is a different message.
    let other = store
        .record_events(&[IncomingEvent {
            source: Some("ehr-b".to_owned()),
            ..msg(Some("m1"), "h1")
        }])
        .await
        .unwrap();
    assert!(matches!(other[0], Recorded::New { .. }));

    // Once processed, a redelivery is just acked.
    let iss = issuer(&store, "a").await;
    store
        .apply_event(&change(
            &e1,
            &iss,
            "p1",
            vec![dose("imm1", 1, store::DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let after = store.record_events(&[msg(Some("m1"), "h1")]).await.unwrap();
    assert_eq!(
        after[0],
        Recorded::Finished {
            event_id: e1.clone(),
            status: EventStatus::Processed
        }
    );
    let ev = store.get_event(&e1).await.unwrap().unwrap();
    assert_eq!(ev.status, EventStatus::Processed);
    assert_eq!(ev.message_id.as_deref(), Some("m1"));
}
both!(record_events_is_idempotent);

async fn reject_and_retry_statuses(store: Store) {
    let r = store
        .record_events(&[msg(Some("bad"), "hb"), msg(Some("flaky"), "hf")])
        .await
        .unwrap();
    let (Recorded::New { event_id: bad }, Recorded::New { event_id: flaky }) =
        (r[0].clone(), r[1].clone())
    else {
        panic!("{r:?}")
    };
    store.reject_event(&bad, "fhir-invalid-json").await.unwrap();
    store
        .mark_event_retrying(&flaky, "ehr-unavailable")
        .await
        .unwrap();
    store
        .mark_event_retrying(&flaky, "ehr-unavailable")
        .await
        .unwrap();

    let ev = store.get_event(&bad).await.unwrap().unwrap();
    assert_eq!(
        (ev.status, ev.error_code.as_deref()),
        (EventStatus::Rejected, Some("fhir-invalid-json"))
    );
    let ev = store.get_event(&flaky).await.unwrap().unwrap();
    assert_eq!((ev.status, ev.attempts), (EventStatus::Retrying, 2));

    let again = store
        .record_events(&[msg(Some("bad"), "hb"), msg(Some("flaky"), "hf")])
        .await
        .unwrap();
    assert_eq!(
        again[0],
        Recorded::Finished {
            event_id: bad.clone(),
            status: EventStatus::Rejected
        }
    );
    assert_eq!(
        again[1],
        Recorded::Unfinished {
            event_id: flaky.clone(),
            status: EventStatus::Retrying
        }
    );

    let counts = store.count_events_by_status().await.unwrap();
    assert_eq!(counts.get(&EventStatus::Rejected), Some(&1));
    assert_eq!(counts.get(&EventStatus::Retrying), Some(&1));

    let err = store.reject_event("evt_missing", "x").await.unwrap_err();
    assert_eq!(err.code(), "store-not-found");
}
both!(reject_and_retry_statuses);

async fn large_batch_is_chunked(store: Store) {
    let batch: Vec<IncomingEvent> = (0..1200)
        .map(|i| msg(Some(&format!("big-{i}")), &format!("h{i}")))
        .collect();
    let r = store.record_events(&batch).await.unwrap();
    assert_eq!(
        r.iter()
            .filter(|x| matches!(x, Recorded::New { .. }))
            .count(),
        1200
    );
    let r = store.record_events(&batch).await.unwrap();
    assert_eq!(
        r.iter()
            .filter(|x| matches!(x, Recorded::Unfinished { .. }))
            .count(),
        1200
    );
}
both!(large_batch_is_chunked);
