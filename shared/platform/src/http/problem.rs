//! RFC 9457 problem details (`application/problem+json`) as an actix-web error. 4xx bodies say
//! what the caller got wrong; 5xx bodies are opaque (fixed title, no detail) and the cause's
//! chain goes to the log instead, so internals never reach a client.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::error_chain;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A problem response. `code` is the stable kebab-case error code (the same one the DLQ header
/// and metric labels use) and appears in the body as an extension member.
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: String,
    detail: Option<String>,
    type_uri: Option<String>,
    cause: Option<Cause>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: &'a str,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    code: &'a str,
}

impl Problem {
    /// A problem with `status`, stable `code` and a short human `title` (no patient data).
    pub fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title: title.into(),
            detail: None,
            type_uri: None,
            cause: None,
        }
    }

    /// 400 with a detail explaining what to fix.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Bad Request").with_detail(detail)
    }

    /// 401: missing or invalid credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not Found")
    }

    /// 503: a dependency is down; the caller may retry.
    pub fn unavailable(code: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, "Service Unavailable")
    }

    /// 500 for an unexpected failure: the body is opaque, `cause` is logged when the response is
    /// built.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
        )
        .with_cause(cause)
    }

    /// Adds the human explanation (shown for 4xx only). Never put patient data here.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the problem type URI (default `about:blank`).
    #[must_use]
    pub fn with_type(mut self, uri: impl Into<String>) -> Self {
        self.type_uri = Some(uri.into());
        self
    }

    /// Attaches the underlying error, logged (never sent) when this becomes a response.
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body exactly as sent.
    pub fn body(&self) -> serde_json::Value {
        let opaque = self.status.is_server_error();
        let body = Body {
            type_uri: self.type_uri.as_deref().unwrap_or("about:blank"),
            title: &self.title,
            status: self.status.as_u16(),
            detail: if opaque { None } else { self.detail.as_deref() },
            code: self.code,
        };
        serde_json::to_value(body).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Debug for Problem {
    // Code and status only: Debug output reaches spans and logs through middleware.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            let chain = error_chain(cause.as_ref());
            if self.status.is_server_error() {
                tracing::error!(error.code = self.code, error.chain = %chain, "request failed");
            } else {
                tracing::info!(error.code = self.code, error.chain = %chain, "request rejected");
            }
        } else if self.status.is_server_error() {
            tracing::error!(error.code = self.code, "request failed");
        }
        HttpResponse::build(self.status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(self.body().to_string())
    }
}
