//! The whole pipeline over the real RabbitMQ and database: a mixed load of events (valid,
//! malformed, wrong type, unknown code, duplicates, amendments, entered-in-error, Patients to
//! fetch) must end exactly accounted for — on SQLite and on PostgreSQL, and after faults: the
//! broker closing every connection, the consumers aborted mid-batch, the database cut for a
//! while, the EHR answering 503 before 200.
#![allow(
    clippy::unwrap_used,
    reason = "setup helpers of tests: failures must fail the test"
)]

use std::collections::BTreeMap;

use rand_core::RngCore;
use vaxcred_tests::ehr::Ehr;
use vaxcred_tests::fhir::{self, MRN};
use vaxcred_tests::proxy::Proxy;
use vaxcred_tests::{
    assert_accounting, bus_config, message, random_name, wait_until, Backend, Expected, Pipeline,
    TestDb, Vhost, EHR_SOURCE,
};

/// Sizes of one scenario.
struct Mix {
    patients: usize,
    duplicates: usize,
    amendments: usize,
    withdrawals: usize,
    fetched: usize,
    bad_each: usize,
}

impl Mix {
    /// 1,000 events: 700 doses, 100 duplicates, 50 amendments, 30 entered-in-error, 60 fetches,
    /// 60 bad.
    const THOUSAND: Mix = Mix {
        patients: 350,
        duplicates: 100,
        amendments: 50,
        withdrawals: 30,
        fetched: 60,
        bad_each: 20,
    };
    /// A smaller mix for the fault tests (300 events).
    const SMALL: Mix = Mix {
        patients: 100,
        duplicates: 30,
        amendments: 15,
        withdrawals: 10,
        fetched: 20,
        bad_each: 5,
    };

    fn total(&self) -> usize {
        self.patients * 2
            + self.duplicates
            + self.amendments
            + self.withdrawals
            + self.fetched
            + 3 * self.bad_each
    }
}

