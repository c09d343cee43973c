//! Fetching a Patient that a message only references, from its source EHR's FHIR API:
//! `GET [base]/Patient/{id}` (relative or absolute references on the same server) or
//! `GET [base]/Patient?identifier=system|value` (a logical reference), with a SMART Backend
//! Services bearer token when the source has credentials.
//!
//! Outcomes map to settlement: 5xx, 429, timeouts and refused tokens are transient (retry
//! queues); 404/410 is `patient-not-found` (DLQ); references to other servers are never
//! followed.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::smart::SmartClient;

/// Client for one source's FHIR server.
#[derive(Debug)]
pub struct FhirClient {
    http: reqwest::Client,
    base: String,
    smart: Option<Arc<SmartClient>>,
}

impl FhirClient {
    /// A client for `base` (no trailing `/`).
    pub fn new(http: reqwest::Client, base: &str, smart: Option<Arc<SmartClient>>) -> Self {
        FhirClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            smart,
        }
    }

    /// The FHIR base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL to read for `reference`, or an error if it points elsewhere.
    pub fn url_for(&self, reference: &str) -> Result<String> {
        let relative = if reference.starts_with("http://") || reference.starts_with("https://") {
            reference
                .strip_prefix(&self.base)
                .and_then(|r| r.strip_prefix('/'))
                .ok_or(Error::ForeignReference)?
        } else {
            reference.trim_start_matches('/')
        };
        if !relative.starts_with("Patient/") && !relative.starts_with("Patient?") {
            return Err(Error::ForeignReference);
        }
        if let Some(query) = relative.strip_prefix("Patient?") {
            // Re-encode the search so an identifier cannot smuggle extra parameters or paths.
            let mut url = url::Url::parse(&format!("{}/Patient", self.base))
                .map_err(|_| Error::Config("fhir_base_url is not a URL"))?;
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                if k == "identifier" || k == "_id" {
                    url.query_pairs_mut().append_pair(&k, &v);
                }
            }
            return Ok(url.to_string());
        }
        let id = relative.trim_start_matches("Patient/");
        let id = id.split('/').next().unwrap_or_default();
        let valid = !id.is_empty()
            && !id.starts_with('.')
            && !id.contains("..")
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(Error::ForeignReference);
        }
        Ok(format!("{}/Patient/{id}", self.base))
    }

    /// Fetches the Patient (or a search Bundle holding it) and returns the body bytes.
    pub async fn fetch_patient(&self, reference: &str) -> Result<Vec<u8>> {
        let url = self.url_for(reference)?;
        // One retry with a fresh token if the server refuses a cached one (revoked, or expired
        // earlier than announced).
        for attempt in 0..2 {
            let mut request = self
                .http
                .get(&url)
                .header("Accept", "application/fhir+json");
            if let Some(smart) = &self.smart {
                request = request.bearer_auth(smart.token().await?);
            }
            let response = request
                .send()
                .await
                .map_err(|_| Error::EhrUnavailable { status: None })?;
            let status = response.status().as_u16();
            match status {
                200 => {
                    return response.bytes().await.map(|b| b.to_vec()).map_err(|_| {
                        Error::EhrUnavailable {
                            status: Some(status),
                        }
                    })
                }
                401 | 403 => {
                    if let (Some(smart), 0) = (&self.smart, attempt) {
                        smart.invalidate().await;
                        continue;
                    }
                    return Err(Error::EhrAuth { status });
                }
                404 | 410 => return Err(Error::PatientNotFound),
                408 | 429 | 500..=599 => {
                    return Err(Error::EhrUnavailable {
                        status: Some(status),
                    })
                }
                _ => return Err(Error::EhrRefused { status }),
            }
        }
        Err(Error::EhrAuth { status: 401 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_stay_on_the_source_server() {
        platform::tls::ensure_crypto_provider();
        let c = FhirClient::new(reqwest::Client::new(), "http://ehr.test/fhir/", None);
        assert_eq!(
            c.url_for("Patient/abc-1").unwrap(),
            "http://ehr.test/fhir/Patient/abc-1"
        );
        assert_eq!(
            c.url_for("http://ehr.test/fhir/Patient/7").unwrap(),
            "http://ehr.test/fhir/Patient/7"
        );
        assert!(matches!(
            c.url_for("http://evil.test/fhir/Patient/7"),
            Err(Error::ForeignReference)
        ));
        assert!(matches!(
            c.url_for("Patient/../../admin"),
            Err(Error::ForeignReference)
        ));
        assert!(matches!(
            c.url_for("Observation/1"),
            Err(Error::ForeignReference)
        ));
        assert_eq!(
            c.url_for("Patient?identifier=urn:mrn|123&_format=xml")
                .unwrap(),
            "http://ehr.test/fhir/Patient?identifier=urn%3Amrn%7C123"
        );
    }
}
