//! FHIR R4 `OperationOutcome` (`application/fhir+json`) as an actix-web error, for the FHIR
//! endpoints (`$health-cards-issue`, ingest). Same policy as problem details: 4xx say what is
//! wrong, 5xx are opaque and the cause's chain is logged.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::error_chain;

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";
/// The code system of vaxcred's stable error codes in `issue.details.coding`.
pub const VAXCRED_ERROR_SYSTEM: &str = "urn:vaxcred:error-code";

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSeverity {
    /// The operation failed.
    Fatal,
    /// The operation failed (the usual one).
    Error,
    /// A concern; the operation went ahead.
    Warning,
    /// Information only.
    Information,
}

impl IssueSeverity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

/// An error answered as an `OperationOutcome` with one issue.
pub struct OperationOutcomeError {
    status: StatusCode,
    severity: IssueSeverity,
    issue_type: &'static str,
    code: &'static str,
    diagnostics: Option<String>,
    cause: Option<Cause>,
}

impl OperationOutcomeError {
    /// An outcome with HTTP `status`, FHIR `issue_type` (from the `issue-type` value set:
    /// `invalid`, `not-found`, `security`, `processing`, `transient`, `exception`, …) and our
    /// stable `code`.
    pub fn new(status: StatusCode, issue_type: &'static str, code: &'static str) -> Self {
        Self {
            status,
            severity: IssueSeverity::Error,
            issue_type,
            code,
            diagnostics: None,
            cause: None,
        }
    }

    /// 400 `invalid` with diagnostics saying what to fix (no patient data).
    pub fn invalid(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", code).with_diagnostics(diagnostics)
    }

    /// 404 `not-found`.
    pub fn not_found(code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", code)
    }

    /// 503 `transient`: retry later.
    pub fn transient(code: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "transient", code)
    }

    /// 500 `exception`, opaque; `cause` is logged.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", "internal").with_cause(cause)
    }

    /// Sets the severity (default `error`).
    #[must_use]
    pub fn with_severity(mut self, severity: IssueSeverity) -> Self {
        self.severity = severity;
        self
    }

    /// Adds `issue.diagnostics` (shown for 4xx only). Never put patient data here.
    #[must_use]
    pub fn with_diagnostics(mut self, text: impl Into<String>) -> Self {
        self.diagnostics = Some(text.into());
        self
    }

    /// Attaches the underlying error, logged (never sent).
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The resource exactly as sent.
    pub fn body(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity.as_str(),
            "code": self.issue_type,
            "details": {
                "coding": [{ "system": VAXCRED_ERROR_SYSTEM, "code": self.code }]
            }
        });
        if self.status.is_server_error() {
            if let Some(details) = issue.get_mut("details").and_then(Value::as_object_mut) {
                details.insert("text".to_owned(), json!("Internal server error"));
            }
        } else if let (Some(d), Some(obj)) = (&self.diagnostics, issue.as_object_mut()) {
            obj.insert("diagnostics".to_owned(), json!(d));
        }
        json!({ "resourceType": "OperationOutcome", "issue": [issue] })
    }
}

impl std::fmt::Debug for OperationOutcomeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationOutcomeError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for OperationOutcomeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl std::error::Error for OperationOutcomeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for OperationOutcomeError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            let chain = error_chain(cause.as_ref());
            if self.status.is_server_error() {
                tracing::error!(error.code = self.code, error.chain = %chain, "FHIR request failed");
            } else {
                tracing::info!(error.code = self.code, error.chain = %chain, "FHIR request rejected");
            }
        } else if self.status.is_server_error() {
            tracing::error!(error.code = self.code, "FHIR request failed");
        }
        HttpResponse::build(self.status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON)))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(self.body().to_string())
    }
}