fn scenario(p: &Pipeline, mix: &Mix) -> (Vec<bus::Outgoing>, Expected) {
    let t = p.bus.topology();
    let mut out = Vec::new();
    let mut expected = Expected::default();
    for i in 0..mix.patients {
        let mrn = format!("MRN-{i}");
        out.push(message(
            t,
            fhir::dose(&mrn, 1, 1, "A1001"),
            Some(&format!("m-{i}-1")),
            None,
        ));
        out.push(message(
            t,
            fhir::dose(&mrn, 2, 1, "B2002"),
            Some(&format!("m-{i}-2")),
            None,
        ));
        expected.patients.insert((MRN.into(), mrn), 2);
    }
    for i in 0..mix.duplicates {
        out.push(message(
            t,
            fhir::dose(&format!("MRN-{i}"), 1, 1, "A1001"),
            Some(&format!("m-{i}-1")),
            None,
        ));
    }
    for i in mix.duplicates..mix.duplicates + mix.amendments {
        out.push(message(
            t,
            fhir::dose(&format!("MRN-{i}"), 1, 2, "A1001-B"),
            Some(&format!("a-{i}")),
            None,
        ));
    }
    let w0 = mix.duplicates + mix.amendments;
    for i in w0..w0 + mix.withdrawals {
        out.push(message(
            t,
            fhir::entered_in_error(&format!("MRN-{i}"), 2),
            Some(&format!("e-{i}")),
            None,
        ));
        expected
            .patients
            .insert((MRN.into(), format!("MRN-{i}")), 1);
    }
    for i in 0..mix.fetched {
        let id = format!("f{i}");
        out.push(message(
            t,
            fhir::needs_fetch(&id),
            Some(&format!("f-{i}")),
            Some(EHR_SOURCE),
        ));
        expected.patients.insert((MRN.into(), id), 1);
    }
    for i in 0..mix.bad_each {
        out.push(message(t, fhir::malformed(i), None, None));
        out.push(message(
            t,
            fhir::wrong_type(i),
            Some(&format!("w-{i}")),
            None,
        ));
        out.push(message(
            t,
            fhir::unknown_code(&format!("MRN-X{i}")),
            Some(&format!("u-{i}")),
            None,
        ));
    }
    assert_eq!(out.len(), mix.total());
    // Shuffle: amendments and withdrawals may overtake what they amend.
    for i in (1..out.len()).rev() {
        let j = (rand_core::OsRng.next_u64() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    expected.processed = (mix.patients * 2 + mix.amendments + mix.withdrawals + mix.fetched) as i64;
    expected.rejected = (3 * mix.bad_each) as i64;
    expected.dlq = BTreeMap::from([
        ("not-fhir-json".to_owned(), mix.bad_each),
        ("wrong-resource-type".to_owned(), mix.bad_each),
        ("vaccine-code-unknown".to_owned(), mix.bad_each),
    ]);
    (out, expected)
}

async fn start(
    backend: Backend,
    amqp_url: Option<String>,
    pg_url: Option<String>,
) -> (Pipeline, TestDb, Ehr) {
    let db = TestDb::new(backend, pg_url).await;
    let bus = bus::Bus::connect(bus_config(&random_name("p"), amqp_url))
        .await
        .unwrap();
    let ehr = Ehr::start().await;
    let p = Pipeline::start(db.store.clone(), db.dir.path().to_owned(), bus, Some(&ehr)).await;
    (p, db, ehr)
}

async fn thousand_events(backend: Backend) {
    let (p, db, ehr) = start(backend, None, None).await;
    let (messages, expected) = scenario(&p, &Mix::THOUSAND);
    assert!(messages.len() >= 1000);
    p.publish(messages).await;
    assert_accounting(&p, &expected).await;
    // SMART Backend Services: one token for all fetches (cached), every fetched Patient read once
    // or more (redeliveries may read again), never more tokens than needed.
    assert_eq!(
        ehr.state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_for_1000_events_on_sqlite() {
    thousand_events(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_for_1000_events_on_postgres() {
    thousand_events(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_broker_closing_every_connection() {
    let vhost = Vhost::create().await;
    let (p, db, ehr) = start(Backend::Postgres, Some(vhost.url()), None).await;
    let (messages, expected) = scenario(&p, &Mix::SMALL);
    p.publish(messages).await;
    p.wait_processed(20).await;
    let generation = p.bus.connection_generation();
    vhost.close_connections().await;
    wait_until("reconnected", || async {
        p.bus.connection_generation() > generation && p.bus.is_ready()
    })
    .await;
    assert_accounting(&p, &expected).await;
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
    vhost.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_consumers_aborted_mid_batch() {
    // Own vhost: the crash of a consumer is modelled as in a real process crash, where the
    // broker connection goes too and every unacked delivery is requeued. (Aborting a task inside
    // a live process can leave its channel's unacked deliveries parked until the channel closes;
    // `vaxcred serve` exits when any task dies, so production always takes the connection down.)
    let vhost = Vhost::create().await;
    let (mut p, db, ehr) = start(Backend::Sqlite, Some(vhost.url()), None).await;
    let (messages, expected) = scenario(&p, &Mix::SMALL);
    p.publish(messages).await;
    p.wait_processed(10).await;
    p.abort_ingest().await;
    let generation = p.bus.connection_generation();
    vhost.close_connections().await;
    wait_until("reconnected", || async {
        p.bus.connection_generation() > generation && p.bus.is_ready()
    })
    .await;
    p.spawn_ingest(2);
    assert_accounting(&p, &expected).await;
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
    vhost.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_database_going_away() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let (p, db, ehr) = start(Backend::Postgres, None, Some(proxy.postgres_url())).await;
    let (messages, expected) = scenario(&p, &Mix::SMALL);
    p.publish(messages).await;
    p.wait_processed(10).await;
    // Down until the pipeline has tried (and failed) to reconnect a few times.
    proxy.set_down(true);
    wait_until("the outage noticed", || async { proxy.refused() >= 5 }).await;
    proxy.set_down(false);
    assert_accounting(&p, &expected).await;
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_sqlite_locked_by_another_process() {
    // SQLite's outage: another process (a backup, an operator's shell) holds the write lock.
    // Writers wait `busy_timeout`, then fail with SQLITE_BUSY; ingest and the issue worker must
    // retry through the retry queues for as long as it lasts, and lose nothing.
    use sqlx::Connection;
    let (p, db, ehr) = start(Backend::Sqlite, None, None).await;
    let (messages, expected) = scenario(&p, &Mix::SMALL);
    let file = db.sqlite_file().unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    p.publish(messages).await;
    p.wait_processed(10).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    // Held until messages wait in a retry queue past the first delay: the pipeline met the
    // lock at least twice in a row (outage retries then stay at the last delay while it lasts).
    let t = p.bus.topology().clone();
    let later: Vec<String> = t.retry_delays()[1..]
        .iter()
        .map(|d| t.retry_queue("ingest", *d))
        .collect();
    wait_until("retries during the lock", || async {
        for q in &later {
            if p.bus.message_count(q).await.unwrap() > 0 {
                return true;
            }
        }
        false
    })
    .await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert_accounting(&p, &expected).await;
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_while_the_ehr_answers_503() {
    let (p, db, ehr) = start(Backend::Sqlite, None, None).await;
    ehr.fail_next(6);
    let t = p.bus.topology();
    let mut messages = Vec::new();
    let mut expected = Expected::default();
    for i in 0..10 {
        let id = format!("r{i}");
        messages.push(message(
            t,
            fhir::needs_fetch(&id),
            Some(&format!("r-{i}")),
            Some(EHR_SOURCE),
        ));
        expected.patients.insert((MRN.into(), id), 1);
    }
    expected.processed = 10;
    p.publish(messages).await;
    assert_accounting(&p, &expected).await;
    assert_eq!(
        ehr.state
            .failures_served
            .load(std::sync::atomic::Ordering::SeqCst),
        6
    );
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_with_one_bad_patient_issues_the_others() {
    // Issue jobs travel in packs. A patient whose stored data cannot make a card (here: a
    // name removed by hand) must end in the DLQ alone, as a job of its own with the reason,
    // while the pack's other patients get their cards.
    use sqlx::Connection;
    let (p, db, ehr) = start(Backend::Sqlite, None, None).await;
    let t = p.bus.topology().clone();
    let mut expected = Expected::default();
    let mut messages = Vec::new();
    for mrn in ["GOOD", "BAD"] {
        messages.push(message(
            &t,
            fhir::dose(mrn, 1, 1, "A1001"),
            Some(&format!("pk-{mrn}")),
            None,
        ));
        expected.patients.insert((MRN.into(), mrn.into()), 1);
    }
    expected.processed = 2;
    p.publish(messages).await;
    assert_accounting(&p, &expected).await;

    let good = p
        .store
        .find_patient_by_identifier(&p.issuer_id, MRN, "GOOD")
        .await
        .unwrap()
        .unwrap();
    let bad = p
        .store
        .find_patient_by_identifier(&p.issuer_id, MRN, "BAD")
        .await
        .unwrap()
        .unwrap();
    // Both need a new card; one of them cannot have one.
    let file = db.sqlite_file().unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE patients SET doses_version = doses_version + 1 WHERE id IN ($1, $2)")
        .bind(&good.id)
        .bind(&bad.id)
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE patients SET identity = '{}' WHERE id = $1")
        .bind(&bad.id)
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    let pack = serde_json::json!({ "jobs": [
        { "patient_id": good.id, "doses_version": good.doses_version + 1 },
        { "patient_id": bad.id, "doses_version": bad.doses_version + 1 },
    ]});
    p.bus
        .publisher()
        .publish(
            &bus::Outgoing::to_queue(t.queue("issue"), serde_json::to_vec(&pack).unwrap())
                .message_id("test-pack"),
        )
        .await
        .unwrap();

    wait_until("the bad patient's job dead-lettered", || async {
        p.bus.message_count(&t.dlq()).await.unwrap() >= 1
    })
    .await;
    let letters = p.bus.dlq_list(10).await.unwrap();
    assert_eq!(letters.len(), 1, "only the bad patient");
    let letter = &letters[0];
    assert_eq!(letter.error_code.as_deref(), Some("patient-name-missing"));
    let job: store::IssueJob = serde_json::from_slice(&letter.body).unwrap();
    assert_eq!(job.patient_id, bad.id);
    wait_until("the good patient's new card", || async {
        p.store
            .list_credentials(&good.id)
            .await
            .unwrap()
            .iter()
            .any(|c| {
                c.status == store::CredentialStatus::Active
                    && c.doses_version == good.doses_version + 1
            })
    })
    .await;
    p.stop().await;
    ehr.stop().await;
    db.cleanup().await;
}
