//! RabbitMQ for vaxcred: topology declaration, publishing with confirms, consuming with manual
//! ack, delayed retry, dead-lettering, and reconnection (lapin does not reconnect by itself).
//!
//! ```text
//!  EHR ──► {p}.ehr (topic, fhir.#) ──► {p}.ingest ─┐   {p}.issue, {p}.deliver (from the outbox)
//!                                                  │
//!  handler: ack │ reject_requeue (transient; x-delivery-limit) │ retry(i) │ dead_letter(code, reason)
//!                                  │                              │              │
//!        over the limit ─► {p}.dlx ┘   {p}.retry.{q}.{delay} ─TTL─► back to {p}.{q}
//!                           (fanout) ──► {p}.dlq ◄──────────────────────────────┘
//! ```
//!
//! Delivery is at least once everywhere: handlers dedupe by `message_id`, ack only after their
//! outcome is committed, and callers republish whatever was not confirmed.
//!
//! # Layout
//! - [`config`]: [`BusConfig`] (with `AMQP_URL`/`AMQP_PREFIX`) and [`Topology`] names.
//! - [`bus`]: [`Bus`] — connection, reconnect supervisor, readiness.
//! - [`publisher`]: [`Publisher`], [`Outgoing`] — confirms, batches, timeouts.
//! - [`consumer`]: [`Consumer`], [`Delivery`] — manual ack, retry, DLQ.
//! - [`admin`]: queue depth, DLQ list/replay, topology deletion.
//! - [`headers`]: header names and typed header access.
//! - [`error`]: the error type, [`BusError`].
//! - `topology`: the declarations and their arguments.

pub mod admin;
pub mod bus;
pub mod config;
pub mod consumer;
pub mod error;
pub mod headers;
pub mod publisher;
mod topology;

pub use admin::{DeadLetter, ReplayReport};
pub use bus::Bus;
pub use config::{BusConfig, EhrExchange, Topology, DEFAULT_PREFIX, DEFAULT_URL};
pub use consumer::{Consumer, Delivery, Settled};
pub use error::{BusError, Result};
pub use headers::XDeath;
/// The AMQP client, for header and property types (`lapin::types::AMQPValue`, ...).
pub use lapin;
pub use publisher::{Outgoing, Publisher};
