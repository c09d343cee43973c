//! Reads from the EHR's FHIR API with the launch's bearer token: the Patient in context and their
//! Immunizations (search, following `next` pages on the same server only).
//!
//! Plain reqwest + `serde_json::Value` rather than `fhir-sdk`: the model crate's normalizer takes
//! FHIR JSON as sent (it is R4; fhir-sdk is R4B and re-serializing through it changes numbers and
//! drops unknown elements, DESIGN.md §10), the two reads are two GETs, and fhir-sdk's R4B model is
//! a large compile on 2-core CI for no gain here.

use serde_json::Value;

use crate::error::{LaunchError, Result};
use crate::smart::unavailable;

/// Most search pages followed (×`_count` 100): a patient with more Immunizations is unusual
/// enough that stopping is better than looping on a broken `next` link.
const MAX_PAGES: usize = 20;

/// The Patient and their Immunizations as the EHR sent them.
#[derive(Clone)]
pub struct PatientRecord {
    /// The Patient resource.
    pub patient: Value,
    /// The Immunization resources, in search order.
    pub immunizations: Vec<Value>,
}

impl std::fmt::Debug for PatientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientRecord")
            .field("immunizations", &self.immunizations.len())
            .finish_non_exhaustive()
    }
}

/// A FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`): the patient id goes into a URL path.
pub fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Reads `Patient/{id}` and `Immunization?patient={id}`. A 401 is [`LaunchError::TokenExpired`]
/// (the caller refreshes and tries once more).
pub async fn fetch_record(
    http: &reqwest::Client,
    iss: &str,
    patient_id: &str,
    token: &str,
) -> Result<PatientRecord> {
    if !is_fhir_id(patient_id) {
        return Err(LaunchError::FhirInvalid("patient id is not a FHIR id"));
    }
    let base = iss.trim_end_matches('/');
    let patient = get_json(http, &format!("{base}/Patient/{patient_id}"), token).await?;
    if patient.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(LaunchError::FhirInvalid(
            "Patient read did not return a Patient",
        ));
    }
    let mut immunizations = Vec::new();
    let mut next = Some(format!(
        "{base}/Immunization?patient={patient_id}&_count=100"
    ));
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        let bundle = get_json(http, &url, token).await?;
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(LaunchError::FhirInvalid(
                "Immunization search did not return a Bundle",
            ));
        }
        for entry in bundle
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Search results may include OperationOutcome entries (`search.mode` = outcome).
            if let Some(r) = entry.get("resource") {
                if r.get("resourceType").and_then(Value::as_str) == Some("Immunization") {
                    immunizations.push(r.clone());
                }
            }
        }
        next = bundle
            .get("link")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
            .and_then(|l| l.get("url").and_then(Value::as_str))
            // Never send the token to another server.
            .filter(|u| u.starts_with(&format!("{base}/")) || u.starts_with(&format!("{base}?")))
            .map(str::to_owned)
            .filter(|_| pages < MAX_PAGES);
    }
    Ok(PatientRecord {
        patient,
        immunizations,
    })
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let resp = http
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/fhir+json")
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(LaunchError::TokenExpired);
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(LaunchError::EhrUnavailable {
            status: Some(status.as_u16()),
        });
    }
    if !status.is_success() {
        return Err(LaunchError::FhirInvalid("the EHR refused a FHIR read"));
    }
    resp.json()
        .await
        .map_err(|_| LaunchError::FhirInvalid("FHIR response is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_ids_are_checked_before_going_into_a_path() {
        assert!(is_fhir_id("abc-1.2"));
        assert!(!is_fhir_id("../x"));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id(&"a".repeat(65)));
    }
}
