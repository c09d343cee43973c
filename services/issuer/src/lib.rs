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
//! - [`error`]: the crate's error type.

pub mod error;
pub mod issuers;
pub mod jwks;
pub mod keystore;
pub mod relay;
pub mod worker;
