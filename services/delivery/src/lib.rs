//! vaxcred delivery: gets cards to people. Wallet push (a patient's registered endpoint gets each
//! new or superseded card as a `.smart-health-card` body signed the Standard Webhooks way,
//! retried with backoff and jitter over hours, every attempt recorded), SMART Health Links
//! (creation, manifest and file hosting per spec-checklist §N–Q, lifetime passcode budget), SMS
//! with the link through a Twilio-compatible gateway, and the browser viewer that decrypts
//! links client-side. Every outbound request passes the SSRF guard in [`outbound`].
//!
//! For `vaxcred serve`: build a [`DeliveryState`] from the store and
//! [`DeliverySettings::from_config`], mount [`configure`] on the HTTP app, and run
//! [`run_worker`] with the bus and a shutdown token.
//!
//! # Layout
//! - [`settings`]: [`DeliverySettings`] from the platform config.
//! - [`state`]: [`DeliveryState`], shared by routes and worker.
//! - [`routes`]: [`configure`] and the HTTP handlers (route table in its docs).
//! - [`links`]: SHL creation, manifest answers, location tokens, file encryption and caching.
//! - [`viewer`]: the viewer page and its assets (`static/`).
//! - [`worker`]: [`run_worker`] — the `{p}.deliver` consumer and the wallet retry poller.
//! - [`notify`]: sending a link by SMS with retries.
//! - [`sms`]: E.164 normalization and the Twilio-compatible gateway client.
//! - [`webhook`]: Standard Webhooks signing and verification.
//! - [`outbound`]: the SSRF guard and the guarded HTTP client, with an injectable resolver.
//! - [`backoff`]: retry schedules with jitter.
//! - [`error`]: the error type, [`DeliveryError`].

pub mod backoff;
pub mod error;
pub mod links;
pub mod notify;
pub mod outbound;
pub mod routes;
pub mod settings;
pub mod sms;
pub mod state;
pub mod viewer;
pub mod webhook;
pub mod worker;

pub use error::{DeliveryError, Result};
pub use routes::configure;
pub use settings::DeliverySettings;
pub use state::DeliveryState;
pub use worker::run_worker;
