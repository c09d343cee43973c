//! Fixtures: a store per test, a seeded patient and credential (the SHC spec's example card),
//! the delivery app on 127.0.0.1:0, a recording receiver server, bounded polling.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use delivery::{DeliverySettings, DeliveryState};
use store::{
    ApplyEvent, ApplyOutcome, CredentialFormat, CredentialStatus, DoseStatus, Identifier,
    IncomingEvent, NewCredential, NewDose, NewIssuer, PatientIdentity, Recorded, Store,
    StoreCredentialOutcome,
};

/// Liveness bound for any wait.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub fn conformance() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance"
    ));
    assert!(
        dir.is_dir(),
        "conformance vectors missing at {}",
        dir.display()
    );
    dir
}

/// The SHC spec's example JWS (patient John B. Anyperson, two doses).
pub fn example_jws() -> String {
    std::fs::read_to_string(conformance().join("shc-examples/spec-site/example-00-d-jws.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

pub use testkit::TestDb;

fn unique(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{kind}_{}_{t}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A patient with one dose and an active credential holding the example JWS.
pub struct Seeded {
    pub issuer_id: String,
    pub patient_id: String,
    pub credential_id: String,
}

pub async fn seed(store: &Store) -> Seeded {
    let issuer_id = store
        .create_issuer(&NewIssuer {
            iss: "https://spec.smarthealth.cards/examples/issuer".to_owned(),
            slug: "ex".to_owned(),
            display_name: "Example issuer".to_owned(),
        })
        .await
        .unwrap()
        .id;
    let patient_id = new_version(store, &issuer_id, 1).await;
    let credential_id = store_card(store, &issuer_id, &patient_id, 1, &example_jws()).await;
    Seeded {
        issuer_id,
        patient_id,
        credential_id,
    }
}

/// Applies a dose change (version `v`) for the test patient; returns the patient id.
pub async fn new_version(store: &Store, issuer_id: &str, v: i64) -> String {
    let recorded = store
        .record_events(&[IncomingEvent {
            message_id: Some(unique("msg")),
            content_hash: unique("hash"),
            source: Some("ehr".to_owned()),
        }])
        .await
        .unwrap();
    let Recorded::New { event_id } = recorded.into_iter().next().unwrap() else {
        panic!("expected a new event")
    };
    let outcome = store
        .apply_event(&ApplyEvent {
            event_id,
            issuer_id: issuer_id.to_owned(),
            identifiers: vec![Identifier {
                system: "urn:mrn".to_owned(),
                value: "MRN-1".to_owned(),
            }],
            identity: Some(PatientIdentity {
                family: Some("Anyperson".to_owned()),
                given: vec!["John".to_owned(), "B.".to_owned()],
                text: None,
                birth_date: Some("1951-01-20".to_owned()),
                telecom: vec![],
            }),
            doses: vec![NewDose {
                source_system: "https://ehr.example.org/fhir".to_owned(),
                source_id: format!("imm-{v}"),
                version: 1,
                status: DoseStatus::Completed,
                vaccine_system: "http://hl7.org/fhir/sid/cvx".to_owned(),
                vaccine_code: "207".to_owned(),
                occurrence: Some("2021-01-01".to_owned()),
                lot_number: Some("0000001".to_owned()),
                performer: Some("ABC General Hospital".to_owned()),
                is_subpotent: false,
                disease: "covid-19".to_owned(),
            }],
        })
        .await
        .unwrap();
    let ApplyOutcome::Applied { patient_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    patient_id
}

pub async fn store_card(
    store: &Store,
    issuer_id: &str,
    patient_id: &str,
    v: i64,
    jws: &str,
) -> String {
    let r = store
        .store_credential(&NewCredential {
            issuer_id: issuer_id.to_owned(),
            patient_id: patient_id.to_owned(),
            disease: "covid-19".to_owned(),
            doses_version: v,
            format: CredentialFormat::Shc,
            artefact: jws.to_owned(),
            kid: "kid-1".to_owned(),
            rid: None,
            nbf: 1_600_000_000,
            exp: None,
            status: CredentialStatus::Active,
        })
        .await
        .unwrap();
    let StoreCredentialOutcome::Stored { credential_id, .. } = r else {
        panic!("{r:?}")
    };
    credential_id
}

/// Settings for tests: admin token, loopback allowlisted, millisecond schedules, cheap Argon2.
pub fn settings(base: &str) -> DeliverySettings {
    let mut s = DeliverySettings::new(base);
    s.admin_tokens = vec![ADMIN_TOKEN.to_owned().into()];
    s.outbound_allowlist = vec!["127.0.0.1".to_owned()];
    s.request_timeout = Duration::from_millis(700);
    s.wallet_retry = delivery::backoff::RetrySchedule::new(vec![
        Duration::from_millis(300),
        Duration::from_millis(600),
    ]);
    s.sms_retry = delivery::backoff::RetrySchedule::new(vec![Duration::from_millis(200)]);
    s.poll_interval = Duration::from_millis(50);
    s.passcode_cost = (1024, 1, 1);
    s
}

/// The delivery app on 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub state: DeliveryState,
    pub metrics: platform::Metrics,
    pub http: reqwest::Client,
    _server: actix_web::dev::ServerHandle,
}

pub async fn spawn_app(store: Store, tweak: impl FnOnce(&mut DeliverySettings)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut s = settings(&base);
    tweak(&mut s);
    let metrics = platform::Metrics::new().unwrap();
    let state = DeliveryState::new(store, s)
        .unwrap()
        .with_metrics(metrics.clone());
    let configure = delivery::configure(state.clone());
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    delivery::outbound::ensure_crypto_provider();
    TestApp {
        base,
        state,
        metrics,
        http: reqwest::Client::new(),
        _server: handle,
    }
}

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a receiver answers: status, delay before answering, optional headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: String::new(),
        }
    }
    pub fn delayed(status: u16, delay: Duration) -> Reply {
        Reply {
            delay,
            ..Reply::status(status)
        }
    }
}

/// An in-process HTTP server on 127.0.0.1 that records every request and answers from a script
/// (the last reply repeats).
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: actix_web::dev::ServerHandle,
}

struct Script {
    seen: Arc<Mutex<Vec<Seen>>>,
    replies: Mutex<Vec<Reply>>,
}

async fn record(req: HttpRequest, body: web::Bytes, script: web::Data<Script>) -> HttpResponse {
    let reply = {
        let seen_n = {
            let mut seen = script.seen.lock().unwrap();
            seen.push(Seen {
                path: req.uri().to_string(),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
                body: body.to_vec(),
                at: std::time::Instant::now(),
            });
            seen.len()
        };
        let replies = script.replies.lock().unwrap();
        replies
            .get(seen_n - 1)
            .or(replies.last())
            .cloned()
            .unwrap_or(Reply::status(200))
    };
    if !reply.delay.is_zero() {
        // The receiver is being slow on purpose (the behaviour under test), not a test wait.
        tokio::time::sleep(reply.delay).await;
    }
    let mut b = HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        b.insert_header((k.as_str(), v.as_str()));
    }
    b.content_type("application/json").body(reply.body)
}

pub async fn receiver(replies: Vec<Reply>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = web::Data::new(Script {
        seen: seen.clone(),
        replies: Mutex::new(replies),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(script.clone())
            .default_service(web::to(record))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        base: format!("http://127.0.0.1:{port}"),
        port,
        seen,
        _server: handle,
    }
}

impl Receiver {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Polls `check` every 25 ms until it returns `Some`; panics after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
