//! HTTP routes of the delivery service, mounted by [`configure`]:
//!
//! | route | auth | what |
//! | --- | --- | --- |
//! | `POST /shl/{id}` | link (+ passcode) | SHL manifest (O.79–O.84): 404 inactive/expired/locked, 401 `{"remainingAttempts": n}` |
//! | `GET /shl/{id}?recipient=…` | link | `U` links: the JWE itself (P.87) |
//! | `GET /shl/files/{token}` | token | a manifest `location`: the JWE, `application/jose`, valid ≤ 1 h |
//! | `GET /shl/view` (+ `/shl/view/{viewer.js,viewer.css,qrcode.js}`) | none | the viewer page; the `shlink:/` stays in the fragment |
//! | `POST /credentials/{id}/shl` | admin | create a link; body `{"passcode"?, "label"?, "direct_file"?, "phone"?}`; answers `{"shlink", "viewer_link", "flags", "exp", "sms"?}` |
//! | `GET /credentials/{id}/deliveries` | admin | delivery jobs of a credential with every attempt |
//! | `POST /patients/{id}/wallets` | admin | register a wallet endpoint; body `{"url"}`; answers `{"id", "secret"}` (the signing secret, shown once) |
//!
//! Admin routes take `Authorization: Bearer <token>` with one of `admin.tokens`. SHL routes send
//! `Access-Control-Allow-Origin: *` (receivers run in browsers) and `Cache-Control: no-store`.
//! Error bodies are `application/problem+json` without patient data; the manifest 401 body is
//! the spec's `{"remainingAttempts": n}`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use platform::http::Problem;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use store::NewWalletEndpoint;
use url::Url;

use crate::error::DeliveryError;
use crate::links::{self, LinkOptions, ManifestAnswer};
use crate::sms::E164;
use crate::state::DeliveryState;
use crate::viewer;
use crate::webhook::WebhookSecret;

/// Mounts every delivery route on an actix-web app.
pub fn configure(state: DeliveryState) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state.clone()))
            .route("/shl/view", web::get().to(viewer::page))
            .route("/shl/view/{asset}", web::get().to(viewer::asset))
            .route("/shl/files/{token}", web::get().to(file))
            .route("/shl/{id}", web::post().to(manifest))
            .route("/shl/{id}", web::get().to(direct))
            .route(
                "/shl/{id}",
                web::method(actix_web::http::Method::OPTIONS).to(preflight),
            )
            .route("/credentials/{id}/shl", web::post().to(create_link))
            .route("/credentials/{id}/deliveries", web::get().to(deliveries))
            .route("/patients/{id}/wallets", web::post().to(register_wallet));
    }
}

fn problem(e: DeliveryError) -> Problem {
    match &e {
        DeliveryError::BadPhone { reason } => {
            Problem::bad_request("phone-invalid", format!("phone number rejected: {reason}"))
        }
        DeliveryError::UrlRefused { .. }
        | DeliveryError::AddressRefused
        | DeliveryError::Resolve => {
            Problem::bad_request(e.code(), "the URL is not an allowed public https endpoint")
        }
        DeliveryError::SmsDisabled => Problem::bad_request("sms-disabled", "SMS is not configured"),
        DeliveryError::NotCurrent => Problem::new(
            actix_web::http::StatusCode::CONFLICT,
            "credential-not-current",
            "The credential is not the patient's current card",
        ),
        DeliveryError::Shl(shl::Error::InvalidField { .. } | shl::Error::LabelTooLong { .. }) => {
            Problem::bad_request(e.code(), "invalid link options")
        }
        DeliveryError::Store(s) if s.is_retryable() => Problem::unavailable(e.code()).with_cause(e),
        _ => Problem::internal(e),
    }
}

