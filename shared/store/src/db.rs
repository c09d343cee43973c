//! Connecting: picks the backend from the URL, configures the pool (WAL, busy timeout and foreign
//! keys on SQLite; pool size and an optional schema on PostgreSQL), runs the embedded migrations,
//! and provides the `dispatch!` macro that every repository method uses to run one body of code
//! against whichever backend is configured.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::error::{Error, Result};

/// File name of the default SQLite database inside the data dir.
pub const SQLITE_FILE: &str = "vaxcred.db";

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Tuning knobs for [`Store::connect_with`]. `Default` suits a single `vaxcred serve`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size. PostgreSQL default 10. SQLite default 1: it has one writer at a time
    /// anyway, and with several connections the writers (ingest, issue workers, relay) wait for
    /// each other in SQLite's sleeping busy handler instead of in the pool's queue: p99 latency
    /// at 500 events/s went from 305 ms (4 connections) to 45 ms (1), BENCHMARKS.md.
    pub max_connections: Option<u32>,
    /// How long to wait for a pooled connection before failing with `store-unavailable`.
    pub acquire_timeout: Duration,
    /// SQLite `busy_timeout`: how long a writer waits for the lock held by another process.
    pub busy_timeout: Duration,
    /// PostgreSQL only: schema to create (if missing) and put first on `search_path`. Lets each
    /// test, or each tenant of a shared database, have its own tables. `[a-z0-9_]`, 1..=63 chars.
    pub schema: Option<String>,
    /// Run the embedded migrations on connect (default true).
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            schema: None,
            migrate: true,
        }
    }
}

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite file (the default).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle on the database: cheap to clone (it is a pool), safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

/// Run `$body` with `$pool` bound to the concrete pool and `$pg` to whether it is PostgreSQL.
/// The body is compiled once per backend, so it may use backend-specific types freely; SQL text
/// uses `$N` placeholders, which both sqlx drivers accept.
macro_rules! dispatch {
    ($store:expr, $pool:ident, $pg:ident => $body:expr) => {
        match &$store.backend {
            $crate::db::Backend::Sqlite(pool) => {
                let $pool = pool;
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
            $crate::db::Backend::Postgres(pool) => {
                let $pool = pool;
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Starting a transaction that will write. SQLite gets `BEGIN IMMEDIATE`, so the write lock is
/// taken up front: a deferred transaction that reads and then writes fails with `SQLITE_BUSY`
/// instead of waiting when another connection wrote in between.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.begin().await?)
    }
}

impl Store {
    /// Connect with default options: `url` `None` means a SQLite file `vaxcred.db` in `data_dir`
    /// (both created if missing); `sqlite:` URLs open SQLite, `postgres://`/`postgresql://` open
    /// PostgreSQL. Migrations run before this returns.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Store> {
        Store::connect_with(url, data_dir, StoreOptions::default()).await
    }

    /// [`Store::connect`] with explicit options.
    pub async fn connect_with(
        url: Option<&str>,
        data_dir: &Path,
        options: StoreOptions,
    ) -> Result<Store> {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        let store = match url {
            None => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|_| Error::Config("cannot create the data dir"))?;
                let opts = SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE));
                Store::connect_sqlite(opts, &options).await?
            }
            Some(u) if u.starts_with("sqlite:") => {
                let opts = SqliteConnectOptions::from_str(u)
                    .map_err(|_| Error::Config("invalid sqlite url"))?;
                Store::connect_sqlite(opts, &options).await?
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(u)
                    .map_err(|_| Error::Config("invalid postgres url"))?;
                Store::connect_postgres(opts, &options).await?
            }
            Some(_) => return Err(Error::Config("unsupported database url scheme")),
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    async fn connect_sqlite(opts: SqliteConnectOptions, options: &StoreOptions) -> Result<Store> {
        if options.schema.is_some() {
            return Err(Error::Config("schema is a postgres option"));
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes; only an OS crash may lose the
            // last commits, which the broker then redelivers (we ack after commit).
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Store {
            backend: Backend::Sqlite(pool),
        })
    }

    async fn connect_postgres(opts: PgConnectOptions, options: &StoreOptions) -> Result<Store> {
        let mut opts = opts;
        if let Some(schema) = &options.schema {
            if !valid_schema_name(schema) {
                return Err(Error::Config(
                    "schema name must be [a-z0-9_], 1 to 63 chars",
                ));
            }
            // Create it first through a plain connection: the pool's connections start with the
            // schema on their search_path, and migrations create their tables there.
            let mut conn: sqlx::PgConnection = sqlx::Connection::connect_with(&opts).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut conn)
                .await?;
            sqlx::Connection::close(conn).await?;
            opts = opts.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(10))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Store {
            backend: Backend::Postgres(pool),
        })
    }

    /// Apply the embedded migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Which backend this store uses.
    pub fn kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Health check: one round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, pool, _pg => {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Close the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// New prefixed, time-ordered id, e.g. `pat_01936f0c7d2a7c3e9b1f4a5d6e7f8091`. Prefixes make ids
/// self-describing in logs; v7 UUIDs keep B-tree inserts at the right edge of the index.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The store's clock. Timestamps are written from Rust (never `now()` in SQL) so both backends
/// store comparable values and SQLite's text timestamps sort correctly.
/// Truncated to microseconds, PostgreSQL's precision, so values read back equal values written.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    micros(chrono::Utc::now())
}

