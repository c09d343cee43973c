//! Who is calling: `Authorization: Bearer …` resolved to a [`Caller`].
//!
//! Three kinds of bearer token:
//! - admin tokens from the configuration (`admin.tokens`), compared in constant time;
//! - API tokens created with `vaxcred tokens create`, stored as SHA-256 hashes only
//!   (`store::Store::authenticate_api_token`), with space-separated scopes: `admin` (admin
//!   endpoints and every patient), `system/Immunization.read` or `health-cards` (cards of every
//!   patient);
//! - patient access tokens: compact JWS HS256 `{"patient","scope","exp"}` minted by vaxcred's
//!   launch app after a SMART launch (the EHR's own token never reaches the issuer), with a
//!   SMART scope such as `patient/Immunization.read` that covers exactly one patient.
//!
//! Tokens are secrets: never logged, never echoed; callers are identified in logs and the audit
//! trail by token id or kind only.

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::HttpState;

/// Scope that opens the admin endpoints (and every patient's cards).
pub const SCOPE_ADMIN: &str = "admin";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An admin token from the configuration.
    ConfigAdmin,
    /// An API token from the store.
    ApiToken {
        /// Token id (`tok_…`), what the audit trail records.
        id: String,
        /// Granted scopes.
        scopes: Vec<String>,
    },
    /// A patient access token.
    Patient {
        /// The one patient the token covers (internal id).
        patient_id: String,
        /// Granted SMART scopes.
        scopes: Vec<String>,
    },
}

impl Caller {
    /// Who, for the audit trail (ids only).
    pub fn actor(&self) -> String {
        match self {
            Caller::ConfigAdmin => "admin-config-token".to_owned(),
            Caller::ApiToken { id, .. } => id.clone(),
            Caller::Patient { patient_id, .. } => format!("patient-token:{patient_id}"),
        }
    }

    /// May use the admin endpoints.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::ConfigAdmin => true,
            Caller::ApiToken { scopes, .. } => scopes.iter().any(|s| s == SCOPE_ADMIN),
            Caller::Patient { .. } => false,
        }
    }

    /// May read the immunizations (and so the cards) of `patient_id`.
    pub fn may_read_immunizations_of(&self, patient_id: &str) -> bool {
        match self {
            Caller::ConfigAdmin => true,
            Caller::ApiToken { scopes, .. } => scopes.iter().any(|s| {
                matches!(
                    s.as_str(),
                    SCOPE_ADMIN
                        | "health-cards"
                        | "system/Immunization.read"
                        | "system/Immunization.rs"
                        | "system/*.read"
                        | "system/*.rs"
                )
            }),
            Caller::Patient {
                patient_id: p,
                scopes,
            } => p == patient_id && scopes.iter().any(|s| patient_scope_reads_immunizations(s)),
        }
    }
}

/// SMART v1 (`patient/Immunization.read`, `.*`) and v2 (`.rs`, `.r…`) scopes that read
/// Immunizations of the in-context patient.
fn patient_scope_reads_immunizations(scope: &str) -> bool {
    let Some(rest) = scope.strip_prefix("patient/") else {
        return false;
    };
    let Some((resource, access)) = rest.split_once('.') else {
        return false;
    };
    let resource_ok = resource == "Immunization" || resource == "*";
    let access = access.split('?').next().unwrap_or_default();
    let access_ok = access == "read"
        || access == "*"
        || (!access.is_empty()
            && access.chars().all(|c| "cruds".contains(c))
            && access.contains('r'));
    resource_ok && access_ok
}

/// Why a request is not authenticated. Never says which part of a token was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("authentication required")]
    Missing,
    /// The token is unknown, expired, revoked or malformed.
    #[error("invalid or expired token")]
    Invalid,
    /// The database could not be asked.
    #[error("cannot check the token now")]
    Unavailable,
}

