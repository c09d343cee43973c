//! The request-span middleware: one span per request named `{METHOD} {route pattern}` carrying
//! `http.method`, `http.route` (the pattern, e.g. `/credentials/{id}`), `http.status_code` and
//! the request id — deliberately not the target URL, its query, the client address or the user
//! agent, which can carry tokens or patient data. Incoming W3C `traceparent` continues the trace.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage};
use opentelemetry::propagation::Extractor;
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{OperationOutcomeError, Problem};

/// The middleware to `.wrap()` every app with.
pub fn request_tracing() -> TracingLogger<RouteRootSpan> {
    TracingLogger::<RouteRootSpan>::new()
}

/// The root-span builder behind [`request_tracing`].
pub struct RouteRootSpan;

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

impl RootSpanBuilder for RouteRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let method = request.method().as_str().to_owned();
        // The matched pattern, never the concrete path: ids in paths stay out of span names.
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "(unmatched)".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.status_code = Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            error.code = Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(request.headers()))
        });
        // Fails only when no OpenTelemetry layer is installed; then there is nothing to link.
        let _ = span.set_parent(parent);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", i64::from(status.as_u16()));
        span.record(
            "otel.status_code",
            if status.is_server_error() {
                "ERROR"
            } else {
                "OK"
            },
        );
        // Only our own error types' codes: other errors' messages (e.g. a JSON parse error)
        // may quote the request body.
        if let Some(code) = error.and_then(error_code) {
            span.record("error.code", code);
        } else if error.is_some() && status == StatusCode::INTERNAL_SERVER_ERROR {
            span.record("error.code", "internal");
        }
    }
}

fn error_code(error: &Error) -> Option<&'static str> {
    if let Some(p) = error.as_error::<Problem>() {
        return Some(p.code());
    }
    error.as_error::<OperationOutcomeError>().map(|o| o.code())
}
