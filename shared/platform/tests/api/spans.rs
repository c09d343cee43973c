//! Span capture with the in-memory exporter, and what the request span records.

use actix_web::{test as atest, web, App, HttpResponse};
use opentelemetry::Value;
use platform::http::request_tracing;
use platform::telemetry::capture_spans;
use tracing::instrument::WithSubscriber;

#[test]
fn a_span_and_its_fields_are_captured() {
    let (captured, subscriber) = capture_spans("platform-test");
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "issue_card",
            credential_id = "cred-42",
            kid = tracing::field::Empty
        );
        let _entered = span.enter();
        span.record("kid", "kid-7");
        tracing::info!(outcome = "issued", "card issued");
    });
    let spans = captured.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "issue_card");
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attr("credential_id"), Some(Value::from("cred-42")));
    assert_eq!(attr("kid"), Some(Value::from("kid-7")));
    assert!(captured.all_text().contains("card issued"));
}

#[actix_web::test]
async fn request_span_records_the_route_not_the_url_or_query() {
    let (captured, subscriber) = capture_spans("platform-test");
    async {
        let app = atest::init_service(App::new().wrap(request_tracing()).route(
            "/credentials/{id}",
            web::get().to(|| async { HttpResponse::Ok().finish() }),
        ))
        .await;
        let req = atest::TestRequest::get()
            .uri("/credentials/cred-98765?token=canary-secret-token&name=Jane%20Canary")
            .insert_header(("user-agent", "canary-agent"))
            .to_request();
        let resp = atest::call_service(&app, req).await;
        assert!(resp.status().is_success());
    }
    .with_subscriber(subscriber)
    .await;

    let spans = captured.spans();
    let span = spans
        .iter()
        .find(|s| s.name == "GET /credentials/{id}")
        .unwrap_or_else(|| panic!("no request span in {:?}", captured.names()));
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("http.route").as_deref(), Some("/credentials/{id}"));
    assert_eq!(attr("http.method").as_deref(), Some("GET"));
    assert_eq!(attr("http.status_code").as_deref(), Some("200"));
    let text = captured.all_text();
    for leak in ["canary-secret-token", "Jane", "cred-98765", "canary-agent"] {
        assert!(!text.contains(leak), "{leak} in spans:\n{text}");
    }
}
