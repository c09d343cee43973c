//! `POST {base}/fhir/Patient/{id}/$health-cards-issue` (spec-checklist §H, rules 43–50).
//!
//! Answers the patient's current cards of this issuer that match every parameter:
//! - `credentialType` (1..*, AND): FHIR resource types that must be in the card's bundle
//!   (`Immunization`, `Patient`, `Observation`, …), legacy `#immunization` → `Immunization`,
//!   `#laboratory` → `Observation` (also their `https://smarthealth.cards#…` forms), and SHC
//!   `vc.type` URIs (`https://smarthealth.cards#covid19`, `#health-card`) matched against the card's
//!   `vc.type`;
//! - `credentialValueSet` (0..*, AND): known value sets (COVID-19, orthopoxvirus, from
//!   terminology.smarthealth.cards) keep cards of that disease group; unknown ones are ignored, as
//!   the operation allows ("servers MAY ignore");
//! - `includeIdentityClaim` (0..*): when it leaves out `Patient.name` or `Patient.birthDate`, the
//!   card is re-signed now without them (same `rid`, active key);
//! - `_since` (0..1, year/month/day/time precision): cards issued at or after that instant.
//!
//! No match gives `{"resourceType":"Parameters"}` without `parameter` (rule 48). Errors are
//! `OperationOutcome`s: 400 bad parameters, 401 no valid token, 403 a patient outside the
//! token's scope, 404 unknown patient.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use platform::http::{OperationOutcomeError, FHIR_JSON};
use serde_json::{json, Value};
use store::{Credential, CredentialFormat, CredentialStatus};

use super::auth::{authenticate, AuthError};
use super::{issuer_of, HttpState};
use crate::pdf::card_payload;

/// The parsed operation input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueRequest {
    /// `credentialType` values.
    pub credential_types: Vec<String>,
    /// `credentialValueSet` values.
    pub value_sets: Vec<String>,
    /// `includeIdentityClaim` values.
    pub identity_claims: Vec<String>,
    /// `_since` as the earliest instant.
    pub since: Option<DateTime<Utc>>,
}

fn invalid(code: &'static str, diagnostics: &str) -> OperationOutcomeError {
    OperationOutcomeError::invalid(code, diagnostics.to_owned())
}

/// Reads a `Parameters` body.
pub fn parse_request(body: &[u8]) -> Result<IssueRequest, OperationOutcomeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("parameters-invalid", "body is not JSON"))?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(invalid(
            "parameters-invalid",
            "body must be a FHIR Parameters resource",
        ));
    }
    let mut out = IssueRequest::default();
    for p in v
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
        match name {
            "credentialType" => out.credential_types.push(
                text("valueUri")
                    .or_else(|| text("valueString"))
                    .ok_or_else(|| {
                        invalid("parameters-invalid", "credentialType needs valueUri")
                    })?,
            ),
            "credentialValueSet" => out.value_sets.push(
                text("valueUri")
                    .or_else(|| text("valueCanonical"))
                    .ok_or_else(|| {
                        invalid("parameters-invalid", "credentialValueSet needs valueUri")
                    })?,
            ),
            "includeIdentityClaim" => {
                out.identity_claims.push(text("valueString").ok_or_else(|| {
                    invalid(
                        "parameters-invalid",
                        "includeIdentityClaim needs valueString",
                    )
                })?)
            }
            "_since" => {
                let raw = text("valueDateTime")
                    .or_else(|| text("valueInstant"))
                    .ok_or_else(|| invalid("parameters-invalid", "_since needs valueDateTime"))?;
                out.since = Some(parse_since(&raw).ok_or_else(|| {
                    invalid("parameters-invalid", "_since is not a FHIR dateTime")
                })?);
            }
            // Unknown parameters are ignored, as FHIR operations usually do.
            _ => {}
        }
    }
    if out.credential_types.is_empty() {
        return Err(invalid(
            "parameters-invalid",
            "credentialType is required (1..*)",
        ));
    }
    Ok(out)
}

