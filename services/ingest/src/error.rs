//! The ingest crate's one error type. Codes are stable (DLQ header `x-vaxcred-error`, metric
//! labels); messages never carry patient data — no references, identifiers or EHR response
//! bodies, only HTTP status codes and roles.

/// Everything ingest can fail with, apart from the model's own [`model::Reject`]s.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("store error")]
    Store(#[from] store::Error),
    /// The broker failed.
    #[error("bus error")]
    Bus(#[from] bus::BusError),
    /// The EHR (token or FHIR endpoint) is unreachable, timed out, or answered 5xx/429.
    #[error("the EHR is unavailable (status {status:?})")]
    EhrUnavailable {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
    },
    /// The EHR's token endpoint refused our client assertion, or the FHIR endpoint our token
    /// (401/403). Usually configuration: retried, so fixing it lets the events through.
    #[error("the EHR refused our credentials (status {status})")]
    EhrAuth {
        /// HTTP status.
        status: u16,
    },
    /// The referenced Patient does not exist at the EHR (404/410).
    #[error("the referenced Patient was not found at the EHR")]
    PatientNotFound,
    /// The EHR answered another 4xx, or something that is not a usable token / Patient.
    #[error("the EHR answered with an unusable response (status {status})")]
    EhrRefused {
        /// HTTP status.
        status: u16,
    },
    /// The Patient reference points outside the source's FHIR base URL (never followed: it
    /// would let a message make us call arbitrary hosts).
    #[error("the Patient reference is not on the source's FHIR server")]
    ForeignReference,
    /// The message needs its Patient fetched but its source has no FHIR endpoint configured.
    #[error("the Patient is only referenced and the source has no FHIR endpoint")]
    NoFhirEndpoint,
    /// Configuration is unusable (bad key, bad URL). Names the setting, never its value.
    #[error("ingest configuration: {0}")]
    Config(&'static str),
}

impl Error {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store(e) => e.code(),
            Error::Bus(e) => e.code(),
            Error::EhrUnavailable { .. } => "ehr-unavailable",
            Error::EhrAuth { .. } => "ehr-auth-failed",
            Error::PatientNotFound => "patient-not-found",
            Error::EhrRefused { .. } => "ehr-refused",
            Error::ForeignReference => "patient-reference-foreign",
            Error::NoFhirEndpoint => "patient-fetch-required",
            Error::Config(_) => "ingest-config",
        }
    }

    /// True when the same message may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Bus(e) => e.is_retryable(),
            Error::EhrUnavailable { .. } | Error::EhrAuth { .. } => true,
            _ => false,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
