//! Admin endpoints (JSON, errors as `application/problem+json`), behind an admin token (config
//! `admin.tokens`, or an API token with scope `admin`). Every change is appended to the `audit`
//! table: who (token id), what (action, subject kind and id), when — ids only, never patient data.
//!
//! | route | action |
//! | --- | --- |
//! | `GET /admin/issuers` | list issuers |
//! | `POST /admin/issuers` `{slug, display_name, iss?}` | add an issuer (first key generated) |
//! | `POST /admin/issuers/{slug}/sources` `{name, fhir_base_url?}` | map an EHR feed to it |
//! | `GET /admin/issuers/{slug}/keys` | list keys with status |
//! | `POST /admin/issuers/{slug}/keys/rotate` | new active key; the old one is retired |
//! | `POST /admin/issuers/{slug}/keys/{kid}/retire` | destroy a non-active private key |
//! | `POST /admin/issuers/{slug}/keys/{kid}/revoke` | remove a key from the JWKS now |
//! | `POST /admin/credentials/{id}/revoke` | revoke a card (its `rid` goes on the CRL) |

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use platform::http::Problem;
use serde::Deserialize;
use serde_json::json;
use store::{Issuer, NewAuditEntry, NewIssuer, NewSource, RevokeOutcome};

use super::auth::{authenticate, Caller};
use super::cards::auth_problem;
use super::{check_iss, expected_iss, HttpState};
use crate::keys::KeyAdminError;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/issuers", web::get().to(list_issuers))
        .route("/issuers", web::post().to(add_issuer))
        .route("/issuers/{slug}/sources", web::post().to(add_source))
        .route("/issuers/{slug}/keys", web::get().to(list_keys))
        .route("/issuers/{slug}/keys/rotate", web::post().to(rotate_key))
        .route(
            "/issuers/{slug}/keys/{kid}/retire",
            web::post().to(retire_key),
        )
        .route(
            "/issuers/{slug}/keys/{kid}/revoke",
            web::post().to(revoke_key),
        )
        .route(
            "/credentials/{id}/revoke",
            web::post().to(revoke_credential),
        );
}

fn store_problem(e: store::Error) -> Problem {
    match e {
        store::Error::NotFound(_) => Problem::not_found(),
        e if e.code() == "store-constraint" => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "It exists already or refers to something missing",
        ),
        e if e.is_retryable() => Problem::unavailable(e.code()),
        e => Problem::internal(e),
    }
}

fn key_problem(e: KeyAdminError) -> Problem {
    match e {
        KeyAdminError::UnknownKey => Problem::not_found(),
        KeyAdminError::ActiveKey => Problem::new(
            StatusCode::CONFLICT,
            e.code(),
            "The key signs new cards; rotate first",
        ),
        KeyAdminError::Revoked => {
            Problem::new(StatusCode::CONFLICT, e.code(), "The key is revoked")
        }
        KeyAdminError::Store(e) => store_problem(e),
        e if e.is_retryable() => Problem::unavailable(e.code()),
        e => Problem::internal(e),
    }
}

async fn admin(state: &HttpState, req: &HttpRequest) -> Result<Caller, Problem> {
    let caller = authenticate(state, req).await.map_err(auth_problem)?;
    if !caller.is_admin() {
        return Err(Problem::forbidden());
    }
    Ok(caller)
}

async fn audit(
    state: &HttpState,
    caller: &Caller,
    action: &str,
    kind: &str,
    id: &str,
    details: serde_json::Value,
) -> Result<(), Problem> {
    state
        .store
        .append_audit(&NewAuditEntry {
            actor: caller.actor(),
            action: action.to_owned(),
            subject_kind: kind.to_owned(),
            subject_id: id.to_owned(),
            details,
        })
        .await
        .map(|_| ())
        .map_err(store_problem)
}

async fn issuer_by_slug(state: &HttpState, req: &HttpRequest) -> Result<Issuer, Problem> {
    let slug = req.match_info().get("slug").unwrap_or_default();
    state
        .store
        .get_issuer_by_slug(slug)
        .await
        .map_err(store_problem)?
        .ok_or_else(Problem::not_found)
}

fn managed(state: &HttpState) -> Result<&crate::keys::ManagedKeys, Problem> {
    state.managed.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "key-admin-unavailable",
            "This key store cannot be managed here",
        )
    })
}

fn issuer_json(i: &Issuer) -> serde_json::Value {
    json!({ "id": i.id, "slug": i.slug, "iss": i.iss, "display_name": i.display_name,
            "created_at": i.created_at })
}

async fn list_issuers(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    admin(&state, &req).await?;
    let issuers = state.store.list_issuers().await.map_err(store_problem)?;
    Ok(HttpResponse::Ok().json(issuers.iter().map(issuer_json).collect::<Vec<_>>()))
}

/// Body of `POST /admin/issuers`.
#[derive(Debug, Deserialize)]
pub struct AddIssuer {
    slug: String,
    display_name: String,
    iss: Option<String>,
}

