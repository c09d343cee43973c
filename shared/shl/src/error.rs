//! The one error type of the `shl` crate.
//!
//! Messages name the field or rule that failed, never the value: links, labels, keys, passcodes
//! and file contents can all carry patient data or secrets, and these errors end up in logs,
//! DLQ headers and HTTP problem bodies.

/// Everything that can go wrong building, parsing, encrypting or decrypting SMART Health Link
/// artefacts.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The text is neither `shlink:/…` nor a viewer URL carrying `#shlink:/…` in its fragment.
    #[error("not a SMART Health Link (no shlink:/ URI)")]
    NotAShlink,
    /// The viewer prefix given to build a link is unusable (it must be an http(s) URL whose
    /// fragment, if any, is empty, so the payload lands in the fragment).
    #[error("viewer URL prefix is not usable for a SMART Health Link")]
    InvalidViewerUrl,
    /// A base64url segment (of a link or a JWE) does not decode.
    #[error("invalid base64url in {what}")]
    InvalidBase64 {
        /// Which segment: `payload`, `key`, `jwe header`, `iv`, …
        what: &'static str,
    },
    /// A JSON document does not parse, or is not the expected JSON type.
    #[error("invalid JSON in {what}")]
    InvalidJson {
        /// Which document: `payload`, `jwe header`, `manifest`, …
        what: &'static str,
    },
    /// A required property is absent.
    #[error("missing required property `{field}`")]
    MissingField {
        /// Property name as on the wire.
        field: &'static str,
    },
    /// A property is present but of the wrong type or out of range.
    #[error("invalid property `{field}`")]
    InvalidField {
        /// Property name as on the wire.
        field: &'static str,
    },
    /// The payload's `v` is newer than this library understands (checklist N.75: tell the user,
    /// do not request the manifest).
    #[error("unsupported SHL payload version {version}")]
    UnsupportedVersion {
        /// The `v` found.
        version: u64,
    },
    /// Flags `U` and `P` together (checklist N.72: SHALL NOT be combined).
    #[error("flags U and P cannot be combined")]
    FlagConflict,
    /// `label` longer than 80 characters (checklist N.72).
    #[error("label has {len} characters, at most 80 allowed")]
    LabelTooLong {
        /// Length in characters.
        len: usize,
    },
    /// `url` longer than 128 characters or empty (checklist N.73).
    #[error("url has {len} characters, 1 to 128 allowed")]
    UrlLength {
        /// Length in characters.
        len: usize,
    },
    /// The key is not 32 bytes once base64url-decoded (43 characters).
    #[error("SHL key must be 32 bytes (43 base64url characters)")]
    InvalidKey,
    /// The JWE is not five dot-separated segments of the expected sizes.
    #[error("malformed compact JWE: {reason}")]
    MalformedJwe {
        /// Which structural rule failed.
        reason: &'static str,
    },
    /// The JWE `alg` is not `dir` (checklist Q.88).
    #[error("unsupported JWE alg (only \"dir\")")]
    UnsupportedAlg,
    /// The JWE `enc` is not `A256GCM` (checklist Q.88).
    #[error("unsupported JWE enc (only \"A256GCM\")")]
    UnsupportedEnc,
    /// The JWE `zip` is present but not `DEF` (checklist Q.89).
    #[error("unsupported JWE zip (only \"DEF\")")]
    UnsupportedZip,
    /// The JWE lists `crit` extensions, which this library does not implement (RFC 7516 §4.1.13
    /// requires rejecting what is not understood).
    #[error("JWE has critical header parameters this library does not understand")]
    UnsupportedCrit,
    /// `alg: dir` requires an empty encrypted-key segment (checklist Q.88).
    #[error("JWE encrypted-key segment must be empty for alg dir")]
    EncryptedKeyNotEmpty,
    /// AES-GCM authentication failed: wrong key, or any segment altered.
    #[error("JWE decryption failed (wrong key or tampered)")]
    DecryptionFailed,
    /// AES-GCM refused to encrypt (input beyond GCM's limits).
    #[error("JWE encryption failed")]
    EncryptionFailed,
    /// The `zip:"DEF"` content is not valid raw DEFLATE.
    #[error("invalid DEFLATE data in JWE plaintext")]
    InvalidDeflate,
    /// The plaintext (after inflating) exceeds the caller's size cap.
    #[error("plaintext exceeds the {limit}-byte limit")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The manifest or one of its files breaks a structural rule (checklist O.82).
    #[error("invalid manifest: {reason}")]
    InvalidManifest {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed")]
    Random,
    /// Argon2 could not hash the passcode (parameters rejected).
    #[error("passcode hashing failed")]
    PasscodeHash,
    /// A stored passcode hash is not a valid Argon2 PHC string.
    #[error("stored passcode hash is malformed")]
    InvalidPasscodeHash,
}

impl Error {
    /// Stable, low-cardinality code for metrics labels, DLQ headers and problem bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAShlink => "shl-not-a-link",
            Self::InvalidViewerUrl => "shl-invalid-viewer-url",
            Self::InvalidBase64 { .. } => "shl-invalid-base64",
            Self::InvalidJson { .. } => "shl-invalid-json",
            Self::MissingField { .. } => "shl-missing-field",
            Self::InvalidField { .. } => "shl-invalid-field",
            Self::UnsupportedVersion { .. } => "shl-unsupported-version",
            Self::FlagConflict => "shl-flag-conflict",
            Self::LabelTooLong { .. } => "shl-label-too-long",
            Self::UrlLength { .. } => "shl-url-length",
            Self::InvalidKey => "shl-invalid-key",
            Self::MalformedJwe { .. } => "jwe-malformed",
            Self::UnsupportedAlg => "jwe-unsupported-alg",
            Self::UnsupportedEnc => "jwe-unsupported-enc",
            Self::UnsupportedZip => "jwe-unsupported-zip",
            Self::UnsupportedCrit => "jwe-unsupported-crit",
            Self::EncryptedKeyNotEmpty => "jwe-encrypted-key-not-empty",
            Self::DecryptionFailed => "jwe-decryption-failed",
            Self::EncryptionFailed => "jwe-encryption-failed",
            Self::InvalidDeflate => "jwe-invalid-deflate",
            Self::TooLarge { .. } => "jwe-too-large",
            Self::InvalidManifest { .. } => "shl-invalid-manifest",
            Self::Random => "shl-random-failed",
            Self::PasscodeHash => "shl-passcode-hash-failed",
            Self::InvalidPasscodeHash => "shl-invalid-passcode-hash",
        }
    }

    /// Whether trying the same operation again may succeed. Only an OS RNG hiccup is transient;
    /// everything else is a property of the input.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Random)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
