//! A mock EHR for the tests, speaking the real wire formats: `.well-known/smart-configuration`,
//! an authorization endpoint that shows a consent page and then redirects with `code` and `state`,
//! a token endpoint that checks the PKCE verifier (S256), the redirect URI and — for confidential
//! clients — the ES384 client assertion against the app's published JWKS (fetched from the app,
//! as a real EHR does), and FHIR `Patient` read and `Immunization` search with bearer tokens.
//! A switch makes every endpoint answer 503.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "vaxcred-test-app";
pub const PATIENT_ID: &str = "pat-1";
pub const FHIR_USER: &str = "Practitioner/nurse-7";
pub const LAUNCH_ID: &str = "launch-abc";

#[derive(Clone)]
struct PendingCode {
    challenge: String,
    redirect_uri: String,
    scope: String,
}

#[derive(Default)]
pub struct EhrState {
    pub base: String,
    /// Consent tickets: ticket → (redirect_uri, state, pending code).
    tickets: Mutex<HashMap<String, (String, String, PendingCode)>>,
    codes: Mutex<HashMap<String, PendingCode>>,
    /// access token → expiry (unix secs).
    access: Mutex<HashMap<String, u64>>,
    refresh: Mutex<HashMap<String, ()>>,
    pub unavailable: AtomicBool,
    /// Only v1 scopes in the SMART configuration.
    pub v1_only: AtomicBool,
    /// `expires_in` of new access tokens.
    pub expires_in: AtomicU64,
    /// Public client mode: expect `client_id`, no assertion.
    pub public_client: AtomicBool,
    /// The app's JWKS URL (confidential client).
    pub jwks_url: Mutex<Option<String>>,
    pub discovery_hits: AtomicUsize,
    pub code_grants: AtomicUsize,
    pub refresh_grants: AtomicUsize,
    pub token_failures: Mutex<Vec<String>>,
    pub last_authorize: Mutex<HashMap<String, String>>,
    pub immunizations: Mutex<Vec<Value>>,
    pub patient: Mutex<Value>,
    counter: AtomicUsize,
}

impl EhrState {
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.base)
    }

    fn next(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            self.counter.fetch_add(1, Ordering::SeqCst),
            launch::crypto::random_token()
        )
    }

    /// Makes every issued access token expired (the next FHIR read gets 401).
    pub fn expire_access_tokens(&self) {
        for v in self.access.lock().unwrap().values_mut() {
            *v = 0;
        }
    }

    fn token_ok(&self, req: &HttpRequest) -> bool {
        let Some(auth) = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
        else {
            return false;
        };
        let Some(token) = auth.strip_prefix("Bearer ") else {
            return false;
        };
        self.access
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|exp| *exp > now())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct MockEhr {
    pub state: Arc<EhrState>,
}

impl MockEhr {
    pub async fn start() -> MockEhr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(EhrState {
            base,
            ..EhrState::default()
        });
        state.expires_in.store(3600, Ordering::SeqCst);
        *state.patient.lock().unwrap() = default_patient();
        *state.immunizations.lock().unwrap() = default_immunizations();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/fhir/.well-known/smart-configuration",
                    web::get().to(smart_config),
                )
                .route("/auth/authorize", web::get().to(authorize))
                .route("/auth/approve", web::get().to(approve))
                .route("/auth/token", web::post().to(token))
                .route("/fhir/Patient/{id}", web::get().to(patient))
                .route("/fhir/Immunization", web::get().to(immunizations))
                .route("/other-jwks.json", web::get().to(other_jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        MockEhr { state }
    }
}

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "30"))
        .finish()
}

async fn smart_config(s: web::Data<EhrState>) -> HttpResponse {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if s.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    let scopes: Vec<&str> = if s.v1_only.load(Ordering::SeqCst) {
        vec![
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "patient/*.read",
            "patient/Patient.read",
            "patient/Immunization.read",
            "offline_access",
        ]
    } else {
        vec![
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "patient/*.rs",
            "patient/Patient.rs",
            "patient/Immunization.rs",
            "offline_access",
        ]
    };
    HttpResponse::Ok().json(json!({
        "issuer": s.base,
        "authorization_endpoint": format!("{}/auth/authorize", s.base),
        "token_endpoint": format!("{}/auth/token", s.base),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["launch-ehr", "launch-standalone", "client-public", "client-confidential-asymmetric",
                          "context-ehr-patient", "context-standalone-patient", "sso-openid-connect",
                          "permission-patient", "permission-v1", "permission-v2"],
    }))
}

