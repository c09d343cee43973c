//! `GET /.well-known/jwks.json`: the default issuer's public keys, built from `signing_keys` (so
//! it lists keys of every key store, leaves out revoked ones, and carries each key's current
//! `crlVersion`). Served with `Access-Control-Allow-Origin: *` because verifiers run in browsers
//! (DESIGN §10), and a short cache lifetime so rotations and revocations show up quickly.

use actix_web::{http::header, web, HttpResponse};
use store::{KeyStatus, Store};

/// Path of the JWKS, relative to the issuer's base URL.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(Clone)]
struct JwksState {
    store: Store,
    issuer_id: String,
}

/// Mounts the JWKS route for `issuer_id`, for `App::configure`.
pub fn configure(
    store: Store,
    issuer_id: String,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(JwksState {
            store: store.clone(),
            issuer_id: issuer_id.clone(),
        }))
        .route(JWKS_PATH, web::get().to(jwks));
    }
}

/// The JWKS document for `issuer_id`.
pub async fn jwks_document(
    store: &Store,
    issuer_id: &str,
) -> Result<serde_json::Value, store::Error> {
    let keys = store.list_signing_keys(issuer_id).await?;
    let versions = store.crl_versions(issuer_id).await?;
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| k.status != KeyStatus::Revoked) {
        let mut jwk = key.public_jwk;
        if let (Some(obj), Some((_, ctr))) = (
            jwk.as_object_mut(),
            versions.iter().find(|(kid, _)| *kid == key.kid),
        ) {
            obj.insert("crlVersion".into(), (*ctr).into());
        }
        out.push(jwk);
    }
    Ok(serde_json::json!({ "keys": out }))
}

async fn jwks(state: web::Data<JwksState>) -> HttpResponse {
    match jwks_document(&state.store, &state.issuer_id).await {
        Ok(doc) => HttpResponse::Ok()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
            .json(doc),
        Err(e) => {
            tracing::warn!(code = e.code(), "cannot read the JWKS");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                .insert_header((header::RETRY_AFTER, "5"))
                .finish()
        }
    }
}
