//! The launch app's one error type. Every variant maps to a page that explains, in plain words,
//! what happened and what the clinician can do (never a raw 500), and to a stable `code()` for
//! logs and metrics. Messages carry no patient data and no tokens: ids and codes only.

/// What went wrong during a launch or an action.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// `iss` is not one of the configured EHRs (or launch is disabled).
    #[error("the launching EHR is not on the allowlist")]
    IssNotAllowed,
    /// A required query or form parameter is missing or malformed.
    #[error("missing or invalid parameter {0}")]
    BadRequest(&'static str),
    /// The EHR's `.well-known/smart-configuration` is missing, invalid, or lacks what we need.
    #[error("the EHR's SMART configuration is unusable: {0}")]
    Discovery(&'static str),
    /// The EHR (SMART configuration, token endpoint or FHIR API) did not answer, or answered 5xx.
    #[error("the EHR is unavailable (status {status:?})")]
    EhrUnavailable {
        /// HTTP status, when there was a response.
        status: Option<u16>,
    },
    /// No launch session for this browser (no cookie, expired, or unknown).
    #[error("no launch session")]
    NoSession,
    /// The `state` returned to the callback is not the one this browser's session sent.
    #[error("the authorization state does not match this session")]
    StateMismatch,
    /// The authorization server redirected back with an OAuth error code.
    #[error("the EHR refused the authorization ({0})")]
    AuthorizationDenied(String),
    /// The token endpoint refused the code, the PKCE verifier or our client assertion.
    #[error("the EHR's token endpoint refused the request (status {status})")]
    TokenRejected {
        /// HTTP status of the refusal.
        status: u16,
    },
    /// The access token expired and could not be refreshed (no refresh token, or refused).
    #[error("the EHR session expired")]
    TokenExpired,
    /// The token response has no `patient` (the launch has no patient in context).
    #[error("the launch has no patient in context")]
    NoPatientContext,
    /// The EHR answered with something that is not the FHIR we asked for.
    #[error("the EHR returned an invalid FHIR response ({0})")]
    FhirInvalid(&'static str),
    /// The patient's record cannot be normalized (e.g. no name or birth date), with the reason code.
    #[error("the patient record cannot be used ({0})")]
    PatientUnusable(&'static str),
    /// The patient has no dose that can go on a card.
    #[error("no eligible dose")]
    NoEligibleDose,
    /// A form came without the session's CSRF token.
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// An action (issue, print, SMS, wallet) failed or is not available here.
    #[error("the action failed ({0})")]
    Action(#[from] crate::actions::ActionError),
    /// The session store failed.
    #[error("session store error")]
    Store(#[from] store::Error),
    /// A bug or misconfiguration on our side (the detail is a static description).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl LaunchError {
    /// Stable, low-cardinality code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IssNotAllowed => "launch-iss-not-allowed",
            Self::BadRequest(_) => "launch-bad-request",
            Self::Discovery(_) => "launch-discovery-failed",
            Self::EhrUnavailable { .. } => "launch-ehr-unavailable",
            Self::NoSession => "launch-no-session",
            Self::StateMismatch => "launch-state-mismatch",
            Self::AuthorizationDenied(_) => "launch-authorization-denied",
            Self::TokenRejected { .. } => "launch-token-rejected",
            Self::TokenExpired => "launch-token-expired",
            Self::NoPatientContext => "launch-no-patient-context",
            Self::FhirInvalid(_) => "launch-fhir-invalid",
            Self::PatientUnusable(_) => "launch-patient-unusable",
            Self::NoEligibleDose => "launch-no-eligible-dose",
            Self::Csrf => "launch-csrf",
            Self::Action(e) => e.code(),
            Self::Store(_) => "launch-store",
            Self::Internal(_) => "launch-internal",
        }
    }

    /// Whether trying again later can succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::EhrUnavailable { .. } | Self::Store(_) => true,
            Self::Action(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Result with [`LaunchError`].
pub type Result<T, E = LaunchError> = std::result::Result<T, E>;