fn shl_headers(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

fn not_found() -> HttpResponse {
    shl_headers(HttpResponse::NotFound())
        .content_type("application/problem+json")
        .body(r#"{"type":"about:blank","title":"Not Found","status":404,"code":"shl-not-found"}"#)
}

async fn preflight() -> HttpResponse {
    shl_headers(HttpResponse::NoContent())
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}

#[tracing::instrument(skip_all)]
async fn manifest(
    state: web::Data<DeliveryState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let Ok(request) = shl::ManifestRequest::parse(&body) else {
        return Err(Problem::bad_request(
            "shl-invalid-request",
            "body must be JSON with a recipient",
        ));
    };
    match links::manifest(&state, &path, &request)
        .await
        .map_err(problem)?
    {
        ManifestAnswer::Ok(m) => Ok(shl_headers(HttpResponse::Ok()).json(m)),
        ManifestAnswer::WrongPasscode { remaining } => Ok(
            shl_headers(HttpResponse::Unauthorized()).json(shl::PasscodeErrorBody {
                remaining_attempts: remaining,
            }),
        ),
        ManifestAnswer::NotFound => Ok(not_found()),
    }
}

fn jose(jwe: &str) -> HttpResponse {
    shl_headers(HttpResponse::Ok())
        .content_type("application/jose")
        .body(jwe.to_owned())
}

#[derive(Deserialize)]
struct DirectQuery {
    recipient: Option<String>,
}

async fn direct(
    state: web::Data<DeliveryState>,
    path: web::Path<String>,
    query: web::Query<DirectQuery>,
) -> Result<HttpResponse, Problem> {
    if query.recipient.as_deref().is_none_or(str::is_empty) {
        return Err(Problem::bad_request(
            "shl-recipient-required",
            "the recipient query parameter is required",
        ));
    }
    Ok(
        match links::direct_file(&state, &path).await.map_err(problem)? {
            Some(jwe) => jose(&jwe),
            None => not_found(),
        },
    )
}

async fn file(
    state: web::Data<DeliveryState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    Ok(
        match links::file_by_token(&state, &path).await.map_err(problem)? {
            Some(jwe) => jose(&jwe),
            None => not_found(),
        },
    )
}

/// Checks `Authorization: Bearer <admin token>` (comparing SHA-256 digests, so the time taken
/// does not depend on how much of a token matched).
fn require_admin(state: &DeliveryState, req: &HttpRequest) -> Result<(), Problem> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(Problem::unauthorized)?;
    let given = Sha256::digest(given.trim().as_bytes());
    let ok = state
        .settings()
        .admin_tokens
        .iter()
        .any(|t| Sha256::digest(t.expose_secret().as_bytes()) == given);
    if ok {
        Ok(())
    } else {
        Err(Problem::unauthorized())
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CreateLinkBody {
    passcode: Option<String>,
    label: Option<String>,
    direct_file: bool,
    phone: Option<String>,
}

#[tracing::instrument(skip_all, fields(credential_id = %path))]
async fn create_link(
    state: web::Data<DeliveryState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CreateLinkBody>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &req)?;
    let body = body.into_inner();
    // Validate the phone first: a bad number must not leave a link behind.
    let phone = match &body.phone {
        Some(p) => {
            if state.inner.sms.is_none() {
                return Err(problem(DeliveryError::SmsDisabled));
            }
            Some(E164::parse(p, &state.settings().phone_default_region).map_err(problem)?)
        }
        None => None,
    };
    let Some(cred) = state
        .store()
        .get_credential(&path)
        .await
        .map_err(|e| problem(e.into()))?
    else {
        return Err(Problem::not_found());
    };
    let options = LinkOptions {
        passcode: body.passcode.filter(|p| !p.is_empty()),
        label: body.label,
        direct_file: body.direct_file,
    };
    let link = links::create_link(&state, &cred, &options)
        .await
        .map_err(problem)?;
    let sms = match phone {
        Some(to) => {
            let job = crate::notify::send_link_sms(
                &state,
                &cred.id,
                &link.link_id,
                to,
                link.viewer_link.clone(),
            )
            .await
            .map_err(problem)?;
            Some(serde_json::json!({ "delivery_id": job.id, "status": job.status.as_str() }))
        }
        None => None,
    };
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "shlink": link.shlink,
            "viewer_link": link.viewer_link,
            "flags": link.flags,
            "exp": link.exp,
            "sms": sms,
        })))
}

async fn deliveries(
    state: web::Data<DeliveryState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &req)?;
    let store = state.store();
    if store
        .get_credential(&path)
        .await
        .map_err(|e| problem(e.into()))?
        .is_none()
    {
        return Err(Problem::not_found());
    }
    let jobs = store
        .list_deliveries(&path)
        .await
        .map_err(|e| problem(e.into()))?;
    let mut out = Vec::with_capacity(jobs.len());
    for d in jobs {
        let attempts = store
            .list_audit("delivery", &d.id)
            .await
            .map_err(|e| problem(e.into()))?
            .into_iter()
            .map(|a| serde_json::json!({ "at": a.at, "details": a.details }))
            .collect::<Vec<_>>();
        out.push(serde_json::json!({
            "id": d.id,
            "channel": d.channel,
            "status": d.status.as_str(),
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at,
            "last_error": d.last_error,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
            "attempt_log": attempts,
        }));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "credential_id": path.as_str(),
        "deliveries": out,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletBody {
    url: String,
}

#[tracing::instrument(skip_all, fields(patient_id = %path))]
async fn register_wallet(
    state: web::Data<DeliveryState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<WalletBody>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &req)?;
    let url = Url::parse(&body.url).map_err(|_| {
        problem(DeliveryError::UrlRefused {
            reason: "not a URL",
        })
    })?;
    state.outbound().vet(&url).await.map_err(problem)?;
    let store = state.store();
    if store
        .get_patient(&path)
        .await
        .map_err(|e| problem(e.into()))?
        .is_none()
    {
        return Err(Problem::not_found());
    }
    let secret = WebhookSecret::generate();
    let ep = store
        .create_wallet_endpoint(&NewWalletEndpoint {
            patient_id: path.clone(),
            url: url.to_string(),
            secret: secret.to_wire(),
        })
        .await
        .map_err(|e| problem(e.into()))?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "id": ep.id, "secret": secret.to_wire() })))
}
