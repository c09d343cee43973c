//! Liveness and readiness endpoints over the readiness registry.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, App};
use platform::{Metrics, Readiness};
use serde_json::{json, Value};

async fn get(readiness: &Readiness, path: &str) -> (StatusCode, Value) {
    let app = test::init_service(App::new().configure(platform::http::configure(
        readiness.clone(),
        Metrics::new().unwrap(),
    )))
    .await;
    let resp = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    let status = resp.status();
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    (status, test::read_body_json(resp).await)
}

#[actix_web::test]
async fn live_is_200_even_when_not_ready() {
    let readiness = Readiness::new();
    let _broker = readiness.flag("broker");
    let (status, body) = get(&readiness, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "live" }));
}

#[actix_web::test]
async fn ready_flips_with_the_flags() {
    let readiness = Readiness::new();
    let broker = readiness.flag("broker");
    let key = readiness.flag("signing-key");

    let (status, body) = get(&readiness, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({ "ready": false, "checks": [
            { "name": "broker", "ready": false, "reason": "not-ready" },
            { "name": "signing-key", "ready": false, "reason": "not-ready" }
        ]})
    );

    broker.set_ready();
    let (status, _) = get(&readiness, "/health/ready").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "one check still failing"
    );

    key.set_ready();
    let (status, body) = get(&readiness, "/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ready"], true);

    broker.set_not_ready();
    let (status, body) = get(&readiness, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["checks"][0],
        json!({ "name": "broker", "ready": false, "reason": "not-ready" })
    );
}

#[actix_web::test]
async fn probes_run_per_request_and_time_out() {
    let readiness = Readiness::new().with_probe_timeout(Duration::from_millis(50));
    let db_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = db_up.clone();
    readiness.probe("database", move || {
        let up = flag.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if up {
                Ok(())
            } else {
                Err("connect-failed")
            }
        }
    });
    readiness.probe("hangs", std::future::pending);

    let (status, body) = get(&readiness, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["checks"][0],
        json!({ "name": "database", "ready": false, "reason": "connect-failed" })
    );
    assert_eq!(
        body["checks"][1],
        json!({ "name": "hangs", "ready": false, "reason": "timeout" })
    );

    db_up.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = readiness.report().await;
    assert!(report.checks[0].ready);
    assert!(!report.ready, "the hanging probe still fails");
}

#[actix_web::test]
async fn no_checks_means_ready() {
    let (status, body) = get(&Readiness::new(), "/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "ready": true, "checks": [] }));
}

#[tokio::test]
async fn a_flag_can_be_awaited() {
    let readiness = Readiness::new();
    let key = readiness.flag("signing-key");
    let mut rx = key.subscribe();
    let waiter = tokio::spawn(async move { rx.wait_for(|ready| *ready).await.is_ok() });
    key.set_ready();
    assert!(tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap());
    assert!(key.is_ready());
}