impl AuthError {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "auth-missing",
            AuthError::Invalid => "auth-invalid",
            AuthError::Unavailable => "auth-unavailable",
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves the caller of `req`.
pub async fn authenticate(state: &HttpState, req: &HttpRequest) -> Result<Caller, AuthError> {
    let token = bearer(req).ok_or(AuthError::Missing)?;
    for admin in &state.settings.admin_tokens {
        if !admin.is_empty() && bool::from(admin.as_bytes().ct_eq(token.as_bytes())) {
            return Ok(Caller::ConfigAdmin);
        }
    }
    // A patient token is a three-part JWS; API tokens never contain '.'.
    if token.contains('.') {
        let secret = state
            .settings
            .patient_token_secret
            .as_deref()
            .ok_or(AuthError::Invalid)?;
        let now = chrono::Utc::now().timestamp();
        let claims = verify_patient_token(secret, token, now).ok_or(AuthError::Invalid)?;
        return Ok(Caller::Patient {
            patient_id: claims.patient,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        });
    }
    match state
        .store
        .authenticate_api_token(token, chrono::Utc::now())
        .await
    {
        Ok(Some(t)) => Ok(Caller::ApiToken {
            id: t.id,
            scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
        }),
        Ok(None) => Err(AuthError::Invalid),
        Err(e) => {
            tracing::warn!(code = e.code(), "cannot check an API token");
            Err(AuthError::Unavailable)
        }
    }
}

/// The claims of a patient access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatientTokenClaims {
    /// Internal patient id the token covers.
    pub patient: String,
    /// Space-separated SMART scopes.
    pub scope: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Mints a patient access token (the launch app's side; tests).
pub fn mint_patient_token(secret: &[u8], claims: &PatientTokenClaims) -> Option<String> {
    let payload = serde_json::to_vec(claims).ok()?;
    let input = format!("{}.{}", b64().encode(HS256_HEADER), b64().encode(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(input.as_bytes());
    let sig = mac.finalize().into_bytes();
    Some(format!("{input}.{}", b64().encode(sig)))
}

/// Checks a patient access token's signature (constant time), header and expiry at `now`.
pub fn verify_patient_token(secret: &[u8], token: &str, now: i64) -> Option<PatientTokenClaims> {
    let (input, sig) = token.rsplit_once('.')?;
    let (header, payload) = input.split_once('.')?;
    let sig = b64().decode(sig).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(input.as_bytes());
    mac.verify_slice(&sig).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&b64().decode(header).ok()?).ok()?;
    if header.get("alg").and_then(serde_json::Value::as_str) != Some("HS256") {
        return None;
    }
    let claims: PatientTokenClaims = serde_json::from_slice(&b64().decode(payload).ok()?).ok()?;
    (claims.exp > now).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_tokens_round_trip_and_expire() {
        let claims = PatientTokenClaims {
            patient: "pat_1".into(),
            scope: "launch/patient patient/Immunization.read".into(),
            exp: 1000,
        };
        let t = mint_patient_token(b"0123456789abcdef0123456789abcdef", &claims).unwrap();
        assert_eq!(
            verify_patient_token(b"0123456789abcdef0123456789abcdef", &t, 999),
            Some(claims)
        );
        assert_eq!(
            verify_patient_token(b"0123456789abcdef0123456789abcdef", &t, 1000),
            None
        );
        assert_eq!(
            verify_patient_token(b"another secret of 32 bytes......", &t, 1),
            None
        );
    }

    #[test]
    fn smart_scopes() {
        assert!(patient_scope_reads_immunizations(
            "patient/Immunization.read"
        ));
        assert!(patient_scope_reads_immunizations("patient/*.read"));
        assert!(patient_scope_reads_immunizations("patient/Immunization.rs"));
        assert!(!patient_scope_reads_immunizations(
            "patient/Observation.read"
        ));
        assert!(!patient_scope_reads_immunizations("user/Immunization.read"));
        assert!(!patient_scope_reads_immunizations("patient/Immunization.c"));
        let c = Caller::Patient {
            patient_id: "pat_1".into(),
            scopes: vec!["patient/Immunization.read".into()],
        };
        assert!(c.may_read_immunizations_of("pat_1"));
        assert!(!c.may_read_immunizations_of("pat_2"));
        assert!(!c.is_admin());
    }
}
