//! Ingest: the AMQP consumer that turns FHIR Immunization events from `{p}.ingest` into stored
//! patients, doses and `issue` outbox rows (DESIGN §1, §3).
//!
//! ```text
//!  {p}.ingest ─► micro-batch ─► record events (idempotent) ─► parse + normalize
//!                    │                                          │ Patient only referenced
//!                    │                                          ▼
//!                    │                      source EHR FHIR API (SMART Backend Services)
//!                    ▼
//!   one transaction: patients, doses, outbox `issue` ─► ack (one multiple-ack)
//!   bad input ─► `events` row rejected + DLQ (x-vaxcred-error / x-vaxcred-reason)
//!   transient (EHR 5xx, database down) ─► retry queues with backoff
//! ```
//!
//! Sources map to issuers (DESIGN §6): the AMQP `source` header names a configured
//! [`SourceConfig`]; a message without the header, or with an unknown source, belongs to the
//! default issuer and cannot have its Patient fetched (it must carry the Patient).
//!
//! # Layout
//! - [`config`]: [`IngestConfig`], [`SourceConfig`].
//! - [`smart`]: SMART Backend Services token client (client_credentials + ES384 private_key_jwt).
//! - [`fhir`]: fetching a referenced Patient from the source EHR.
//! - [`convert`]: the normalized model → the store's `ApplyEvent`.
//! - [`worker`]: the consumer loop and batch settlement.
//! - [`error`]: the error type, [`Error`].

pub mod config;
pub mod convert;
pub mod error;
pub mod fhir;
pub mod smart;
pub mod worker;

pub use config::{IngestConfig, SourceConfig};
pub use error::{Error, Result};
pub use worker::{run, IngestContext};
