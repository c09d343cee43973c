//! Test fixtures: a store per test (SQLite temp file, or PostgreSQL with its own schema), the
//! issuer HTTP surface on a random port, patients with doses, cards signed like the worker does,
//! and a verifier fed from what the server serves.

use std::sync::Arc;

use issuer::http::{self, HttpSettings, HttpState};
use issuer::keys::ManagedKeys;
use issuer::keystore::{FileKeyStore, KeyStore};
use store::{
    ApplyEvent, ApplyOutcome, CredentialFormat, CredentialStatus, DoseStatus, Identifier,
    IncomingEvent, Issuer, NewCredential, NewDose, PatientIdentity, Recorded, Store,
    StoreCredentialOutcome,
};

pub const ADMIN: &str = "admin-token-for-tests-0123456789";
pub const PATIENT_SECRET: &[u8] = b"patient-token-secret-for-tests-0123456789";
pub const RID_SECRET: &str = "rid-secret-for-tests";
/// The public base URL: an https `iss` a verifier accepts; the tests reach the server on
/// 127.0.0.1 (verification is fed the fetched documents, so no DNS is needed).
pub const PUBLIC: &str = "https://vax.example.test";
pub const NAME_FAMILY: &str = "Exämple";
pub const NAME_GIVEN: &str = "Maria José";

pub use testkit::TestDb;

pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        t,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs an async test body on SQLite and on PostgreSQL.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::helpers::TestDb::sqlite().await;
                super::$name(db.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = crate::helpers::TestDb::postgres().await;
                super::$name(db.store.clone()).await;
            }
        }
    };
}
pub(crate) use both;

