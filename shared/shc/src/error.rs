//! Typed errors (what stops an operation) and problems (what a verifier found in a card).
//!
//! [`Error`] is returned by issuing, key handling and decoding steps that cannot go on.
//! [`Problem`] is one finding of a verification: a card can have several, each with a stable
//! [`ProblemKind::code`] reused in CLI output, HTTP bodies and metrics, and a [`Severity`].
//! Neither ever carries patient data: details name fields and sizes, never values.

use std::fmt;

/// Errors of issuing, key handling and decoding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not JSON, or not the JSON shape required (detail names the part).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The FHIR bundle cannot be made into a card (detail names the rule).
    #[error("invalid bundle: {0}")]
    Bundle(String),
    /// A claim is unusable (e.g. `iss` not https, `rid` too long).
    #[error("invalid claim: {0}")]
    Claim(String),
    /// The JWS does not fit one version-22 QR code at error correction L (rule 36); vaxcred never
    /// chunks (rule 37), so such a card must be shared another way (a SMART Health Link).
    #[error("card too large for one QR code: JWS is {jws_len} characters, at most {max} fit")]
    TooLargeForQr {
        /// Length of the JWS.
        jws_len: usize,
        /// The limit.
        max: usize,
    },
    /// A key is malformed, of the wrong type, or does not match its `kid`.
    #[error("invalid key: {0}")]
    Key(String),
    /// The signer failed (an HSM session lost, a key removed).
    #[error("signing failed: {0}")]
    Sign(String),
    /// Compression or decompression failed.
    #[error("DEFLATE failed: {0}")]
    Deflate(String),
    /// An image could not be read or written.
    #[error("image: {0}")]
    Image(String),
}

impl Error {
    /// Stable, low-cardinality code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Json(_) => "invalid-json",
            Error::Bundle(_) => "invalid-bundle",
            Error::Claim(_) => "invalid-claim",
            Error::TooLargeForQr { .. } => "too-large-for-qr",
            Error::Key(_) => "invalid-key",
            Error::Sign(_) => "sign-failed",
            Error::Deflate(_) => "deflate-failed",
            Error::Image(_) => "image-failed",
        }
    }

    /// Whether trying again may succeed (only a signer fault may be transient).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Sign(_))
    }
}

/// How bad a [`Problem`] is. A card with any [`Severity::Error`] problem is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth telling, does not invalidate the card.
    Warning,
    /// The card (or artefact) must be rejected.
    Error,
}

/// What kind of problem a verifier found. The names follow the official validator's error codes
/// where one exists (`health-cards-dev-tools`), so findings can be compared with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// Characters after the artefact (trailing whitespace, a BOM before the payload).
    TrailingCharacters,
    /// Text that is not JSON where JSON is required.
    JsonParse,
    /// The JWS is not three base64url segments, or the header is not JSON.
    JwsMalformed,
    /// A required JWS header member (`alg`, `kid`, `zip`) is missing or wrong (rule 17).
    JwsHeader,
    /// The signature is not the 64-byte R‖S form (e.g. DER), rule 19.
    SignatureFormat,
    /// The signature does not verify with the key.
    SignatureInvalid,
    /// The card's `kid` is not among the issuer's keys.
    UnknownKid,
    /// No keys are known for the card's issuer.
    IssuerUnknown,
    /// `iss` is not an https URL without a trailing slash (rule 2).
    InvalidIssuerUrl,
    /// The payload is not raw DEFLATE (not compressed, or zlib-wrapped), rule 18.
    Inflation,
    /// The JWS is longer than fits one QR code (rule 36).
    JwsTooLong,
    /// The payload's structure is wrong (`vc.type` without the health-card type, missing members).
    Schema,
    /// The FHIR content breaks a FHIR rule (empty values, wrong status, missing occurrence).
    FhirSchema,
    /// The bundle breaks the minimization rules (§B) or the Vaccination IG profiles (§J–L).
    Profile,
    /// `exp` is before the verification time, or before `nbf` (rule 4).
    Expired,
    /// `nbf` is after the verification time (or given in milliseconds).
    NotYetValid,
    /// The card's `rid` is on the issuer's revocation list (rule 32).
    Revoked,
    /// The revocation list is missing, malformed or inconsistent with the JWKS (rules 29–32).
    Revocation,
    /// A QR text does not start with `shc:/` or has a malformed chunk header.
    InvalidNumericQrHeader,
    /// A QR text's digits are not pairs of 00–77.
    InvalidNumericQr,
    /// The card was split into chunked QR codes (deprecated, rule 37).
    QrChunkingDeprecated,
    /// Chunks of very different sizes.
    UnbalancedQrChunks,
    /// The QR code is not the two-segment form the spec requires (rule 35).
    InvalidQr,
    /// The QR code is larger than version 22 (rule 34).
    InvalidQrVersion,
    /// The image holds no decodable QR code.
    QrDecode,
    /// A file lacks the `.smart-health-card` extension (rule 39).
    InvalidFileExtension,
    /// A JWK breaks rule 22 (`kty`, `crv`, `use`, `alg`, `kid` thumbprint) or holds a private part.
    InvalidKey,
    /// A JWK's `x5c` chain is unusable (rule 23).
    InvalidKeyX5c,
}

impl ProblemKind {
    /// Stable, low-cardinality code (kebab-case).
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::TrailingCharacters => "trailing-characters",
            ProblemKind::JsonParse => "json-parse",
            ProblemKind::JwsMalformed => "jws-malformed",
            ProblemKind::JwsHeader => "jws-header",
            ProblemKind::SignatureFormat => "signature-format",
            ProblemKind::SignatureInvalid => "signature-invalid",
            ProblemKind::UnknownKid => "unknown-kid",
            ProblemKind::IssuerUnknown => "issuer-unknown",
            ProblemKind::InvalidIssuerUrl => "invalid-issuer-url",
            ProblemKind::Inflation => "inflation",
            ProblemKind::JwsTooLong => "jws-too-long",
            ProblemKind::Schema => "schema",
            ProblemKind::FhirSchema => "fhir-schema",
            ProblemKind::Profile => "profile",
            ProblemKind::Expired => "expired",
            ProblemKind::NotYetValid => "not-yet-valid",
            ProblemKind::Revoked => "revoked",
            ProblemKind::Revocation => "revocation",
            ProblemKind::InvalidNumericQrHeader => "invalid-numeric-qr-header",
            ProblemKind::InvalidNumericQr => "invalid-numeric-qr",
            ProblemKind::QrChunkingDeprecated => "qr-chunking-deprecated",
            ProblemKind::UnbalancedQrChunks => "unbalanced-qr-chunks",
            ProblemKind::InvalidQr => "invalid-qr",
            ProblemKind::InvalidQrVersion => "invalid-qr-version",
            ProblemKind::QrDecode => "qr-decode",
            ProblemKind::InvalidFileExtension => "invalid-file-extension",
            ProblemKind::InvalidKey => "invalid-key",
            ProblemKind::InvalidKeyX5c => "invalid-key-x5c",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One finding of a verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Whether it invalidates the card.
    pub severity: Severity,
    /// Human text naming the rule and the field (never a field's value when it is patient data).
    pub detail: String,
}

impl Problem {
    /// An error-level problem.
    pub fn error(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            severity: Severity::Error,
            detail: detail.into(),
        }
    }

    /// A warning-level problem.
    pub fn warning(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            severity: Severity::Warning,
            detail: detail.into(),
        }
    }

    /// Whether this problem invalidates the card.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev} [{}]: {}", self.kind.code(), self.detail)
    }
}
