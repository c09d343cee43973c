//! Ingest settings: batching, and the sources (EHR feeds) with their FHIR endpoints and SMART
//! Backend Services credentials.

use std::time::Duration;

/// One EHR feed, identified by the AMQP `source` header (DESIGN §6).
#[derive(Clone)]
pub struct SourceConfig {
    /// The `source` header value.
    pub name: String,
    /// Issuer (store id) its events belong to.
    pub issuer_id: String,
    /// FHIR base URL (`https://ehr.example.org/fhir/r4`, no trailing `/`), for Patient fetches;
    /// also the identifier system of Patient references from this source.
    pub fhir_base_url: Option<String>,
    /// SMART Backend Services credentials; `None` fetches without a token.
    pub smart: Option<SmartConfig>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("issuer_id", &self.issuer_id)
            .field("fhir_base_url", &self.fhir_base_url)
            .field("smart", &self.smart.is_some())
            .finish()
    }
}

/// SMART Backend Services (client_credentials + `private_key_jwt`).
#[derive(Clone)]
pub struct SmartConfig {
    /// Token endpoint.
    pub token_url: String,
    /// Registered client id (also `iss` and `sub` of the assertion).
    pub client_id: String,
    /// Scopes requested, e.g. `system/Patient.read` (`system/Patient.rs` in SMART v2).
    pub scope: String,
    /// The client's private key as a P-384 JWK (ES384), JSON text. Secret.
    pub private_jwk: String,
    /// `kid` of that key as registered in the client's JWKS.
    pub kid: String,
}

/// Ingest tuning and sources.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Most messages per micro-batch (keep ≤ the consumer prefetch).
    pub batch: usize,
    /// How long to wait for more messages once one arrived.
    pub linger: Duration,
    /// Patient fetches in flight per batch.
    pub fetch_concurrency: usize,
    /// Timeout of one HTTP call to an EHR.
    pub http_timeout: Duration,
    /// Issuer of messages without a (known) `source` header.
    pub default_issuer_id: String,
    /// Known sources.
    pub sources: Vec<SourceConfig>,
}

impl IngestConfig {
    /// Defaults for `default_issuer_id` and no sources.
    pub fn new(default_issuer_id: impl Into<String>) -> Self {
        IngestConfig {
            batch: 100,
            linger: Duration::from_millis(3),
            fetch_concurrency: 8,
            http_timeout: Duration::from_secs(10),
            default_issuer_id: default_issuer_id.into(),
            sources: Vec::new(),
        }
    }
}