/// A FHIR dateTime of any precision as the first instant it covers (UTC when no zone is given).
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let date = match s.len() {
        4 => NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1)?,
        7 => {
            let (y, m) = s.split_once('-')?;
            NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?
        }
        10 => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?,
        _ => return None,
    };
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The resource type a `credentialType` asks for, or the `vc.type` URI it names.
enum TypeWanted {
    Resource(String),
    VcType(String),
}

fn type_wanted(t: &str) -> TypeWanted {
    let short = t.strip_prefix("https://smarthealth.cards").unwrap_or(t);
    match short {
        "#immunization" => TypeWanted::Resource("Immunization".into()),
        "#laboratory" => TypeWanted::Resource("Observation".into()),
        s if s.starts_with('#') => TypeWanted::VcType(format!("https://smarthealth.cards{s}")),
        s if s.contains(':') => TypeWanted::VcType(s.to_owned()),
        s => TypeWanted::Resource(s.to_owned()),
    }
}

/// The disease group a known value set canonical stands for.
fn value_set_group(url: &str) -> Option<&'static str> {
    let name = url.rsplit('/').next().unwrap_or(url);
    if name.starts_with("immunization-covid") {
        Some("covid-19")
    } else if name.starts_with("immunization-orthopoxvirus") {
        Some("orthopoxvirus")
    } else {
        None
    }
}

fn matches(req: &IssueRequest, cred: &Credential, payload: &Value) -> bool {
    let entries: Vec<&str> = payload
        .pointer("/vc/credentialSubject/fhirBundle/entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/resource/resourceType").and_then(Value::as_str))
        .collect();
    let vc_types: Vec<&str> = payload
        .pointer("/vc/type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let types_ok = req.credential_types.iter().all(|t| match type_wanted(t) {
        TypeWanted::Resource(r) => entries.contains(&r.as_str()),
        TypeWanted::VcType(v) => vc_types.contains(&v.as_str()),
    });
    let sets_ok = req
        .value_sets
        .iter()
        .filter_map(|v| value_set_group(v))
        .all(|g| g == cred.disease);
    let since_ok = req.since.is_none_or(|s| cred.created_at >= s);
    types_ok && sets_ok && since_ok
}

/// The identity elements to drop, per `includeIdentityClaim` (empty: keep everything).
fn dropped_claims(req: &IssueRequest) -> Vec<&'static str> {
    if req.identity_claims.is_empty() {
        return Vec::new();
    }
    let wants = |c: &str| req.identity_claims.iter().any(|x| x == c || x == "Patient");
    ["name", "birthDate"]
        .into_iter()
        .filter(|e| !wants(&format!("Patient.{e}")))
        .collect()
}

fn fhir_json(v: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, FHIR_JSON))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(v.to_string())
}

fn store_outcome(e: store::Error) -> OperationOutcomeError {
    if e.is_retryable() {
        OperationOutcomeError::transient(e.code())
    } else {
        OperationOutcomeError::internal(e)
    }
}

