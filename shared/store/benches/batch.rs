//! Throughput of the ingest hot path: `record_events` + `apply_events` in micro-batches, on
//! SQLite (temp file) and PostgreSQL (own schema in `DATABASE_URL` or the local `test` database).
//! Prints events/s and dose rows/s per backend. Knobs: `BENCH_EVENTS` (default 20000),
//! `BENCH_BATCH` (default 500). Run: `cargo bench -p store --bench batch`.

use std::time::Instant;

use store::{
    ApplyEvent, DoseStatus, Identifier, IncomingEvent, NewDose, NewIssuer, PatientIdentity,
    Recorded, Store, StoreOptions,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pg_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => u,
        _ => "postgres://postgres@127.0.0.1:5432/test".to_owned(),
    }
}

/// `n` events: patients with 4 doses each, one dose per event (the S1 shape).
fn events(n: usize) -> Vec<(IncomingEvent, ApplyEvent)> {
    (0..n)
        .map(|i| {
            let patient = i / 4;
            let incoming = IncomingEvent {
                message_id: Some(format!("ehr|imm-{i}|1")),
                content_hash: format!("{i:064x}"),
                source: Some("bench".to_owned()),
            };
            let apply = ApplyEvent {
                event_id: String::new(),
                issuer_id: String::new(),
                identifiers: vec![Identifier {
                    system: "urn:mrn".to_owned(),
                    value: format!("mrn-{patient}"),
                }],
                identity: Some(PatientIdentity {
                    family: Some("Bench".to_owned()),
                    given: vec!["Patient".to_owned()],
                    text: None,
                    birth_date: Some("1980-01-01".to_owned()),
                    telecom: vec![],
                }),
                doses: vec![NewDose {
                    source_system: "https://ehr.example.org/fhir".to_owned(),
                    source_id: format!("imm-{i}"),
                    version: 1,
                    status: DoseStatus::Completed,
                    vaccine_system: "http://hl7.org/fhir/sid/cvx".to_owned(),
                    vaccine_code: "207".to_owned(),
                    occurrence: Some("2021-01-01".to_owned()),
                    lot_number: Some("LOT".to_owned()),
                    performer: Some("Clinic".to_owned()),
                    is_subpotent: false,
                    disease: "covid-19".to_owned(),
                }],
            };
            (incoming, apply)
        })
        .collect()
}

async fn run(name: &str, store: &Store, n: usize, batch: usize) -> Result<(), BoxError> {
    let issuer = store
        .create_issuer(&NewIssuer {
            iss: "https://bench.example.org".to_owned(),
            slug: "bench".to_owned(),
            display_name: "Bench".to_owned(),
        })
        .await?
        .id;
    let data = events(n);
    let start = Instant::now();
    let mut apply_time = std::time::Duration::ZERO;
    for chunk in data.chunks(batch) {
        let incoming: Vec<IncomingEvent> = chunk.iter().map(|(i, _)| i.clone()).collect();
        let recorded = store.record_events(&incoming).await?;
        let mut applies = Vec::with_capacity(chunk.len());
        for ((_, a), r) in chunk.iter().zip(recorded) {
            if let Recorded::New { event_id } = r {
                let mut a = a.clone();
                a.event_id = event_id;
                a.issuer_id.clone_from(&issuer);
                applies.push(a);
            }
        }
        let t = Instant::now();
        store.apply_events(&applies).await?;
        apply_time += t.elapsed();
    }
    let total = start.elapsed().as_secs_f64();
    let apply = apply_time.as_secs_f64();
    println!(
        "{name:<10} events={n} batch={batch}: record+apply {:>8.0} events/s ({total:.2} s); \
         apply_events alone {:>8.0} events/s = dose rows/s ({apply:.2} s)",
        n as f64 / total,
        n as f64 / apply,
    );
    Ok(())
}

async fn bench() -> Result<(), BoxError> {
    let n = env_usize("BENCH_EVENTS", 20_000);
    let batch = env_usize("BENCH_BATCH", 500).max(1);

    let dir = tempfile::tempdir()?;
    let sqlite = Store::connect(None, dir.path()).await?;
    run("sqlite", &sqlite, n, batch).await?;
    sqlite.close().await;

    let schema = format!("store_bench_{}", std::process::id());
    let pg = Store::connect_with(
        Some(&pg_url()),
        dir.path(),
        StoreOptions {
            schema: Some(schema.clone()),
            ..StoreOptions::default()
        },
    )
    .await?;
    let result = run("postgres", &pg, n, batch).await;
    pg.close().await;
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&pg_url()).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut c)
            .await?;
    }
    result
}

fn main() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench())
}
