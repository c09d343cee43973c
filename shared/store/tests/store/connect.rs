//! Connecting: default SQLite file, URL schemes, error codes.

use store::{BackendKind, Store, StoreOptions};

use crate::helpers::{both, pg_url};

async fn ping_works(store: Store) {
    store.ping().await.unwrap();
    // Migrations are idempotent.
    store.migrate().await.unwrap();
}
both!(ping_works);

#[tokio::test]
async fn default_is_a_sqlite_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::connect(None, &data).await.unwrap();
    assert_eq!(store.kind(), BackendKind::Sqlite);
    assert!(data.join(store::SQLITE_FILE).exists());
    store.close().await;
    // Reopening the same file works and keeps the schema.
    let store = Store::connect(Some(""), &data).await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn sqlite_url_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let store = Store::connect(Some(&url), dir.path()).await.unwrap();
    assert_eq!(store.kind(), BackendKind::Sqlite);
    assert!(dir.path().join("x.db").exists());
}

#[tokio::test]
async fn unsupported_scheme_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::connect(Some("mysql://localhost/x"), dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store-config");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn bad_schema_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        schema: Some("x; DROP".to_owned()),
        ..StoreOptions::default()
    };
    let err = Store::connect_with(Some(&pg_url()), dir.path(), options)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store-config");
}

#[tokio::test]
async fn unreachable_postgres_is_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..StoreOptions::default()
    };
    // Port 1 on loopback: connection refused at once.
    let err = Store::connect_with(
        Some("postgres://postgres@127.0.0.1:1/test"),
        dir.path(),
        options,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "store-unavailable");
    assert!(err.is_retryable());
}