/// The handler.
pub async fn health_cards_issue(
    state: web::Data<HttpState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OperationOutcomeError> {
    let patient_id = req.match_info().get("id").unwrap_or_default().to_owned();
    let caller = authenticate(&state, &req).await.map_err(|e| match e {
        AuthError::Missing | AuthError::Invalid => {
            OperationOutcomeError::new(StatusCode::UNAUTHORIZED, "login", e.code())
                .with_diagnostics("a valid bearer token is required")
        }
        AuthError::Unavailable => OperationOutcomeError::transient(e.code()),
    })?;
    if !caller.may_read_immunizations_of(&patient_id) {
        return Err(OperationOutcomeError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "patient-out-of-scope",
        )
        .with_diagnostics("the access token does not cover this patient's immunizations"));
    }
    let request = parse_request(&body)?;
    let issuer = issuer_of(&state, &req)
        .await
        .map_err(store_outcome)?
        .ok_or_else(|| OperationOutcomeError::not_found("issuer-unknown"))?;
    let patient = state
        .store
        .get_patient(&patient_id)
        .await
        .map_err(store_outcome)?
        .filter(|p| p.issuer_id == issuer.id)
        .ok_or_else(|| OperationOutcomeError::not_found("patient-unknown"))?;
    let drop = dropped_claims(&request);
    let mut params = Vec::new();
    for cred in state
        .store
        .list_credentials(&patient.id)
        .await
        .map_err(store_outcome)?
    {
        if cred.status != CredentialStatus::Active
            || cred.format != CredentialFormat::Shc
            || cred.issuer_id != issuer.id
        {
            continue;
        }
        let Ok(payload) = card_payload(&cred.artefact) else {
            tracing::warn!(credential_id = %cred.id, "stored card unreadable; skipped");
            continue;
        };
        if !matches(&request, &cred, &payload) {
            continue;
        }
        let jws = if drop.is_empty() {
            cred.artefact.clone()
        } else {
            resign_without(&state, &issuer.id, &payload, &drop)?
        };
        params.push(json!({ "name": "verifiableCredential", "valueString": jws }));
    }
    tracing::info!(patient_id = %patient.id, cards = params.len(), "$health-cards-issue");
    let mut out = json!({ "resourceType": "Parameters" });
    if !params.is_empty() {
        if let Some(o) = out.as_object_mut() {
            o.insert("parameter".into(), Value::Array(params));
        }
    }
    Ok(fhir_json(&out))
}

/// Signs a copy of a stored card without the identity elements in `drop`, keeping its claims
/// (`iss`, `rid`) but a fresh `nbf`, with the issuer's active key.
fn resign_without(
    state: &HttpState,
    issuer_id: &str,
    payload: &Value,
    drop: &[&str],
) -> Result<String, OperationOutcomeError> {
    let internal = |why: &'static str| OperationOutcomeError::internal(std::io::Error::other(why));
    let mut bundle = payload
        .pointer("/vc/credentialSubject/fhirBundle")
        .cloned()
        .ok_or_else(|| internal("stored card has no bundle"))?;
    for entry in bundle
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(r) = entry.get_mut("resource").and_then(Value::as_object_mut) {
            if r.get("resourceType").and_then(Value::as_str) == Some("Patient") {
                for d in drop {
                    r.remove(*d);
                }
            }
        }
    }
    let old =
        shc::Claims::from_payload(payload).map_err(|_| internal("stored claims unreadable"))?;
    let mut claims = shc::Claims::new(old.iss.clone());
    claims.rid = old.rid.clone();
    claims.extra_types = old.extra_types.clone();
    claims.exp = old.exp.clone();
    let signer = state
        .keys
        .active_signer(issuer_id)
        .map_err(|_| internal("no active signing key"))?;
    let mut issuer = shc::CardIssuer::new(signer);
    issuer
        .sign_payload_of(&bundle, &claims)
        .map_err(|_| internal("re-signing failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_precisions() {
        assert_eq!(
            parse_since("2021").unwrap().to_rfc3339(),
            "2021-01-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2021-03").unwrap().to_rfc3339(),
            "2021-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2021-03-04").unwrap().to_rfc3339(),
            "2021-03-04T00:00:00+00:00"
        );
        assert!(parse_since("2021-03-04T10:00:00+02:00").is_some());
        assert!(parse_since("2021-13").is_none());
        assert!(parse_since("soon").is_none());
    }

    #[test]
    fn request_parsing() {
        let body = br##"{"resourceType":"Parameters","parameter":[
            {"name":"credentialType","valueUri":"Immunization"},
            {"name":"credentialValueSet","valueUri":"https://terminology.smarthealth.cards/ValueSet/immunization-covid-all"},
            {"name":"includeIdentityClaim","valueString":"Patient.name"},
            {"name":"_since","valueDateTime":"2021-03"}]}"##;
        let r = parse_request(body).unwrap();
        assert_eq!(r.credential_types, ["Immunization"]);
        assert_eq!(dropped_claims(&r), ["birthDate"]);
        assert!(parse_request(br#"{"resourceType":"Parameters"}"#).is_err());
        assert!(parse_request(br#"{"resourceType":"Patient"}"#).is_err());
    }
}