fn bad(text: &str) -> HttpResponse {
    HttpResponse::BadRequest().body(text.to_owned())
}

async fn authorize(s: web::Data<EhrState>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if s.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    *s.last_authorize.lock().unwrap() = q.0.clone();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" || get("client_id") != CLIENT_ID {
        return bad("response_type/client_id");
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
        return bad("pkce");
    }
    if get("aud") != s.fhir_base() {
        return bad("aud");
    }
    let scope = get("scope");
    let standalone = scope.split(' ').any(|x| x == "launch/patient");
    if !standalone && get("launch") != LAUNCH_ID {
        return bad("launch");
    }
    let ticket = s.next("ticket");
    s.tickets.lock().unwrap().insert(
        ticket.clone(),
        (
            get("redirect_uri"),
            get("state"),
            PendingCode {
                challenge: get("code_challenge"),
                redirect_uri: get("redirect_uri"),
                scope,
            },
        ),
    );
    // A consent page, as EHRs show for a first launch.
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            r#"<!DOCTYPE html><html lang="en"><head><title>Mock EHR consent</title></head><body>
<h1>Allow vaxcred to read this patient's immunizations?</h1>
<a id="allow" href="/auth/approve?ticket={ticket}">Allow</a></body></html>"#
        ))
}

async fn approve(s: web::Data<EhrState>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    let Some((redirect_uri, state, pending)) = s.tickets.lock().unwrap().remove(&ticket) else {
        return bad("ticket");
    };
    let code = s.next("code");
    s.codes.lock().unwrap().insert(code.clone(), pending);
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

fn b64url_sha256(text: &str) -> String {
    launch::crypto::s256_challenge(text)
}

async fn token(s: web::Data<EhrState>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    if s.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    let fail = |why: &str| {
        s.token_failures.lock().unwrap().push(why.to_owned());
        HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "error_description": why}))
    };
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let token_url = format!("{}/auth/token", s.base);
    // Client authentication.
    if s.public_client.load(Ordering::SeqCst) {
        if get("client_id") != CLIENT_ID || form.contains_key("client_assertion") {
            return fail("public client auth");
        }
    } else {
        if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        {
            return fail("assertion type");
        }
        let jwks_url = s.jwks_url.lock().unwrap().clone().unwrap();
        let jwks: Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
        let jwk = jwks["keys"][0].clone();
        let Some(claims) = launch::crypto::verify_es384(&get("client_assertion"), &jwk) else {
            return fail("assertion signature");
        };
        if claims["iss"] != CLIENT_ID
            || claims["sub"] != CLIENT_ID
            || claims["aud"] != token_url.as_str()
        {
            return fail("assertion claims");
        }
        let exp = claims["exp"].as_u64().unwrap_or(0);
        if exp <= now() || exp > now() + 300 {
            return fail("assertion exp");
        }
    }
    let (scope, grant) = match get("grant_type").as_str() {
        "authorization_code" => {
            let Some(pending) = s.codes.lock().unwrap().remove(&get("code")) else {
                return fail("unknown code");
            };
            if pending.redirect_uri != get("redirect_uri") {
                return fail("redirect_uri");
            }
            if b64url_sha256(&get("code_verifier")) != pending.challenge {
                return fail("pkce verifier");
            }
            s.code_grants.fetch_add(1, Ordering::SeqCst);
            (pending.scope, "code")
        }
        "refresh_token" => {
            if s.refresh
                .lock()
                .unwrap()
                .remove(&get("refresh_token"))
                .is_none()
            {
                return fail("unknown refresh token");
            }
            s.refresh_grants.fetch_add(1, Ordering::SeqCst);
            (String::new(), "refresh")
        }
        _ => return fail("grant_type"),
    };
    let access = s.next("at");
    let refresh = s.next("rt");
    // `expires_in` is what code grants get (tests set it to 0); refreshed tokens last an hour.
    let expires_in = if grant == "code" {
        s.expires_in.load(Ordering::SeqCst)
    } else {
        3600
    };
    s.access
        .lock()
        .unwrap()
        .insert(access.clone(), now() + expires_in);
    s.refresh.lock().unwrap().insert(refresh.clone(), ());
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh,
    });
    if grant == "code" {
        body["scope"] = json!(scope);
        body["patient"] = json!(PATIENT_ID);
        body["fhirUser"] = json!(FHIR_USER);
        body["need_patient_banner"] = json!(false);
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

async fn patient(s: web::Data<EhrState>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if s.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    if !s.token_ok(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    if id.as_str() != PATIENT_ID {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(s.patient.lock().unwrap().clone())
}

async fn immunizations(
    s: web::Data<EhrState>,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if s.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    if !s.token_ok(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    let all: Vec<Value> = if q.get("patient").map(String::as_str) == Some(PATIENT_ID) {
        s.immunizations.lock().unwrap().clone()
    } else {
        Vec::new()
    };
    // Two pages when there are more than two, to exercise `next` links.
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let chunk: Vec<&Value> = all.iter().skip(page * 2).take(2).collect();
    let mut links = vec![
        json!({"relation": "self", "url": format!("{}/fhir/Immunization?patient={PATIENT_ID}", s.base)}),
    ];
    if all.len() > (page + 1) * 2 {
        links.push(json!({"relation": "next", "url": format!("{}/fhir/Immunization?patient={PATIENT_ID}&page={}", s.base, page + 1)}));
    }
    HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": all.len(),
            "link": links,
            "entry": chunk.iter().map(|r| json!({
                "fullUrl": format!("{}/fhir/Immunization/{}", s.base, r["id"].as_str().unwrap_or("")),
                "resource": r,
                "search": {"mode": "match"},
            })).collect::<Vec<_>>(),
        }))
}

/// A JWKS with somebody else's key: an EHR registered with it must refuse our assertions.
async fn other_jwks() -> HttpResponse {
    HttpResponse::Ok().json(launch::crypto::ClientKey::generate().jwks())
}

pub fn default_patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "meta": {"versionId": "3", "lastUpdated": "2024-01-02T10:00:00Z"},
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-12345"}],
        "name": [{"use": "official", "family": "Anyperson", "given": ["Johnny", "Q."]}],
        "telecom": [
            {"system": "phone", "value": "+1 617 555 0100", "use": "home"},
            {"system": "phone", "value": "+1 617 555 0199", "use": "mobile"}
        ],
        "gender": "male",
        "birthDate": "1951-01-20"
    })
}

