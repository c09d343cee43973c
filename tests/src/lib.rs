//! Helpers for the cross-service tests: a pipeline (ingest consumers, issue workers, outbox
//! relay) started in-process against the real RabbitMQ (own prefix or own vhost) and a real
//! database (own SQLite file or own PostgreSQL schema), a fake EHR (SMART token endpoint and FHIR
//! Patient reads) on port 0, FHIR message builders, a switchable TCP proxy to cut the database,
//! and bounded polling.
//!
//! This crate is test code end to end (its library is the tests' shared helpers), so a failed
//! setup step panics and fails the test loudly, as `allow-unwrap-in-tests` allows in tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers: a failed setup must fail the test loudly"
)]

pub mod ehr;
pub mod fhir;
pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, BusConfig, Outgoing};
use issuer::keystore::{FileKeyStore, KeyStore};
use issuer::relay::{RelayConfig, RelayHandle};
use issuer::worker::{CardContext, IssueConfig, IssueContext};
use rand_core::{OsRng, RngCore};
use store::{CredentialStatus, EventStatus, Store, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Liveness bound of any wait (not a performance target).
pub const DEADLINE: Duration = Duration::from_secs(180);

/// A short random name part.
pub fn random_name(kind: &str) -> String {
    format!("vt{kind}{:010x}", OsRng.next_u64() & 0xff_ffff_ffff)
}

/// Polls `check` every 50 ms until true; panics after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// The local PostgreSQL, own schema.
    Postgres,
}

pub use testkit::pg_url as postgres_url;

/// A fresh database for one test.
pub struct TestDb {
    /// The store.
    pub store: Store,
    /// Data dir (keys, SQLite file).
    pub dir: tempfile::TempDir,
    schema: Option<String>,
}

impl TestDb {
    /// The PostgreSQL schema (None on SQLite).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// A new SQLite file or PostgreSQL schema; `pg_url` overrides the PostgreSQL URL (a proxy).
    pub async fn new(backend: Backend, pg_url: Option<String>) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                // A short busy timeout: a writer locked out (the SQLite outage test) fails
                // within a second instead of five, and the pipeline's retries take over.
                let store = Store::connect_with(
                    None,
                    dir.path(),
                    StoreOptions {
                        busy_timeout: Duration::from_millis(500),
                        ..StoreOptions::default()
                    },
                )
                .await
                .unwrap();
                TestDb {
                    store,
                    dir,
                    schema: None,
                }
            }
            Backend::Postgres => {
                let schema = random_name("s");
                let url = pg_url.unwrap_or_else(postgres_url);
                let store = Store::connect_with(
                    Some(&url),
                    dir.path(),
                    StoreOptions {
                        schema: Some(schema.clone()),
                        acquire_timeout: Duration::from_secs(3),
                        ..StoreOptions::default()
                    },
                )
                .await
                .unwrap();
                TestDb {
                    store,
                    dir,
                    schema: Some(schema),
                }
            }
        }
    }

    /// The SQLite database file (None on PostgreSQL).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.schema
            .is_none()
            .then(|| self.dir.path().join(store::SQLITE_FILE))
    }

    /// Drops the PostgreSQL schema (through a direct connection).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(schema) = self.schema {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

pub use testkit::Vhost;

/// Bus settings for tests: own prefix, millisecond retries.
pub fn bus_config(prefix: &str, url: Option<String>) -> BusConfig {
    BusConfig {
        url: url.unwrap_or_else(|| bus::DEFAULT_URL.to_owned()),
        prefix: prefix.to_owned(),
        retry_delays: vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
            Duration::from_millis(800),
        ],
        connection_name: format!("{prefix}-test"),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(2),
        publish_timeout: Duration::from_secs(5),
        ..BusConfig::default()
    }
}

/// The issuer's `iss` in tests.
pub const ISS: &str = "https://issuer.test";
/// The source name whose Patients are fetched from the fake EHR.
pub const EHR_SOURCE: &str = "ehr1";