pub struct TestApp {
    /// Where the server listens (`http://127.0.0.1:PORT`).
    pub addr: String,
    pub store: Store,
    pub keys: ManagedKeys,
    pub issuer: Issuer,
    pub client: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

/// Starts the issuer HTTP surface on a random port over `keys` (a file key store in a temp dir
/// when `None`).
pub async fn spawn_with(store: Store, keys: Option<ManagedKeys>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let addr = format!("http://127.0.0.1:{port}");
    let public = PUBLIC.to_owned();
    let issuer = issuer::issuers::ensure_default_issuer(&store, &public, "Test General Hospital")
        .await
        .unwrap();
    let keys = match keys {
        Some(k) => k,
        None => ManagedKeys::File(Arc::new(
            FileKeyStore::open(dir.path(), &store, std::slice::from_ref(&issuer))
                .await
                .unwrap(),
        )),
    };
    http::check_issuers(&store, &public, false).await.unwrap();
    let state = HttpState::new(
        store.clone(),
        keys.clone(),
        HttpSettings {
            public_base_url: public.clone(),
            admin_tokens: vec![ADMIN.to_owned()],
            patient_token_secret: Some(PATIENT_SECRET.to_vec()),
            revocation: true,
            allow_insecure_iss: false,
        },
    );
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(http::configure(state.clone()))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    TestApp {
        addr,
        store,
        keys,
        issuer,
        client: {
            platform::tls::ensure_crypto_provider();
            reqwest::Client::new()
        },
        _dir: dir,
    }
}

pub async fn spawn(store: Store) -> TestApp {
    spawn_with(store, None).await
}

pub fn identity() -> PatientIdentity {
    PatientIdentity {
        family: Some(NAME_FAMILY.to_owned()),
        given: NAME_GIVEN.split(' ').map(str::to_owned).collect(),
        text: None,
        birth_date: Some("1961-07-14".to_owned()),
        telecom: vec![],
    }
}

/// The two doses every test patient gets.
pub const DOSES: [(&str, &str, &str); 2] = [
    ("2021-01-01", "LOT-A1", "ABC General Hospital"),
    ("2021-01-29", "LOT-B2", "Main Street Pharmacy"),
];

/// Stores a patient of `issuer_id` with [`DOSES`]; returns the patient id.
pub async fn patient(store: &Store, issuer_id: &str) -> String {
    let mid = format!("msg-{}", unique());
    let recorded = store
        .record_events(&[IncomingEvent {
            message_id: Some(mid.clone()),
            content_hash: format!("hash-{mid}"),
            source: Some("ehr".to_owned()),
        }])
        .await
        .unwrap();
    let Some(Recorded::New { event_id }) = recorded.into_iter().next() else {
        panic!("event not new");
    };
    let doses = DOSES
        .iter()
        .enumerate()
        .map(|(i, (date, lot, performer))| NewDose {
            source_system: "https://ehr.example.org/fhir".to_owned(),
            source_id: format!("imm-{mid}-{i}"),
            version: 1,
            status: DoseStatus::Completed,
            vaccine_system: model::CVX.to_owned(),
            vaccine_code: "207".to_owned(),
            occurrence: Some((*date).to_owned()),
            lot_number: Some((*lot).to_owned()),
            performer: Some((*performer).to_owned()),
            is_subpotent: false,
            disease: "covid-19".to_owned(),
        })
        .collect();
    let out = store
        .apply_event(&ApplyEvent {
            event_id,
            issuer_id: issuer_id.to_owned(),
            identifiers: vec![Identifier {
                system: "urn:mrn".to_owned(),
                value: mid,
            }],
            identity: Some(identity()),
            doses,
        })
        .await
        .unwrap();
    match out {
        ApplyOutcome::Applied { patient_id, .. } => patient_id,
        other => panic!("not applied: {other:?}"),
    }
}

/// Signs and stores the patient's card the way the issue worker does (current snapshot, active
/// key, `rid` from the patient id); returns the credential id.
pub async fn issue_card(
    store: &Store,
    keys: &dyn KeyStore,
    issuer: &Issuer,
    patient_id: &str,
) -> String {
    let snap = store.issue_snapshot(patient_id).await.unwrap().unwrap();
    let name = model::HumanName::Parts {
        family: NAME_FAMILY.to_owned(),
        given: NAME_GIVEN.split(' ').map(str::to_owned).collect(),
        suffix: vec![],
    };
    let patient = model::Patient::new(name, model::FhirDate::parse("1961-07-14").unwrap());
    let doses: Vec<model::Dose> = snap
        .doses
        .iter()
        .map(|d| model::Dose {
            source: model::SourceKey {
                system: d.source_system.clone(),
                id: d.source_id.clone(),
            },
            version: model::SourceVersion::default(),
            vaccine: model::VaccineCode {
                system: d.vaccine_system.clone(),
                code: d.vaccine_code.clone(),
            },
            disease: d.disease.clone(),
            occurrence: model::FhirDate::parse(d.occurrence.as_deref().unwrap()).unwrap(),
            lot_number: d.lot_number.clone(),
            performer: d.performer.clone(),
            is_subpotent: false,
            ial: None,
        })
        .collect();
    let bundle = model::card_bundle(&patient, &doses, &model::CardOptions::default()).unwrap();
    let signer = keys.active_signer(&issuer.id).unwrap();
    let kid = signer.kid().to_owned();
    let mut card_issuer = shc::CardIssuer::new(signer);
    let mut claims = shc::Claims::new(issuer.iss.clone());
    claims.rid = Some(shc::rid::derive(RID_SECRET, &kid, patient_id));
    let nbf = claims.nbf.as_f64() as i64;
    let card = card_issuer.issue_minimized(&bundle, &claims).unwrap();
    let out = store
        .store_credential(&NewCredential {
            issuer_id: issuer.id.clone(),
            patient_id: patient_id.to_owned(),
            disease: "covid-19".to_owned(),
            doses_version: snap.patient.doses_version,
            format: CredentialFormat::Shc,
            artefact: card.jws,
            kid,
            rid: claims.rid.clone(),
            nbf,
            exp: None,
            status: CredentialStatus::Active,
        })
        .await
        .unwrap();
    match out {
        StoreCredentialOutcome::Stored { credential_id, .. } => credential_id,
        other => panic!("not stored: {other:?}"),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_authed(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
    }

    /// A verifier trusting what the server serves for the issuer at `base` (`""` or
    /// `/issuers/{slug}`) under `iss`: its JWKS and the CRL of every key announcing one.
    pub async fn verifier(&self, base: &str, iss: &str) -> shc::Verifier {
        let jwks = self
            .get_json(&format!("{base}/.well-known/jwks.json"))
            .await;
        let mut trust = shc::TrustStore::new();
        trust.add_issuer(iss, shc::Jwks::parse(&jwks.to_string()).unwrap());
        for key in jwks["keys"].as_array().unwrap() {
            if key.get("crlVersion").is_some() {
                let kid = key["kid"].as_str().unwrap();
                let crl = self
                    .get_json(&format!("{base}/.well-known/crl/{kid}.json"))
                    .await;
                trust.add_crl(&crl).unwrap();
            }
        }
        shc::Verifier::new(trust)
    }

    /// The `.smart-health-card` file of a credential, as served.
    pub async fn card_file(&self, base: &str, credential_id: &str) -> String {
        let r = self
            .get_authed(&format!(
                "{base}/credentials/{credential_id}.smart-health-card"
            ))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/smart-health-card"
        );
        r.text().await.unwrap()
    }
}
