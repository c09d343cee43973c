//! SMART Health Cards framework v1.4, as a standalone library.
//!
//! Everything in vaxcred that signs or checks a card goes through this crate, so it follows the
//! specification to the letter (see `../shared/spec-checklist.md` §A–I; rule numbers in comments
//! refer to it). It depends on nothing else of ours.
//!
//! # Layout
//! - [`keys`]: P-256 keys, JWK import/export, RFC 7638 `kid`, JWKS, the [`keys::JwsSigner`] seam
//!   that lets a key live elsewhere (an HSM).
//! - [`minimize`]: bundle minimization (§B).
//! - [`payload`]: JWS payload claims and byte-exact minified payload (§A).
//! - [`deflate`]: raw DEFLATE with a reusable compressor, bounded inflate (§C).
//! - [`jws`]: compact ES256 JWS with the `zip` header (§C).
//! - [`issue`]: the whole issuing pipeline, one reusable [`issue::CardIssuer`] per worker.
//! - [`qr`]: `shc:/` numeric text (single and deprecated chunks), QR matrix, SVG/PNG, image decode (§F).
//! - [`file`]: the `.smart-health-card` file (§G).
//! - [`rid`], [`crl`]: revocation ids and revocation lists (§E).
//! - [`check`]: profile checks on payloads and bundles a verifier reports as problems.
//! - [`x5c`]: X.509 chains bound to keys (rule 23), for verifiers with PKI support.
//! - [`verify`]: verification of files, JWS, QR text and QR images against trusted JWKS (§I).
//! - [`error`]: the typed errors and [`error::Problem`]s every part reports.

pub mod b64;
pub mod check;
pub mod crl;
pub mod deflate;
pub mod error;
pub mod file;
pub mod issue;
pub mod jws;
pub mod keys;
pub mod minimize;
pub mod payload;
pub mod qr;
pub mod rid;
pub mod verify;
pub mod x5c;

pub use error::{Error, Problem, ProblemKind, Severity};
pub use issue::{CardIssuer, IssuedCard};
pub use keys::{Jwk, Jwks, JwsSigner, LocalSigner};
pub use payload::{Claims, NumericDate};
pub use verify::{CardReport, TrustStore, Verification, Verifier};

/// The `vc.type` every health card carries (rule 5).
pub const HEALTH_CARD_TYPE: &str = "https://smarthealth.cards#health-card";
/// FHIR version of the credential subject (rule 6).
pub const FHIR_VERSION: &str = "4.0.1";
/// Largest JWS that fits one version-22 QR at error correction L (rule 36).
pub const MAX_SINGLE_QR_JWS: usize = 1195;
/// Largest JWS chunk of the deprecated chunked form (rule 37).
pub const MAX_CHUNK_JWS: usize = 1191;
/// MIME type of a `.smart-health-card` file (rule 39).
pub const FILE_CONTENT_TYPE: &str = "application/smart-health-card";
