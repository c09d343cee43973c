//! The issuer crate's one error type, with stable codes for DLQ headers, metrics and logs.
//! Messages carry ids only, never card contents or patient data.

/// Everything the issuer's parts can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (see the source's code for whether a retry helps).
    #[error("store error")]
    Store(#[from] store::Error),
    /// The broker failed.
    #[error("bus error")]
    Bus(#[from] bus::BusError),
    /// Building or signing the card failed.
    #[error("card signing failed")]
    Sign(#[source] shc::Error),
    /// The stored patient or doses cannot make a card (bad stored data, rule of the model).
    #[error("cannot build the card: {0}")]
    Card(#[source] model::Reject),
    /// The key store cannot be used (unreadable key file, permissions, unknown issuer).
    #[error("key store: {0}")]
    KeyStore(&'static str),
    /// An issue message whose body is not an issue job.
    #[error("malformed issue job")]
    BadJob,
    /// Reading or writing a local file failed (key store).
    #[error("i/o error on {what}")]
    Io {
        /// Which file, by role (never a path with patient data; paths here are key files).
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store(e) => e.code(),
            Error::Bus(e) => e.code(),
            Error::Sign(_) => "issue-sign-failed",
            Error::Card(e) => e.code(),
            Error::KeyStore(_) => "key-store",
            Error::BadJob => "issue-job-malformed",
            Error::Io { .. } => "issuer-io",
        }
    }

    /// True when the same work may succeed later (database or broker outage, lost race).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Bus(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
