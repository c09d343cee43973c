//! Test fixtures shared by the workspace's test suites (a dev-dependency only, never in a
//! product build): a fresh [`Store`] per test, on SQLite in a temporary directory or on
//! PostgreSQL in a schema of its own (so tests run in parallel on one database), dropped when
//! the fixture goes away; a RabbitMQ vhost of its own for tests that cut the broker's
//! connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test fixtures: a setup failure must fail the test"
)]

use rand_core::{OsRng, RngCore};
use store::{Store, StoreOptions};

/// Base PostgreSQL URL: `DATABASE_URL` when it is a PostgreSQL URL, else the local `test`
/// database (trust auth, as on the development and CI machines).
pub fn pg_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => u,
        _ => "postgres://postgres@127.0.0.1:5432/test".to_owned(),
    }
}

/// `{prefix}_{12 random hex digits}`: names of schemas, queues, ids that must not collide
/// between tests running at the same time.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:012x}", OsRng.next_u64() & 0xffff_ffff_ffff)
}

/// A store of its own for one test.
pub struct TestDb {
    /// The store.
    pub store: Store,
    /// Its data directory (the SQLite file, key files a test puts there).
    pub dir: tempfile::TempDir,
    schema: Option<String>,
}

impl TestDb {
    /// SQLite in a new temporary directory, with the store's defaults.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(None, dir.path()).await.unwrap();
        TestDb {
            store,
            dir,
            schema: None,
        }
    }

    /// PostgreSQL ([`pg_url`]) in a new schema, migrated.
    pub async fn postgres() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let schema = unique("vt");
        let options = StoreOptions {
            schema: Some(schema.clone()),
            max_connections: Some(6),
            ..StoreOptions::default()
        };
        let store = Store::connect_with(Some(&pg_url()), dir.path(), options)
            .await
            .unwrap();
        TestDb {
            store,
            dir,
            schema: Some(schema),
        }
    }

    /// The PostgreSQL schema (`None` on SQLite).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside the test's runtime: a thread with a runtime
        // of its own drops the schema.
        if let Some(schema) = self.schema.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&pg_url()).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                            .execute(&mut c)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

async fn rabbitmqctl(args: &[&str]) {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A RabbitMQ vhost of its own, for tests that close every connection of their broker (named
/// `vt_…`, which `.ci/run` removes when a killed run left one behind).
pub struct Vhost {
    /// Its name.
    pub name: String,
}

impl Vhost {
    /// Creates it on the local broker, with all permissions for `guest`.
    pub async fn create() -> Vhost {
        let name = unique("vt");
        rabbitmqctl(&["add_vhost", &name]).await;
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]).await;
        Vhost { name }
    }

    /// Its AMQP URL (guest on the local broker).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }

    /// Forcibly closes every client connection of this vhost only.
    pub async fn close_connections(&self) {
        rabbitmqctl(&[
            "close_all_connections",
            "--vhost",
            &self.name,
            "--limit",
            "100",
            "fault test",
        ])
        .await;
    }

    /// Deletes it.
    pub async fn delete(self) {
        rabbitmqctl(&["delete_vhost", &self.name]).await;
    }
}