pub fn immunization(
    id: &str,
    status: &str,
    cvx: &str,
    display: &str,
    date: &str,
    lot: Option<&str>,
) -> Value {
    let mut imm = json!({
        "resourceType": "Immunization",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": "2024-01-02T10:00:00Z"},
        "status": status,
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": cvx, "display": display}]},
        "patient": {"reference": format!("Patient/{PATIENT_ID}")},
        "occurrenceDateTime": date,
        "performer": [{"actor": {"display": "ABC General Hospital"}}],
    });
    if let Some(lot) = lot {
        imm["lotNumber"] = json!(lot);
    }
    imm
}

pub fn default_immunizations() -> Vec<Value> {
    vec![
        immunization(
            "imm-1",
            "completed",
            "207",
            "Moderna COVID-19 vaccine",
            "2021-01-01",
            Some("0000001"),
        ),
        immunization(
            "imm-2",
            "completed",
            "207",
            "Moderna COVID-19 vaccine",
            "2021-01-29",
            Some("0000007"),
        ),
        immunization(
            "imm-3",
            "not-done",
            "207",
            "Moderna COVID-19 vaccine",
            "2021-06-01",
            None,
        ),
        immunization(
            "imm-4",
            "completed",
            "213",
            "COVID-19 vaccine, unspecified formulation",
            "2021-09-01",
            None,
        ),
    ]
}
