//! The issuer service: everything that turns stored doses into signed SMART Health Cards and
//! hands them on.
//!
//! ```text
//!  outbox ──relay──► {p}.issue ──worker──► snapshot ─► card_bundle ─► sign (KeyStore) ─► store
//!                                                                        credential + supersede
//!                                                                        + outbox `deliver` ──relay──► {p}.deliver
//! ```
//!
//! # Layout
//! - [`worker`]: the issue worker (consumes `{p}.issue` in micro-batches).
//! - [`keystore`]: the [`keystore::KeyStore`] seam and the default file key store.
//! - [`relay`]: the outbox relay (claims outbox rows, publishes with confirms, marks them sent).
//!   It lives here because the issuer owns both outbox kinds' consumers' contract; ingest only
//!   writes rows.
//! - [`issuers`]: making sure the default issuer row exists.
//! - [`jwks`]: `GET /.well-known/jwks.json` from the key store.
//! - [`http`]: the HTTP surface: JWKS, CRLs, smart-configuration, `$health-cards-issue`, card
//!   downloads, admin endpoints (every issuer at its own base).
//! - [`keys`]: key lifecycle (rotate, retire, revoke) over both key stores.
//! - [`pkcs11`]: the PKCS#11 key store (HSM).
//! - [`pdf`]: the printable card.
//! - [`error`]: the crate's error type.

pub mod error;
pub mod http;
pub mod issuers;
pub mod jwks;
pub mod keys;
pub mod keystore;
pub mod pdf;
pub mod pkcs11;
pub mod relay;
pub mod worker;