/// The pipeline running in-process.
pub struct Pipeline {
    /// The broker handle (also used to publish and inspect).
    pub bus: Bus,
    /// The store.
    pub store: Store,
    /// The default issuer's id.
    pub issuer_id: String,
    /// Key store (for the JWKS).
    pub keys: Arc<FileKeyStore>,
    ingest: ingest::IngestContext,
    ingest_shutdown: CancellationToken,
    ingest_tasks: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts 2 ingest consumers, 2 issue workers and the relay.
    pub async fn start(
        store: Store,
        data_dir: PathBuf,
        bus: Bus,
        ehr: Option<&ehr::Ehr>,
    ) -> Pipeline {
        let issuer = issuer::issuers::ensure_default_issuer(&store, ISS, "Test issuer")
            .await
            .unwrap();
        let keys = Arc::new(
            FileKeyStore::open(
                &data_dir.join("keys"),
                &store,
                std::slice::from_ref(&issuer),
            )
            .await
            .unwrap(),
        );
        let relay = RelayHandle::new();
        let mut config = ingest::IngestConfig::new(issuer.id.clone());
        config.http_timeout = Duration::from_secs(5);
        // The benchmark tries other batch sizes (keep ≤ the bus prefetch).
        if let Some(b) = std::env::var("BENCH_INGEST_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.batch = b;
        }
        if let Some(ehr) = ehr {
            config.sources.push(ehr.source_config(&issuer.id));
        }
        let ingest =
            ingest::IngestContext::new(store.clone(), bus.clone(), config, relay.notifier(), None)
                .unwrap();
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let issue_ctx = IssueContext {
            cards: CardContext {
                store: store.clone(),
                keys: keys.clone() as Arc<dyn KeyStore>,
                issuers: Arc::new(HashMap::from([(issuer.id.clone(), ISS.to_owned())])),
                relay: Some(relay.clone()),
            },
            bus: bus.clone(),
            metrics: None,
        };
        for _ in 0..2 {
            let (ctx, token) = (issue_ctx.clone(), shutdown.clone());
            let cfg = IssueConfig {
                rid_secret: Some("test-secret".into()),
                ..IssueConfig::default()
            };
            tasks.push(tokio::spawn(async move {
                issuer::worker::run(ctx, cfg, token).await.unwrap();
            }));
        }
        {
            let (s, b, r, token) = (store.clone(), bus.clone(), relay.clone(), shutdown.clone());
            let cfg = RelayConfig {
                error_backoff: Duration::from_millis(100),
                ..RelayConfig::default()
            };
            tasks.push(tokio::spawn(async move {
                issuer::relay::run(s, b, r, cfg, token).await.unwrap();
            }));
        }
        let mut p = Pipeline {
            bus,
            store,
            issuer_id: issuer.id,
            keys,
            ingest,
            ingest_shutdown: CancellationToken::new(),
            ingest_tasks: Vec::new(),
            shutdown,
            tasks,
        };
        // The benchmark tries other consumer counts.
        let ingest_workers = std::env::var("BENCH_INGEST_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        p.spawn_ingest(ingest_workers);
        p
    }

    /// Starts `n` more ingest consumers.
    pub fn spawn_ingest(&mut self, n: usize) {
        for _ in 0..n {
            let (ctx, token) = (self.ingest.clone(), self.ingest_shutdown.clone());
            self.ingest_tasks.push(tokio::spawn(async move {
                ingest::run(ctx, token).await.unwrap();
            }));
        }
    }

    /// Aborts the ingest consumer tasks wherever they are (mid-batch included).
    pub async fn abort_ingest(&mut self) {
        for t in self.ingest_tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }

    /// Publishes to the EHR exchange (routing key `fhir.Immunization`) with confirms.
    pub async fn publish(&self, messages: Vec<Outgoing>) {
        let publisher = self.bus.publisher();
        for chunk in messages.chunks(200) {
            publisher.publish_batch(chunk).await.unwrap();
        }
    }

    /// Stops everything gracefully and deletes the topology.
    pub async fn stop(self) {
        self.ingest_shutdown.cancel();
        self.shutdown.cancel();
        for t in self.ingest_tasks.into_iter().chain(self.tasks) {
            t.await.unwrap();
        }
        self.bus.delete_topology().await.unwrap();
        self.bus.close().await;
    }

    /// Waits until at least `n` events are processed (a fault test's "under way").
    pub async fn wait_processed(&self, n: i64) {
        wait_until("some events processed", || async {
            self.events()
                .await
                .get(&EventStatus::Processed)
                .copied()
                .unwrap_or(0)
                >= n
        })
        .await;
    }

    /// Event rows by status.
    pub async fn events(&self) -> HashMap<EventStatus, i64> {
        self.store.count_events_by_status().await.unwrap()
    }

    /// The JWKS as a verifier sees it.
    pub async fn trust_store(&self) -> shc::TrustStore {
        let doc = issuer::jwks::jwks_document(&self.store, &self.issuer_id)
            .await
            .unwrap();
        let jwks = shc::Jwks::parse(&doc.to_string()).unwrap();
        let mut trust = shc::TrustStore::new();
        trust.add_issuer(ISS, jwks);
        // Cards revoked while a patient had no dose left (withdrawals overtaking doses) put the
        // key's CRL in play: verifiers fetch it, so does this one.
        for (kid, _) in self.store.crl_versions(&self.issuer_id).await.unwrap() {
            let crl = self
                .store
                .get_crl(&self.issuer_id, &kid)
                .await
                .unwrap()
                .unwrap();
            let rids: Vec<String> = crl
                .rids
                .iter()
                .map(|r| match r.revoked_before {
                    Some(t) => format!("{}.{t}", r.rid),
                    None => r.rid.clone(),
                })
                .collect();
            let doc =
                serde_json::json!({ "kid": kid, "method": "rid", "ctr": crl.ctr, "rids": rids });
            trust.add_crl(&doc).unwrap();
        }
        trust
    }
}

/// A message to the EHR exchange.
pub fn message(
    topology: &bus::Topology,
    body: Vec<u8>,
    message_id: Option<&str>,
    source: Option<&str>,
) -> Outgoing {
    let mut m = Outgoing::new(topology.ehr_exchange(), "fhir.Immunization", body)
        .content_type("application/fhir+json");
    if let Some(id) = message_id {
        m = m.message_id(id);
    }
    if let Some(s) = source {
        m = m.header_str("source", s);
    }
    m
}

/// What the whole pipeline must have done, exactly.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    /// `events` rows processed.
    pub processed: i64,
    /// `events` rows rejected.
    pub rejected: i64,
    /// DLQ messages by `x-vaxcred-error`.
    pub dlq: BTreeMap<String, usize>,
    /// Patients by (identifier system, value) → number of doses on their one current card.
    pub patients: BTreeMap<(String, String), usize>,
}

