//! vaxcred persistence: sqlx repositories over SQLite (the default: a file in the data dir) and
//! PostgreSQL (`DATABASE_URL=postgres://…`), with one set of embedded migrations per backend and
//! the same schema on both. Writes that must go together (dose + outbox row; credential +
//! supersede + outbox row) are one transaction; the pipeline's hot paths have batch forms that
//! process a micro-batch in one transaction with multi-row statements.
//!
//! # Layout
//! - `db`: [`Store`], connecting, options, migrations, `ping`, backend dispatch.
//! - `events`: idempotent recording of received messages, reject/retry status.
//! - `apply`: applying normalized events (patients, identifiers, doses, `issue` outbox rows).
//! - `credentials`: issue snapshot, storing cards with the stale check, lookups, revocation.
//! - `outbox`: claiming and settling outbox rows for the relay.
//! - `keys`: issuers, sources, signing keys, CRLs.
//! - `shl`: SMART Health Links and their passcode failure counter.
//! - `deliveries`: delivery jobs and attempts.
//! - `wallets`: patients' wallet push endpoints.
//! - `launch_sessions`: the clinician launch app's server-side sessions.
//! - `admin`: review cases, staff, API tokens, audit.
//! - `types`: the record types; `error`: [`Error`].

mod admin;
mod apply;
mod credentials;
mod db;
mod deliveries;
mod error;
mod events;
mod keys;
mod launch_sessions;
mod outbox;
mod shl;
mod types;
mod wallets;

pub use db::{BackendKind, Store, StoreOptions, SQLITE_FILE};
pub use error::{Error, Result};
pub use launch_sessions::LaunchSession;
pub use types::*;
