//! Platform pieces every vaxcred service shares.
//!
//! # Layout
//! - [`config`]: layered configuration (defaults → TOML file → env), validated at load.
//! - [`telemetry`]: tracing subscriber (JSON or pretty), OTLP trace export, in-memory exporter
//!   for tests.
//! - [`metrics`]: the Prometheus registry and the metrics named in the operations spec.
//! - [`health`]: the readiness registry (named flags and async checks).
//! - [`http`]: actix-web helpers: `problem+json` and FHIR `OperationOutcome` errors, health and
//!   metrics endpoints, the request-span middleware.
//! - [`error`]: this crate's error type.

pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod telemetry;
pub mod tls;

pub use config::Config;
pub use error::Error;
pub use health::{Readiness, ReadyFlag};
pub use metrics::Metrics;
pub use secrecy::{ExposeSecret, SecretString};
