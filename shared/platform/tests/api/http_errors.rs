//! problem+json and OperationOutcome bodies, content types, and opacity of 5xx.

use actix_web::http::StatusCode;
use actix_web::{test as atest, web, App};
use platform::http::{OperationOutcomeError, Problem, FHIR_JSON, PROBLEM_JSON};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
#[error("pool timed out connecting to db-internal-7:5432")]
struct InternalFault;

async fn call(path: &str) -> (StatusCode, String, Value) {
    let app = atest::init_service(
        App::new()
            .route(
                "/bad",
                web::get().to(|| async {
                    Err::<String, _>(Problem::bad_request(
                        "missing-field",
                        "the `contact` field is required",
                    ))
                }),
            )
            .route(
                "/boom",
                web::get().to(|| async { Err::<String, _>(Problem::internal(InternalFault)) }),
            )
            .route(
                "/fhir/bad",
                web::get().to(|| async {
                    Err::<String, _>(OperationOutcomeError::invalid(
                        "unknown-vaccine-code",
                        "vaccine code is outside the configured value sets",
                    ))
                }),
            )
            .route(
                "/fhir/boom",
                web::get().to(|| async {
                    Err::<String, _>(OperationOutcomeError::internal(InternalFault))
                }),
            ),
    )
    .await;
    let resp = atest::call_service(&app, atest::TestRequest::get().uri(path).to_request()).await;
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = atest::read_body_json(resp).await;
    (status, ctype, body)
}

#[actix_web::test]
async fn problem_json_for_client_errors_explains() {
    let (status, ctype, body) = call("/bad").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ctype, PROBLEM_JSON);
    assert_eq!(
        body,
        json!({
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "the `contact` field is required",
            "code": "missing-field"
        })
    );
}

#[actix_web::test]
async fn problem_json_for_server_errors_is_opaque() {
    let (status, ctype, body) = call("/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ctype, PROBLEM_JSON);
    assert_eq!(
        body,
        json!({ "type": "about:blank", "title": "Internal Server Error", "status": 500, "code": "internal" })
    );
    assert!(!body.to_string().contains("db-internal"));
}

#[actix_web::test]
async fn operation_outcome_for_client_errors() {
    let (status, ctype, body) = call("/fhir/bad").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ctype, FHIR_JSON);
    assert_eq!(
        body,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": "invalid",
                "details": { "coding": [{ "system": "urn:vaxcred:error-code", "code": "unknown-vaccine-code" }] },
                "diagnostics": "vaccine code is outside the configured value sets"
            }]
        })
    );
}

#[actix_web::test]
async fn operation_outcome_for_server_errors_is_opaque() {
    let (status, ctype, body) = call("/fhir/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ctype, FHIR_JSON);
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "exception");
    assert_eq!(body["issue"][0]["details"]["text"], "Internal server error");
    assert!(body["issue"][0].get("diagnostics").is_none());
    assert!(!body.to_string().contains("db-internal"));
}

#[test]
fn error_display_and_debug_carry_codes_not_causes() {
    let p = Problem::internal(InternalFault);
    assert_eq!(p.to_string(), "500 internal");
    assert!(!format!("{p:?}").contains("db-internal"));
    // The cause stays reachable for logging through the error chain.
    let source = std::error::Error::source(&p).unwrap();
    assert!(source.to_string().contains("db-internal"));
}
