//! Wallet push: Standard Webhooks signatures verified by the receiver, retries on schedule for a
//! wallet that answers 500 or is too slow, success for a slow-but-in-time wallet, failure after
//! the schedule, every attempt recorded and visible through `GET /credentials/{id}/deliveries`.

use std::time::Duration;

use delivery::webhook::WebhookSecret;
use serde_json::Value;
use store::DeliveryStatus;

use crate::helpers::{receiver, seed, spawn_app, wait_for, Reply, TestApp, TestDb, ADMIN_TOKEN};

async fn register(app: &TestApp, patient_id: &str, url: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/patients/{patient_id}/wallets", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap()
}

async fn deliveries(app: &TestApp, credential_id: &str) -> Value {
    let r = app
        .http
        .get(format!(
            "{}/credentials/{credential_id}/deliveries",
            app.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Runs the poller until the credential's only wallet job is settled; returns it.
async fn settle(app: &TestApp, credential_id: &str) -> store::Delivery {
    wait_for("wallet job settled", || async {
        delivery::worker::process_due(&app.state).await.unwrap();
        let jobs = app
            .state
            .store()
            .list_deliveries(credential_id)
            .await
            .unwrap();
        jobs.into_iter().next().filter(delivery::worker::is_settled)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_signed_the_standard_webhooks_way() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let wallet = receiver(vec![Reply::status(204)]).await;

    let r = register(&app, &s.patient_id, &format!("{}/hook", wallet.base)).await;
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    let secret = WebhookSecret::parse(reg["secret"].as_str().unwrap()).unwrap();
    assert!(reg["secret"].as_str().unwrap().starts_with("whsec_"));

    // Unauthenticated registration is refused.
    let r = app
        .http
        .post(format!("{}/patients/{}/wallets", app.base, s.patient_id))
        .json(&serde_json::json!({ "url": wallet.base }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(
        delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
            .await
            .unwrap(),
        1
    );
    let job = settle(&app, &s.credential_id).await;
    assert_eq!(job.status, DeliveryStatus::Succeeded);
    assert_eq!(job.attempts, 1);

    let seen = wallet.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path, "/hook");
    assert_eq!(
        req.header("content-type"),
        Some("application/smart-health-card")
    );
    let id = req.header("webhook-id").unwrap();
    let ts: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    let sig = req.header("webhook-signature").unwrap();
    assert!(sig.starts_with("v1,"));
    let now = chrono::Utc::now().timestamp();
    secret.verify(id, ts, &req.body, sig, now, 300).unwrap();
    // A tampered body does not verify.
    let mut tampered = req.body.clone();
    tampered.push(b' ');
    assert!(secret.verify(id, ts, &tampered, sig, now, 300).is_err());
    // The body is the .smart-health-card file.
    let file: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        file["verifiableCredential"][0].as_str().unwrap(),
        crate::helpers::example_jws()
    );

    let listed = deliveries(&app, &s.credential_id).await;
    assert_eq!(listed["deliveries"][0]["status"], "succeeded");
    let metrics = app.metrics.render().unwrap();
    assert!(
        metrics
            .contains(r#"vaxcred_delivery_attempts_total{channel="wallet",outcome="delivered"} 1"#),
        "{metrics}"
    );
    assert_eq!(
        listed["deliveries"][0]["attempt_log"][0]["details"]["http_status"],
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_wallet_is_retried_on_schedule_then_succeeds() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    // 500, then too slow (past the 700 ms timeout), then slow but in time.
    let wallet = receiver(vec![
        Reply::status(500),
        Reply::delayed(200, Duration::from_millis(1_500)),
        Reply::delayed(200, Duration::from_millis(300)),
    ])
    .await;
    register(&app, &s.patient_id, &wallet.base).await;
    delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
        .await
        .unwrap();
    let job = settle(&app, &s.credential_id).await;
    assert_eq!(job.status, DeliveryStatus::Succeeded);
    assert_eq!(job.attempts, 3);
    assert_eq!(job.last_error.as_deref(), Some("outbound-timeout"));

    let seen = wallet.seen();
    assert_eq!(seen.len(), 3);
    // Retries wait per schedule (300 ms, then 600 ms, ±20 %), measured between requests.
    let gap1 = seen[1].at - seen[0].at;
    assert!(
        gap1 >= Duration::from_millis(240),
        "first retry too early: {gap1:?}"
    );
    // The second request timed out at 700 ms; the retry comes ≥ 480 ms after that.
    let gap2 = seen[2].at - seen[1].at;
    assert!(
        gap2 >= Duration::from_millis(700 + 480),
        "second retry too early: {gap2:?}"
    );
    // Every attempt has the same webhook-id (receivers dedupe on it).
    assert!(seen
        .iter()
        .all(|r| r.header("webhook-id") == seen[0].header("webhook-id")));

    let listed = deliveries(&app, &s.credential_id).await;
    let log = listed["deliveries"][0]["attempt_log"].as_array().unwrap();
    let outcomes: Vec<_> = log
        .iter()
        .map(|a| a["details"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "delivered"]);
    assert_eq!(log[0]["details"]["error_code"], "peer-5xx");
    assert_eq!(log[1]["details"]["error_code"], "outbound-timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_that_keeps_failing_is_marked_failed_after_the_schedule() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let wallet = receiver(vec![Reply::status(503)]).await;
    register(&app, &s.patient_id, &wallet.base).await;
    delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
        .await
        .unwrap();
    let job = settle(&app, &s.credential_id).await;
    assert_eq!(job.status, DeliveryStatus::Failed);
    assert_eq!(job.attempts, 3, "first try + 2 scheduled retries");
    assert_eq!(job.last_error.as_deref(), Some("peer-5xx"));
    assert_eq!(wallet.seen().len(), 3);
    // A permanent 4xx is not retried.
    let listed = deliveries(&app, &s.credential_id).await;
    assert_eq!(
        listed["deliveries"][0]["attempt_log"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_error_is_not_retried() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let wallet = receiver(vec![Reply::status(410)]).await;
    register(&app, &s.patient_id, &wallet.base).await;
    delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
        .await
        .unwrap();
    let job = settle(&app, &s.credential_id).await;
    assert_eq!((job.status, job.attempts), (DeliveryStatus::Failed, 1));
    assert_eq!(job.last_error.as_deref(), Some("peer-4xx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_card_is_not_pushed_late() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let wallet = receiver(vec![Reply::status(200)]).await;
    register(&app, &s.patient_id, &wallet.base).await;
    delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
        .await
        .unwrap();
    // A newer card arrives before the old one's push: the old push must not overwrite it.
    crate::helpers::new_version(&db.store, &s.issuer_id, 2).await;
    crate::helpers::store_card(&db.store, &s.issuer_id, &s.patient_id, 2, "newer").await;
    let job = settle(&app, &s.credential_id).await;
    assert_eq!((job.status, job.attempts), (DeliveryStatus::Failed, 1));
    assert_eq!(job.last_error.as_deref(), Some("credential-not-current"));
    assert!(wallet.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let mut busy = Reply::status(429);
    busy.headers = vec![("retry-after".into(), "2".into())];
    let wallet = receiver(vec![busy, Reply::status(200)]).await;
    register(&app, &s.patient_id, &wallet.base).await;
    delivery::worker::enqueue_wallet_jobs(&app.state, &s.credential_id)
        .await
        .unwrap();
    let job = settle(&app, &s.credential_id).await;
    assert_eq!((job.status, job.attempts), (DeliveryStatus::Succeeded, 2));
    let seen = wallet.seen();
    let gap = seen[1].at - seen[0].at;
    // The schedule says ~300 ms; the wallet asked for 2 s.
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
}
