//! A fake EHR on 127.0.0.1:0 speaking the real wire format: a SMART Backend Services token
//! endpoint (checks the form, the ES384 client assertion's signature and claims) and FHIR
//! `GET /fhir/Patient/{id}` (bearer token required). `fail_next(n)` makes the next n Patient
//! reads answer 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature, VerifyingKey};

/// The client id the fake EHR knows.
pub const CLIENT_ID: &str = "vaxcred-test";
/// The access token it hands out.
pub const TOKEN: &str = "test-access-token";

/// Counters and switches.
#[derive(Default)]
pub struct EhrState {
    /// Token requests answered 200.
    pub tokens_issued: AtomicUsize,
    /// Patient reads answered 200.
    pub patients_served: AtomicUsize,
    /// Patient reads answered 503.
    pub failures_served: AtomicUsize,
    fail_next: AtomicUsize,
}

/// The running fake EHR.
pub struct Ehr {
    /// Its address.
    pub port: u16,
    /// Counters.
    pub state: Arc<EhrState>,
    private_jwk: String,
    handle: actix_web::dev::ServerHandle,
}

struct Shared {
    state: Arc<EhrState>,
    key: VerifyingKey,
    token_url: String,
}

impl Ehr {
    /// Starts it with a fresh client key pair.
    pub async fn start() -> Ehr {
        let secret = p384::SecretKey::random(&mut rand_core::OsRng);
        let private_jwk = secret.to_jwk_string().to_string();
        let key = VerifyingKey::from(&p384::ecdsa::SigningKey::from(&secret));
        let state = Arc::new(EhrState::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = web::Data::new(Shared {
            state: state.clone(),
            key,
            token_url: format!("http://127.0.0.1:{port}/token"),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/token", web::post().to(token))
                .route("/fhir/Patient/{id}", web::get().to(patient))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ehr {
            port,
            state,
            private_jwk,
            handle,
        }
    }

    /// FHIR base URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir", self.port)
    }

    /// The next `n` Patient reads answer 503.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Ingest's source configuration for this EHR.
    pub fn source_config(&self, issuer_id: &str) -> ingest::SourceConfig {
        ingest::SourceConfig {
            name: crate::EHR_SOURCE.to_owned(),
            issuer_id: issuer_id.to_owned(),
            fhir_base_url: Some(self.base()),
            smart: Some(ingest::config::SmartConfig {
                token_url: format!("http://127.0.0.1:{}/token", self.port),
                client_id: CLIENT_ID.to_owned(),
                scope: "system/Patient.read".to_owned(),
                private_jwk: self.private_jwk.clone(),
                kid: "test-kid".to_owned(),
            }),
        }
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn check_assertion(shared: &Shared, jwt: &str) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(s) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    if shared
        .key
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .is_err()
    {
        return false;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap_or_default()).unwrap_or_default();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap_or_default()).unwrap_or_default();
    header["alg"] == "ES384"
        && claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && claims["aud"] == shared.token_url.as_str()
        && claims["jti"].is_string()
        && claims["exp"].is_number()
}

async fn token(shared: web::Data<Shared>, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let ok = get("grant_type") == Some("client_credentials")
        && get("client_assertion_type") == Some(ingest::smart::ASSERTION_TYPE)
        && get("scope").is_some()
        && get("client_assertion").is_some_and(|a| check_assertion(&shared, a));
    if !ok {
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": "invalid_client" }));
    }
    shared.state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": TOKEN, "token_type": "bearer", "expires_in": 300, "scope": "system/Patient.read"
    }))
}

async fn patient(
    shared: web::Data<Shared>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return HttpResponse::Unauthorized().finish();
    }
    let failing = shared
        .state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        shared.state.failures_served.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::ServiceUnavailable().finish();
    }
    shared.state.patients_served.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(crate::fhir::patient_resource(&id, &id))
}
