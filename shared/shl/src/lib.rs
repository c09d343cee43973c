//! SMART Health Links (HL7 "SMART Health Cards and Links" STU1): the wire-level pieces shared by
//! the link-hosting service and link readers. No I/O here: HTTP hosting and the failure-count
//! storage live in the services and `store`.
//!
//! Rule numbers in the docs (N.72, Q.90, …) refer to `spec-checklist.md`.
//!
//! # Layout
//!
//! - [`payload`]: [`ShlPayload`] — build (strict) and parse (lenient), [`Flags`].
//! - [`link`]: `shlink:/` URIs, bare or behind a viewer prefix ([`ShlLink`]).
//! - [`key`]: [`ShlKey`] and 256-bit random ids for manifest URLs and file locations.
//! - [`jwe`]: compact JWE `dir` + `A256GCM` [`encrypt`]/[`decrypt`], optional `zip:"DEF"`.
//! - [`manifest`]: manifest request/response bodies, the 401 body, embed-or-location choice.
//! - [`passcode`]: Argon2id passcode hashing and the lifetime wrong-passcode budget.
//! - [`error`]: the crate's [`Error`].
//!
//! # Example
//!
//! ```
//! use shl::{decrypt, encrypt, EncryptOptions, ShlKey, ShlLink, ShlPayload};
//!
//! let key = ShlKey::generate()?;
//! let url = format!("https://shl.example.org/m/{}", shl::generate_manifest_id()?);
//! let payload = ShlPayload::builder(url, key.clone()).passcode(true).build()?;
//! let link = payload.to_viewer_link("https://viewer.example.org")?;
//!
//! let jwe = encrypt(&key, b"{}", &EncryptOptions::new("application/smart-health-card"))?;
//! let received = ShlLink::parse(&link)?;
//! assert_eq!(decrypt(received.payload().key(), &jwe)?.plaintext, b"{}");
//! # Ok::<(), shl::Error>(())
//! ```

mod b64;
pub mod error;
pub mod jwe;
pub mod key;
pub mod link;
pub mod manifest;
pub mod passcode;
pub mod payload;

pub use error::{Error, Result};
pub use jwe::{decrypt, decrypt_with_limit, encrypt, DecryptedFile, EncryptOptions};
pub use key::{generate_file_token, generate_manifest_id, random_token, ShlKey};
pub use link::ShlLink;
pub use manifest::{
    ContentType, EmbedPolicy, FileStatus, Manifest, ManifestFile, ManifestRequest,
    PasscodeErrorBody, Placement,
};
pub use passcode::{PasscodeHasher, PasscodeOutcome, PasscodePolicy};
pub use payload::{Flags, ShlPayload, ShlPayloadBuilder};
