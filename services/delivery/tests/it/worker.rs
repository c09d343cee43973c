//! The worker end to end over the local RabbitMQ (own prefix): a `deliver` message for a new
//! credential reaches the patient's wallet, signed; so does a pack of jobs; a malformed message
//! goes to the DLQ.

use std::time::Duration;

use bus::{Bus, BusConfig, Outgoing};
use rand_core::{OsRng, RngCore};
use store::DeliveryStatus;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    example_jws, new_version, receiver, seed, spawn_app, store_card, wait_for, Reply, TestDb,
    ADMIN_TOKEN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_message_pushes_to_the_wallet() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let wallet = receiver(vec![Reply::status(200)]).await;
    let r = app
        .http
        .post(format!("{}/patients/{}/wallets", app.base, s.patient_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "url": format!("{}/push", wallet.base) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let prefix = format!("dlvtest-{:010x}", OsRng.next_u64() & 0xff_ffff_ffff);
    let bus = Bus::connect(BusConfig {
        prefix: prefix.clone(),
        retry_delays: vec![Duration::from_millis(200)],
        connection_name: format!("{prefix}-test"),
        ..BusConfig::default()
    })
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(delivery::run_worker(
        app.state.clone(),
        bus.clone(),
        shutdown.clone(),
    ));

    let queue = bus.topology().queue("deliver");
    let job = serde_json::to_vec(&store::DeliverJob {
        credential_id: s.credential_id.clone(),
    })
    .unwrap();
    bus.publisher()
        .publish(&Outgoing::to_queue(queue.clone(), job).message_id("outbox-1"))
        .await
        .unwrap();
    bus.publisher()
        .publish(&Outgoing::to_queue(queue.clone(), b"not json".to_vec()).message_id("outbox-2"))
        .await
        .unwrap();

    let job = wait_for("wallet delivery succeeded", || async {
        let jobs = db.store.list_deliveries(&s.credential_id).await.unwrap();
        jobs.into_iter()
            .find(|d| d.status == DeliveryStatus::Succeeded)
    })
    .await;
    assert!(job.channel.starts_with("wallet:"));
    assert_eq!(wallet.seen().len(), 1);
    assert!(wallet.seen()[0]
        .header("webhook-signature")
        .unwrap()
        .starts_with("v1,"));

    let dlq = bus.topology().dlq();
    wait_for("bad message dead-lettered", || async {
        (bus.message_count(&dlq).await.unwrap() == 1).then_some(())
    })
    .await;

    // A pack (the relay's usual shape, one per issue batch): the first card again (idempotent:
    // still one job for it), a newer card of the patient, and a credential that does not exist
    // (nothing to deliver). The newer card reaches the wallet; the pack is not dead-lettered.
    new_version(&db.store, &s.issuer_id, 2).await;
    let second = store_card(&db.store, &s.issuer_id, &s.patient_id, 2, &example_jws()).await;
    let pack = serde_json::json!({ "jobs": [
        { "credential_id": s.credential_id },
        { "credential_id": second },
        { "credential_id": "cred_does_not_exist" },
    ]});
    bus.publisher()
        .publish(
            &Outgoing::to_queue(queue.clone(), serde_json::to_vec(&pack).unwrap())
                .message_id("outbox-3-5"),
        )
        .await
        .unwrap();
    wait_for("the pack's new card delivered", || async {
        let jobs = db.store.list_deliveries(&second).await.unwrap();
        jobs.into_iter()
            .find(|d| d.status == DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!(
        db.store
            .list_deliveries(&s.credential_id)
            .await
            .unwrap()
            .len(),
        1,
        "the pack repeated the first card: still one delivery job"
    );
    assert_eq!(wallet.seen().len(), 2);
    let letters = bus.dlq_list(10).await.unwrap();
    assert_eq!(letters.len(), 1, "only the malformed message");
    assert_eq!(letters[0].body, b"not json");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    bus.delete_topology().await.unwrap();
    bus.close().await;
}
