//! The crate's error type: every delivery failure has a stable, low-cardinality `code()` that is
//! stored on the delivery row, counted in metrics and returned in problem bodies. Messages carry
//! ids and codes only — never URLs with tokens, phone numbers, passcodes or card content.

/// Errors of delivery (outbound calls, phone numbers, links, storage).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// An outbound URL that is not https (and not allow-listed), has no host, or does not parse.
    #[error("outbound URL refused: {reason}")]
    UrlRefused {
        /// Why (fixed text).
        reason: &'static str,
    },
    /// The host resolves to (or is) a private, loopback, link-local or otherwise internal
    /// address that is not allow-listed: the request is never sent.
    #[error("outbound address refused")]
    AddressRefused,
    /// The host name did not resolve.
    #[error("outbound host did not resolve")]
    Resolve,
    /// Too many redirects, or a redirect without a usable `Location`.
    #[error("outbound redirect refused: {reason}")]
    Redirect {
        /// Why (fixed text).
        reason: &'static str,
    },
    /// The request did not complete within the configured timeout.
    #[error("outbound request timed out")]
    Timeout,
    /// Connection-level failure (refused, reset, TLS).
    #[error("outbound connection failed")]
    Connect(#[source] reqwest::Error),
    /// The peer answered with an HTTP error status.
    #[error("peer answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The peer's `Retry-After` (delta-seconds form), if any.
        retry_after: Option<std::time::Duration>,
    },
    /// The SMS gateway answered something we could not read.
    #[error("unexpected SMS gateway response")]
    GatewayResponse,
    /// SMS is not configured (`delivery.sms_gateway_url` unset).
    #[error("SMS is not configured")]
    SmsDisabled,
    /// A phone number that cannot be normalized to a valid E.164 number.
    #[error("phone number rejected: {reason}")]
    BadPhone {
        /// Why (fixed text; never the number).
        reason: &'static str,
    },
    /// The credential is no longer the patient's current card (superseded, revoked or held):
    /// it is neither pushed nor linked, so a late retry never replaces a newer card.
    #[error("credential is not current")]
    NotCurrent,
    /// A SMART Health Link operation failed (key generation, encryption, payload rules).
    #[error("SMART Health Link error")]
    Shl(#[from] shl::Error),
    /// The database failed.
    #[error("store error")]
    Store(#[from] store::Error),
}

impl DeliveryError {
    /// Stable kebab-case code for rows, metrics and problem bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UrlRefused { .. } => "outbound-url-refused",
            Self::AddressRefused => "outbound-address-refused",
            Self::Resolve => "outbound-resolve-failed",
            Self::Redirect { .. } => "outbound-redirect-refused",
            Self::Timeout => "outbound-timeout",
            Self::Connect(_) => "outbound-connect-failed",
            Self::Status { status, .. } if *status >= 500 => "peer-5xx",
            Self::Status { status: 429, .. } => "peer-429",
            Self::Status { .. } => "peer-4xx",
            Self::GatewayResponse => "sms-gateway-response",
            Self::SmsDisabled => "sms-disabled",
            Self::BadPhone { .. } => "phone-invalid",
            Self::NotCurrent => "credential-not-current",
            Self::Shl(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }

    /// Whether trying again later may succeed. Refusals (SSRF guard, bad numbers, 4xx other
    /// than 408/429) are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Resolve | Self::GatewayResponse => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Store(e) => e.is_retryable(),
            Self::Shl(e) => e.is_retryable(),
            Self::UrlRefused { .. }
            | Self::AddressRefused
            | Self::Redirect { .. }
            | Self::SmsDisabled
            | Self::BadPhone { .. }
            | Self::NotCurrent => false,
        }
    }
}

impl DeliveryError {
    /// An error for a non-success response, keeping its `Retry-After` (delta-seconds only;
    /// an HTTP-date is ignored and the schedule applies).
    pub fn from_response(response: &reqwest::Response) -> Self {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        Self::Status {
            status: response.status().as_u16(),
            retry_after,
        }
    }

    /// The peer's requested wait before the next try, if it gave one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Result with [`DeliveryError`].
pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;
