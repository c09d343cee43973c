//! The `/.well-known` documents verifiers fetch: the JWKS (rules 22, 24–26, 31), one CRL per key
//! (rules 29–31) and the SMART configuration (rule 27). All carry
//! `Access-Control-Allow-Origin: *`: verifiers run in browsers (§R.3), and a short cache
//! lifetime so rotations and revocations show up within a minute.
//!
//! CRL counters: the store's `ctr` counts changes from 1 at the first revocation. When revocation
//! is on, every key announces a CRL from the start, so the served counter is the store's plus
//! one: an empty list is 1 and each revocation moves it, never back to a value a verifier cached
//! for a different list.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::{json, Value};
use store::KeyStatus;

use super::{issuer_of, HttpState};

fn cors(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"));
    b
}

fn unavailable(e: &store::Error) -> HttpResponse {
    tracing::warn!(code = e.code(), "cannot read issuer keys");
    let mut b = HttpResponse::ServiceUnavailable();
    b.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::RETRY_AFTER, "5"));
    b.finish()
}

fn not_found() -> HttpResponse {
    let mut b = HttpResponse::NotFound();
    b.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    b.finish()
}

/// The JWKS document of `issuer_id`: active and retired keys (revoked ones are left out), each
/// with `crlVersion` when it has a CRL.
pub async fn jwks_document(state: &HttpState, issuer_id: &str) -> Result<Value, store::Error> {
    let keys = state.store.list_signing_keys(issuer_id).await?;
    let versions = state.store.crl_versions(issuer_id).await?;
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| k.status != KeyStatus::Revoked) {
        let mut jwk = key.public_jwk;
        let Some(obj) = jwk.as_object_mut() else {
            continue;
        };
        // Never publish private material, whatever a key store wrote (rule 22).
        obj.remove("d");
        obj.insert("use".into(), json!("sig"));
        obj.insert("alg".into(), json!("ES256"));
        let ctr = versions
            .iter()
            .find(|(kid, _)| *kid == key.kid)
            .map(|(_, c)| *c);
        match served_ctr(state.settings.revocation, ctr) {
            Some(v) => {
                obj.insert("crlVersion".into(), json!(v));
            }
            None => {
                obj.remove("crlVersion");
            }
        }
        out.push(jwk);
    }
    Ok(json!({ "keys": out }))
}

fn served_ctr(revocation: bool, stored: Option<i64>) -> Option<i64> {
    match (revocation, stored) {
        (true, c) => Some(c.unwrap_or(0) + 1),
        (false, Some(c)) => Some(c),
        (false, None) => None,
    }
}

/// `GET {base}/.well-known/jwks.json`
pub async fn jwks(state: web::Data<HttpState>, req: HttpRequest) -> HttpResponse {
    let issuer = match issuer_of(&state, &req).await {
        Ok(Some(i)) => i,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    match jwks_document(&state, &issuer.id).await {
        Ok(doc) => cors(HttpResponse::Ok()).json(doc),
        Err(e) => unavailable(&e),
    }
}

/// `GET {base}/.well-known/crl/{kid}.json`
pub async fn crl(state: web::Data<HttpState>, req: HttpRequest) -> HttpResponse {
    let Some(kid) = req.match_info().get("kid").map(str::to_owned) else {
        return not_found();
    };
    let issuer = match issuer_of(&state, &req).await {
        Ok(Some(i)) => i,
        Ok(None) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let key = match state.store.get_signing_key(&issuer.id, &kid).await {
        Ok(Some(k)) if k.status != KeyStatus::Revoked => k,
        Ok(_) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let crl = match state.store.get_crl(&issuer.id, &key.kid).await {
        Ok(c) => c,
        Err(e) => return unavailable(&e),
    };
    let Some(ctr) = served_ctr(state.settings.revocation, crl.as_ref().map(|c| c.ctr)) else {
        return not_found();
    };
    let rids: Vec<String> = crl
        .map(|c| c.rids)
        .unwrap_or_default()
        .into_iter()
        .map(|r| match r.revoked_before {
            Some(ts) => format!("{}.{ts}", r.rid),
            None => r.rid,
        })
        .collect();
    cors(HttpResponse::Ok()).json(json!({
        "kid": key.kid,
        "method": "rid",
        "ctr": ctr,
        "rids": rids,
    }))
}

/// `GET {base}/.well-known/smart-configuration`
pub async fn smart_configuration(state: web::Data<HttpState>, req: HttpRequest) -> HttpResponse {
    match issuer_of(&state, &req).await {
        Ok(Some(_)) => cors(HttpResponse::Ok()).json(json!({
            "capabilities": ["health-cards"],
        })),
        Ok(None) => not_found(),
        Err(e) => unavailable(&e),
    }
}
