//! The Prometheus endpoint lists the shared metrics and what was recorded.

use std::time::Duration;

use actix_web::{test as atest, App};
use platform::metrics::{names, DeliveryOutcome, EventOutcome};
use platform::{Metrics, Readiness};

#[actix_web::test]
async fn metrics_endpoint_exposes_the_named_metrics() {
    let metrics = Metrics::new().unwrap();
    metrics.record_event(EventOutcome::Issued);
    metrics.record_event(EventOutcome::Issued);
    metrics.record_event(EventOutcome::Rejected);
    metrics.observe_issue_latency(Duration::from_millis(40));
    metrics.record_delivery_attempt("sms", DeliveryOutcome::Retry);
    metrics.set_dlq_depth(3);
    metrics.set_outbox_lag(Duration::from_secs(2));
    let custom = metrics
        .counter_vec("vaxcred_test_things_total", "Things.", &["kind"])
        .unwrap();
    custom.with_label_values(&["a"]).inc();

    let app = atest::init_service(
        App::new().configure(platform::http::configure(Readiness::new(), metrics.clone())),
    )
    .await;
    let resp =
        atest::call_service(&app, atest::TestRequest::get().uri("/metrics").to_request()).await;
    assert!(resp.status().is_success());
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(atest::read_body(resp).await.to_vec()).unwrap();

    for name in [
        names::EVENTS_TOTAL,
        names::ISSUE_LATENCY_SECONDS,
        names::DELIVERY_ATTEMPTS_TOTAL,
        names::DLQ_DEPTH,
        names::OUTBOX_LAG_SECONDS,
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        text.contains("vaxcred_events_total{outcome=\"issued\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("vaxcred_events_total{outcome=\"rejected\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("vaxcred_events_total{outcome=\"held\"} 0"),
        "series pre-created:\n{text}"
    );
    assert!(
        text.contains("vaxcred_issue_latency_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("vaxcred_delivery_attempts_total{channel=\"sms\",outcome=\"retry\"} 1"),
        "{text}"
    );
    assert!(text.contains("vaxcred_dlq_depth 3"), "{text}");
    assert!(text.contains("vaxcred_outbox_lag_seconds 2"), "{text}");
    assert!(
        text.contains("vaxcred_test_things_total{kind=\"a\"} 1"),
        "{text}"
    );
}

#[test]
fn registering_a_name_twice_is_an_error() {
    let metrics = Metrics::new().unwrap();
    let err = metrics.gauge(names::DLQ_DEPTH, "again").unwrap_err();
    assert_eq!(err.code(), "metrics-registration");
}