/// Slugs become URL path segments and directory names.
pub fn valid_slug(slug: &str) -> bool {
    (1..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
}

async fn add_issuer(
    state: web::Data<HttpState>,
    req: HttpRequest,
    body: web::Json<AddIssuer>,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    if !valid_slug(&body.slug) {
        return Err(Problem::bad_request(
            "slug-invalid",
            "slug must be 1-40 characters of a-z, 0-9 and '-'",
        ));
    }
    if body.display_name.trim().is_empty() {
        return Err(Problem::bad_request(
            "display-name-missing",
            "display_name is required",
        ));
    }
    let expected = expected_iss(&state.settings.public_base_url, &body.slug);
    let iss = body.iss.clone().unwrap_or_else(|| expected.clone());
    check_iss(&iss, &expected, state.settings.allow_insecure_iss)
        .map_err(|p| Problem::bad_request("issuer-iss-invalid", format!("iss {p}")))?;
    let issuer = state
        .store
        .create_issuer(&NewIssuer {
            iss,
            slug: body.slug.clone(),
            display_name: body.display_name.trim().to_owned(),
        })
        .await
        .map_err(store_problem)?;
    if let Some(keys) = &state.managed {
        keys.ensure_issuer(&state.store, &issuer)
            .await
            .map_err(key_problem)?;
    }
    audit(
        &state,
        &caller,
        "issuer.create",
        "issuer",
        &issuer.id,
        json!({ "slug": issuer.slug }),
    )
    .await?;
    Ok(HttpResponse::Created().json(issuer_json(&issuer)))
}

/// Body of `POST /admin/issuers/{slug}/sources`.
#[derive(Debug, Deserialize)]
pub struct AddSource {
    name: String,
    fhir_base_url: Option<String>,
}

async fn add_source(
    state: web::Data<HttpState>,
    req: HttpRequest,
    body: web::Json<AddSource>,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    let issuer = issuer_by_slug(&state, &req).await?;
    if body.name.trim().is_empty() {
        return Err(Problem::bad_request(
            "source-name-missing",
            "name is required",
        ));
    }
    let source = state
        .store
        .create_source(&NewSource {
            issuer_id: issuer.id.clone(),
            name: body.name.trim().to_owned(),
            fhir_base_url: body.fhir_base_url.clone(),
        })
        .await
        .map_err(store_problem)?;
    audit(
        &state,
        &caller,
        "source.create",
        "source",
        &source.id,
        json!({ "issuer_id": issuer.id }),
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": source.id, "issuer_id": source.issuer_id, "name": source.name,
    })))
}

async fn list_keys(state: web::Data<HttpState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    admin(&state, &req).await?;
    let issuer = issuer_by_slug(&state, &req).await?;
    let keys = state
        .store
        .list_signing_keys(&issuer.id)
        .await
        .map_err(store_problem)?;
    Ok(HttpResponse::Ok().json(
        keys.iter()
            .map(|k| {
                json!({ "kid": k.kid, "status": k.status.as_str(), "key_store": k.key_store,
                        "created_at": k.created_at, "retired_at": k.retired_at })
            })
            .collect::<Vec<_>>(),
    ))
}

async fn rotate_key(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    let issuer = issuer_by_slug(&state, &req).await?;
    let kid = managed(&state)?
        .rotate(&state.store, &issuer)
        .await
        .map_err(key_problem)?;
    audit(
        &state,
        &caller,
        "key.rotate",
        "signing_key",
        &kid,
        json!({ "issuer_id": issuer.id }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid })))
}

fn kid_param(req: &HttpRequest) -> String {
    req.match_info().get("kid").unwrap_or_default().to_owned()
}

async fn retire_key(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    let issuer = issuer_by_slug(&state, &req).await?;
    let kid = kid_param(&req);
    managed(&state)?
        .retire(&state.store, &issuer, &kid)
        .await
        .map_err(key_problem)?;
    audit(
        &state,
        &caller,
        "key.retire",
        "signing_key",
        &kid,
        json!({ "issuer_id": issuer.id }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid, "status": "retired" })))
}

async fn revoke_key(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    let issuer = issuer_by_slug(&state, &req).await?;
    let kid = kid_param(&req);
    let rotated = managed(&state)?
        .revoke(&state.store, &issuer, &kid)
        .await
        .map_err(key_problem)?;
    audit(
        &state,
        &caller,
        "key.revoke",
        "signing_key",
        &kid,
        json!({ "issuer_id": issuer.id, "new_active_kid": rotated }),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "kid": kid, "status": "revoked", "new_active_kid": rotated })))
}

async fn revoke_credential(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let caller = admin(&state, &req).await?;
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    let outcome = state
        .store
        .revoke_credential(&id)
        .await
        .map_err(store_problem)?;
    let (already, ctr) = match outcome {
        RevokeOutcome::AlreadyRevoked => (true, None),
        RevokeOutcome::Revoked { crl_ctr } => (false, crl_ctr),
    };
    if !already {
        audit(
            &state,
            &caller,
            "credential.revoke",
            "credential",
            &id,
            json!({ "crl_ctr": ctr }),
        )
        .await?;
    }
    Ok(HttpResponse::Ok()
        .json(json!({ "id": id, "status": "revoked", "already_revoked": already })))
}