/// A caller's timestamp at the precision both backends store.
pub(crate) fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// SQL that must differ per backend for speed, not meaning.
///
/// Lists of ids: PostgreSQL gets `col = ANY($n)` with one array parameter, so the statement text
/// is the same for every batch size (prepared once, planned cheaply; an `IN` list of 100
/// literals costs PostgreSQL ~2 ms to plan and fills sqlx's statement cache with one entry per
/// size). SQLite keeps `col IN (?, …)`.
///
/// Three-column keys (`(issuer, system, value)`): PostgreSQL joins the table to `UNNEST` of three
/// arrays, which is one index probe per key. A row-value `IN` list is not: when every key shares
/// the issuer and system (the normal case), the planner factors them out and scans the index
/// range of the whole issuer, filtering on the value, which measured 45 ms per 100 keys at
/// 40,000 rows and grows with the table.
pub(crate) trait Dialect: sqlx::Database {
    /// Appends `column IN (…)` / `column = ANY(…)` for `items` (non-empty).
    fn push_in<'a, T: AsRef<str>>(qb: &mut sqlx::QueryBuilder<'a, Self>, column: &str, items: &[T]);

    /// Appends `FROM {table} t` plus whatever restricts `t` to the rows whose
    /// `(t.{cols.0}, t.{cols.1}, t.{cols.2})` is one of `keys` (non-empty). Select columns with
    /// the `t.` prefix.
    fn push_from_keys<'a>(
        qb: &mut sqlx::QueryBuilder<'a, Self>,
        table: &str,
        cols: (&str, &str, &str),
        keys: &[(String, String, String)],
    );
}

impl Dialect for Postgres {
    fn push_in<'a, T: AsRef<str>>(
        qb: &mut sqlx::QueryBuilder<'a, Self>,
        column: &str,
        items: &[T],
    ) {
        let list: Vec<String> = items.iter().map(|i| i.as_ref().to_owned()).collect();
        qb.push(column);
        qb.push(" = ANY(");
        qb.push_bind(list);
        qb.push(")");
    }

    fn push_from_keys<'a>(
        qb: &mut sqlx::QueryBuilder<'a, Self>,
        table: &str,
        cols: (&str, &str, &str),
        keys: &[(String, String, String)],
    ) {
        let (a, b, c): (Vec<String>, Vec<String>, Vec<String>) = keys.iter().cloned().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut a, mut b, mut c), (x, y, z)| {
                a.push(x);
                b.push(y);
                c.push(z);
                (a, b, c)
            },
        );
        qb.push(format_args!("FROM {table} t JOIN UNNEST("));
        qb.push_bind(a);
        qb.push("::text[], ");
        qb.push_bind(b);
        qb.push("::text[], ");
        qb.push_bind(c);
        qb.push(format_args!(
            "::text[]) AS k(k1, k2, k3) ON t.{} = k.k1 AND t.{} = k.k2 AND t.{} = k.k3",
            cols.0, cols.1, cols.2
        ));
    }
}

impl Dialect for Sqlite {
    fn push_in<'a, T: AsRef<str>>(
        qb: &mut sqlx::QueryBuilder<'a, Self>,
        column: &str,
        items: &[T],
    ) {
        qb.push(column);
        qb.push(" IN (");
        let mut sep = qb.separated(", ");
        for item in items {
            sep.push_bind(item.as_ref().to_owned());
        }
        qb.push(")");
    }

    fn push_from_keys<'a>(
        qb: &mut sqlx::QueryBuilder<'a, Self>,
        table: &str,
        cols: (&str, &str, &str),
        keys: &[(String, String, String)],
    ) {
        qb.push(format_args!(
            "FROM {table} t WHERE (t.{}, t.{}, t.{}) IN (",
            cols.0, cols.1, cols.2
        ));
        qb.push_values(keys.iter().cloned(), |mut row, (x, y, z)| {
            row.push_bind(x).push_bind(y).push_bind(z);
        });
        qb.push(")");
    }
}

/// A query builder for the pool's backend (names the backend where `dispatch!` bodies cannot).
pub(crate) fn builder<'a, DB: Dialect>(
    _pool: &sqlx::Pool<DB>,
    sql: impl Into<String>,
) -> sqlx::QueryBuilder<'a, DB> {
    sqlx::QueryBuilder::new(sql)
}
