//! Telemetry carries ids only (DESIGN.md §8, issue 10): the real pipeline (ingest with a Patient
//! fetched from the EHR with a bearer token, the issue worker, the relay) runs under an in-memory
//! OpenTelemetry span exporter and a captured JSON log writer; no span or log line may carry a
//! patient name, birth date, phone, email, card JWS or token from the test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;
use vaxcred_tests::ehr::{Ehr, TOKEN};
use vaxcred_tests::fhir::{self, MRN};
use vaxcred_tests::{
    bus_config, message, random_name, wait_until, Backend, Pipeline, TestDb, EHR_SOURCE,
};

const FAMILY: &str = "Zqxcanaryfam";
const GIVEN: &str = "Wvcanarygiv";
const BIRTH: &str = "1933-03-17";
const PHONE: &str = "+15550134477";
const EMAIL: &str = "canary.person@example.invalid";
/// Birth date of the Patients the fake EHR serves for fetches.
const FETCHED_BIRTH: &str = "1980-01-15";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn canary_bundle(mrn: &str, code: &str) -> Vec<u8> {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000a1", "resource": {
                "resourceType": "Patient",
                "identifier": [{ "system": MRN, "value": mrn }],
                "name": [{ "family": FAMILY, "given": [GIVEN] }],
                "birthDate": BIRTH,
                "telecom": [{ "system": "phone", "value": PHONE }, { "system": "email", "value": EMAIL }]
            }},
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000a2", "resource": {
                "resourceType": "Immunization",
                "identifier": [{ "system": fhir::IMM, "value": format!("{mrn}-{code}") }],
                "status": "completed",
                "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": code }] },
                "patient": { "reference": "urn:uuid:00000000-0000-4000-8000-0000000000a1" },
                "occurrenceDateTime": "2021-04-01",
                "lotNumber": "CANARYLOT1"
            }}
        ]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_carries_no_patient_data() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let logs = Captured::default();
    // The levels a deployment runs at, with vaxcred's own crates at their most verbose.
    let filter = tracing_subscriber::EnvFilter::new(
        "info,ingest=trace,issuer=trace,delivery=trace,store=trace,bus=trace,model=trace,shc=trace,platform=trace",
    );
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("no-phi")))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(logs.clone()),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let db = TestDb::new(Backend::Sqlite, None).await;
    let prefix = random_name("phi");
    let bus = bus::Bus::connect(bus_config(&prefix, None)).await.unwrap();
    let ehr = Ehr::start().await;
    let p = Pipeline::start(
        db.store.clone(),
        db.dir.path().to_path_buf(),
        bus.clone(),
        Some(&ehr),
    )
    .await;
    let t = p.bus.topology().clone();
    p.publish(vec![
        message(&t, canary_bundle("PHI-1", "207"), Some("phi-ok"), None),
        message(
            &t,
            canary_bundle("PHI-2", "999"),
            Some("phi-unknown-code"),
            None,
        ),
        message(
            &t,
            fhir::needs_fetch("phifetch"),
            Some("phi-fetch"),
            Some(EHR_SOURCE),
        ),
    ])
    .await;
    wait_until("3 events settled", || async {
        let e = p.events().await;
        e.get(&store::EventStatus::Processed).copied().unwrap_or(0)
            + e.get(&store::EventStatus::Rejected).copied().unwrap_or(0)
            == 3
    })
    .await;
    let patient = p
        .store
        .find_patient_by_identifier(&p.issuer_id, MRN, "PHI-1")
        .await
        .unwrap()
        .unwrap();
    wait_until("the canary patient's card", || async {
        !p.store
            .list_credentials(&patient.id)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let jws: Vec<String> = p
        .store
        .list_credentials(&patient.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.artefact)
        .collect();
    assert!(
        ehr.state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1,
        "the fetch path ran"
    );
    p.stop().await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let mut span_text = String::new();
    for s in &spans {
        span_text.push_str(&format!("{}\n", s.name));
        for kv in &s.attributes {
            span_text.push_str(&format!("{}={}\n", kv.key, kv.value));
        }
        for e in s.events.iter() {
            span_text.push_str(&format!("{}\n", e.name));
            for kv in &e.attributes {
                span_text.push_str(&format!("{}={}\n", kv.key, kv.value));
            }
        }
    }
    let log_text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        !spans.is_empty(),
        "the pipeline produced no spans: the test would prove nothing"
    );
    assert!(
        log_text.lines().count() > 0,
        "the pipeline logged nothing: the test would prove nothing"
    );
    let mut canaries: Vec<String> = [
        FAMILY,
        GIVEN,
        BIRTH,
        PHONE,
        "5550134477",
        EMAIL,
        FETCHED_BIRTH,
        TOKEN,
        "CANARYLOT1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A card, or any 40-character piece of one.
    for j in &jws {
        canaries.push(j.clone());
        canaries.extend(
            j.split('.')
                .map(|part| part.chars().take(40).collect::<String>()),
        );
    }
    for c in &canaries {
        assert!(
            !span_text.contains(c.as_str()),
            "a span carries test PHI/secret {c:?}"
        );
        assert!(
            !log_text.contains(c.as_str()),
            "a log line carries test PHI/secret {c:?}"
        );
    }
    println!(
        "checked {} spans and {} log lines for {} canaries",
        spans.len(),
        log_text.lines().count(),
        canaries.len()
    );
    // `stop` closed the pipeline's bus; a fresh connection removes the test's queues.
    let cleanup = bus::Bus::connect(bus_config(&prefix, None)).await.unwrap();
    cleanup.delete_topology().await.unwrap();
    cleanup.close().await;
    ehr.stop().await;
    db.cleanup().await;
}
