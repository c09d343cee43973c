//! The store's one error type: what failed, whether a retry can help, and a stable code for DLQ
//! headers, metric labels and problem bodies. Messages carry ids and SQLSTATE codes only: database
//! servers put row values into their error details, so those are never copied into this type.

use std::borrow::Cow;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used (unsupported URL scheme, unusable data dir, bad schema name).
    #[error("store configuration: {0}")]
    Config(&'static str),
    /// The database could not be reached, the pool timed out, or the connection broke mid-way.
    /// Keeps the transport error (it holds no row data).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A concurrent writer won a race (unique key taken meanwhile, deadlock, serialization failure,
    /// SQLite busy). Retrying the whole operation is the fix.
    #[error("concurrent write conflict (sqlstate {sqlstate})")]
    Conflict {
        /// SQLSTATE (PostgreSQL) or extended result code (SQLite).
        sqlstate: String,
    },
    /// The database refused the data (foreign key to an unknown issuer, check constraint, duplicate
    /// natural key on a create). Retrying the same call fails the same way.
    #[error("constraint violated (sqlstate {sqlstate}, constraint {constraint})")]
    Constraint {
        /// SQLSTATE (PostgreSQL) or extended result code (SQLite).
        sqlstate: String,
        /// Constraint name when the server reports it, else `unknown`.
        constraint: String,
    },
    /// Any other error reported by the database server (SQL error, permission, disk full).
    #[error("database error (sqlstate {sqlstate})")]
    Database {
        /// SQLSTATE (PostgreSQL) or extended result code (SQLite).
        sqlstate: String,
    },
    /// A stored value could not be decoded into its Rust type (schema drift or manual edits).
    #[error("stored data cannot be decoded: {what}")]
    Corrupt {
        /// Which value, e.g. a column or type name.
        what: Cow<'static, str>,
    },
    /// The caller passed data the store cannot accept (e.g. a patient change without identifiers).
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// A row that the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Applying the embedded migrations failed.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl Error {
    /// Stable, low-cardinality code (kebab-case) for DLQ headers, metrics and problem bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "store-config",
            Error::Unavailable(_) => "store-unavailable",
            Error::Conflict { .. } => "store-conflict",
            Error::Constraint { .. } => "store-constraint",
            Error::Database { .. } => "store-database",
            Error::Corrupt { .. } => "store-corrupt",
            Error::Invalid(_) => "store-invalid-input",
            Error::NotFound(_) => "store-not-found",
            Error::Migrate(_) => "store-migration",
        }
    }

    /// True when the same call may succeed later (transient outage or lost race): the consumer
    /// should retry with backoff instead of dead-lettering.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Conflict { .. })
    }
}

/// PostgreSQL SQLSTATEs that mean "someone else won, try again": serialization failure,
/// deadlock, lock not available. (A unique violation is a lost race only where the code says so:
/// see [`Error::lost_race`].)
const PG_RETRYABLE: &[&str] = &["40001", "40P01", "55P03"];

impl Error {
    /// For inserts that race with concurrent find-or-create (PostgreSQL): a unique violation
    /// there means another transaction created the row first, so a retry will find it.
    pub(crate) fn lost_race(self) -> Error {
        match self {
            Error::Constraint { sqlstate, .. } if sqlstate == "23505" => {
                Error::Conflict { sqlstate }
            }
            other => other,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                let sqlstate = db.code().map(Cow::into_owned).unwrap_or_default();
                let constraint = db.constraint().unwrap_or("unknown").to_owned();
                // SQLite: 5 = BUSY, 6 = LOCKED and their extended codes (low byte).
                let sqlite_busy = sqlstate
                    .parse::<u32>()
                    .map(|c| matches!(c & 0xff, 5 | 6))
                    .unwrap_or(false);
                if sqlite_busy || PG_RETRYABLE.contains(&sqlstate.as_str()) {
                    Error::Conflict { sqlstate }
                } else if matches!(
                    db.kind(),
                    sqlx::error::ErrorKind::UniqueViolation
                        | sqlx::error::ErrorKind::ForeignKeyViolation
                        | sqlx::error::ErrorKind::NotNullViolation
                        | sqlx::error::ErrorKind::CheckViolation
                ) {
                    Error::Constraint {
                        sqlstate,
                        constraint,
                    }
                } else if sqlstate.starts_with("08") || sqlstate.starts_with("57P") {
                    // Connection exceptions and admin shutdown: the server is going away.
                    // Their text names no rows, so the original error can be kept.
                    Error::Unavailable(sqlx::Error::Database(db))
                } else {
                    Error::Database { sqlstate }
                }
            }
            sqlx::Error::ColumnDecode { index, .. } => Error::Corrupt {
                what: Cow::Owned(format!("column {index}")),
            },
            sqlx::Error::Decode(_) => Error::Corrupt {
                what: Cow::Borrowed("value"),
            },
            sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
                Error::Corrupt {
                    what: Cow::Borrowed("column"),
                }
            }
            sqlx::Error::RowNotFound => Error::NotFound("row"),
            sqlx::Error::Configuration(_) => Error::Config("database url or options rejected"),
            other => Error::Unavailable(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(e)
    }
}

/// Result alias for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