/// Waits until the pipeline settled into `expected`, then checks it exactly: event rows, DLQ
/// codes, one active verifiable card per patient with the expected doses, the outbox drained and
/// one delivery message per stored card.
pub async fn assert_accounting(p: &Pipeline, expected: &Expected) {
    let dlq_total: usize = expected.dlq.values().sum();
    wait_until("events processed or rejected", || async {
        let e = p.events().await;
        e.get(&EventStatus::Processed).copied().unwrap_or(0) == expected.processed
            && e.get(&EventStatus::Rejected).copied().unwrap_or(0) == expected.rejected
    })
    .await;
    let dlq = p.bus.topology().dlq();
    wait_until("dead letters", || async {
        p.bus.message_count(&dlq).await.unwrap() as usize >= dlq_total
    })
    .await;
    let topology = p.bus.topology().clone();
    wait_until("ingest and issue queues drained, outbox sent", || async {
        p.bus
            .message_count(&topology.queue("ingest"))
            .await
            .unwrap()
            == 0
            && p.bus.message_count(&topology.queue("issue")).await.unwrap() == 0
            && p.store.count_pending_outbox().await.unwrap() == 0
    })
    .await;
    // Every patient has its current card (issue jobs may still be in flight).
    let mut patient_ids = Vec::new();
    for (system, value) in expected.patients.keys() {
        wait_until("patient stored", || async {
            p.store
                .find_patient_by_identifier(&p.issuer_id, system, value)
                .await
                .unwrap()
                .is_some()
        })
        .await;
        let id = p
            .store
            .find_patient_by_identifier(&p.issuer_id, system, value)
            .await
            .unwrap();
        patient_ids.push(id.unwrap());
    }
    for patient in &patient_ids {
        wait_until("current card", || async {
            let creds = p.store.list_credentials(&patient.id).await.unwrap();
            let current = p.store.get_patient(&patient.id).await.unwrap().unwrap();
            creds.iter().any(|c| {
                c.status == CredentialStatus::Active && c.doses_version == current.doses_version
            })
        })
        .await;
    }
    wait_until("outbox drained after issuing", || async {
        p.store.count_pending_outbox().await.unwrap() == 0
            && p.bus.message_count(&topology.queue("issue")).await.unwrap() == 0
    })
    .await;

    let e = p.events().await;
    assert_eq!(
        e.get(&EventStatus::Processed).copied().unwrap_or(0),
        expected.processed,
        "{e:?}"
    );
    assert_eq!(
        e.get(&EventStatus::Rejected).copied().unwrap_or(0),
        expected.rejected,
        "{e:?}"
    );
    assert_eq!(
        e.get(&EventStatus::Retrying).copied().unwrap_or(0),
        0,
        "{e:?}"
    );
    assert_eq!(
        e.get(&EventStatus::Received).copied().unwrap_or(0),
        0,
        "{e:?}"
    );

    let letters = p.bus.dlq_list(dlq_total + 50).await.unwrap();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    // Dead-lettering is at least once: a consumer killed between publishing to the DLQ and
    // acking the original sees it again. Count distinct messages (by body), not copies.
    let mut seen = std::collections::HashSet::new();
    for l in letters.iter().filter(|l| seen.insert(l.body.clone())) {
        *codes
            .entry(l.error_code.clone().unwrap_or_else(|| "(broker)".into()))
            .or_default() += 1;
    }
    assert_eq!(codes, expected.dlq, "dead letters by code");

    let verifier = shc::Verifier::new(p.trust_store().await);
    let mut stored_cards = 0usize;
    for (((_, _), doses), patient) in expected.patients.iter().zip(&patient_ids) {
        let creds = p.store.list_credentials(&patient.id).await.unwrap();
        stored_cards += creds.len();
        let active: Vec<_> = creds
            .iter()
            .filter(|c| c.status == CredentialStatus::Active)
            .collect();
        assert_eq!(
            active.len(),
            1,
            "exactly one current card for {}",
            patient.id
        );
        let card = active.first().unwrap();
        let current = p.store.get_patient(&patient.id).await.unwrap().unwrap();
        assert_eq!(card.doses_version, current.doses_version, "card is current");
        let report = verifier.verify_jws(&card.artefact);
        assert!(report.is_valid(), "card verifies: {:?}", report.problems);
        let contents = report.contents.unwrap();
        assert_eq!(
            contents.immunizations.len(),
            *doses,
            "doses on the card of {}",
            patient.id
        );
    }
    // One delivery job per stored card, exactly (jobs travel in packs).
    let bodies = p
        .bus
        .peek(&topology.queue("deliver"), stored_cards + 100)
        .await
        .unwrap();
    let mut delivered: Vec<String> = bodies
        .iter()
        .flat_map(|b| {
            serde_json::from_slice::<store::DeliverMessage>(b)
                .unwrap()
                .into_jobs()
        })
        .map(|j| j.credential_id)
        .collect();
    delivered.sort();
    let mut stored: Vec<String> = Vec::new();
    for patient in &patient_ids {
        stored.extend(
            p.store
                .list_credentials(&patient.id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id),
        );
    }
    stored.sort();
    assert_eq!(delivered, stored, "one delivery job per stored card");
}
