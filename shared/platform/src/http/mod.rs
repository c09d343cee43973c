//! actix-web helpers every HTTP service mounts: error bodies (`problem+json` for JSON APIs,
//! FHIR `OperationOutcome` for FHIR endpoints), the operational endpoints (`/health/live`,
//! `/health/ready`, `/metrics`) and the request-span middleware.

mod endpoints;
mod outcome;
mod problem;
mod span;

pub use endpoints::{configure, LIVE_PATH, METRICS_PATH, READY_PATH};
pub use outcome::{IssueSeverity, OperationOutcomeError, FHIR_JSON, VAXCRED_ERROR_SYSTEM};
pub use problem::{Problem, PROBLEM_JSON};
pub use span::{request_tracing, RouteRootSpan};

/// The causal chain of an error as one line (`outer: inner: root`), for logs only.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
