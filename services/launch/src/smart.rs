//! The SMART App Launch 2.x client side: discovery (`{iss}/.well-known/smart-configuration`),
//! scope choice (v2 `.rs` scopes, v1 `.read` fallback when the server lists only v1), the
//! authorization request (code flow, PKCE S256, `state`, `aud`), and the token requests
//! (authorization code and refresh) with `private_key_jwt` or as a public client.
//!
//! Hand-rolled on reqwest rather than the `oauth2` crate: the flow is three small requests, and
//! SMART's token response carries launch context (`patient`, `fhirUser`, `need_patient_banner`)
//! and the client assertion is ES384 — both need `oauth2`'s extension points, which cost more
//! code than the requests themselves.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::crypto::same_secret;
use crate::error::{LaunchError, Result};
use crate::settings::{ClientAuth, LaunchSettings};

/// Scopes asked for in an EHR launch (SMART v2 syntax).
pub const EHR_SCOPES_V2: &str = "launch openid fhirUser patient/Patient.rs patient/Immunization.rs";
/// The same in SMART v1 syntax, for servers that list only v1 scopes.
pub const EHR_SCOPES_V1: &str =
    "launch openid fhirUser patient/Patient.read patient/Immunization.read";
/// Scopes of a standalone launch: `launch/patient` asks the EHR to pick a patient.
pub const STANDALONE_SCOPES_V2: &str =
    "launch/patient openid fhirUser patient/Patient.rs patient/Immunization.rs";
/// v1 form of [`STANDALONE_SCOPES_V2`].
pub const STANDALONE_SCOPES_V1: &str =
    "launch/patient openid fhirUser patient/Patient.read patient/Immunization.read";

/// The parts of `.well-known/smart-configuration` the app uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmartConfiguration {
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Scopes the server supports (optional in the spec).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// PKCE methods (SMART 2.x servers list `S256`).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Capabilities (`launch-ehr`, `client-confidential-asymmetric`, …).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl SmartConfiguration {
    /// Whether to use v1 scopes: the server lists scopes, and lists v1 `.read` but no v2 `.rs`.
    pub fn wants_v1_scopes(&self) -> bool {
        let has = |suffix: &str| self.scopes_supported.iter().any(|s| s.ends_with(suffix));
        !self.scopes_supported.is_empty() && has(".read") && !has(".rs")
    }

    /// The scope string for an EHR (`standalone == false`) or standalone launch.
    pub fn scopes(&self, standalone: bool) -> &'static str {
        match (standalone, self.wants_v1_scopes()) {
            (false, false) => EHR_SCOPES_V2,
            (false, true) => EHR_SCOPES_V1,
            (true, false) => STANDALONE_SCOPES_V2,
            (true, true) => STANDALONE_SCOPES_V1,
        }
    }

    fn check(&self) -> Result<()> {
        for endpoint in [&self.authorization_endpoint, &self.token_endpoint] {
            let url = Url::parse(endpoint).map_err(|_| LaunchError::Discovery("bad endpoint"))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(LaunchError::Discovery("endpoint is not http(s)"));
            }
        }
        // SMART 2.x: servers SHALL support S256 and list it; refuse a server that lists PKCE
        // methods without S256 (it would accept `plain`, which defeats PKCE).
        if !self.code_challenge_methods_supported.is_empty()
            && !self
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err(LaunchError::Discovery("S256 not supported"));
        }
        Ok(())
    }
}

/// What the token endpoint answered, with the launch context.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// Bearer token for the FHIR API.
    pub access_token: String,
    /// Refresh token, when granted.
    pub refresh_token: Option<String>,
    /// Expiry as seconds since the epoch (`now + expires_in`; 5 minutes when absent).
    pub expires_at: u64,
    /// Granted scopes.
    pub scope: Option<String>,
    /// Patient in context (`patient`).
    pub patient: Option<String>,
    /// The clinician (`fhirUser`, from the response or the ID token).
    pub fhir_user: Option<String>,
}

/// HTTP client for the EHR's authorization server.
#[derive(Clone)]
pub struct SmartClient {
    http: reqwest::Client,
}

impl std::fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient").finish_non_exhaustive()
    }
}

/// Maps a transport failure to "EHR unavailable" (no URL or body in the error: they may carry PHI).
pub(crate) fn unavailable(e: &reqwest::Error) -> LaunchError {
    LaunchError::EhrUnavailable {
        status: e.status().map(|s| s.as_u16()),
    }
}

impl SmartClient {
    /// A client with the given per-request timeout. Redirects are not followed: a token or FHIR
    /// endpoint that redirects is treated as an error rather than sending tokens elsewhere.
    pub fn new(timeout: Duration) -> Result<Self> {
        crate::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| LaunchError::Internal("cannot build the HTTP client"))?;
        Ok(SmartClient { http })
    }

    /// The underlying HTTP client (shared with the FHIR reads).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Fetches and checks `{iss}/.well-known/smart-configuration`.
    pub async fn discover(&self, iss: &str) -> Result<SmartConfiguration> {
        let url = format!(
            "{}/.well-known/smart-configuration",
            iss.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(LaunchError::EhrUnavailable {
                status: Some(status.as_u16()),
            });
        }
        if !status.is_success() {
            return Err(LaunchError::Discovery("no smart-configuration document"));
        }
        let config: SmartConfiguration = resp
            .json()
            .await
            .map_err(|_| LaunchError::Discovery("smart-configuration is not valid JSON"))?;
        config.check()?;
        Ok(config)
    }

    /// Exchanges an authorization code (with the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        settings: &LaunchSettings,
        token_endpoint: &str,
        code: &str,
        verifier: &str,
    ) -> Result<TokenGrant> {
        let redirect_uri = settings.redirect_uri();
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.to_owned()),
        ];
        self.token_request(settings, token_endpoint, form).await
    }

    /// Uses a refresh token.
    pub async fn refresh(
        &self,
        settings: &LaunchSettings,
        token_endpoint: &str,
        refresh_token: &str,
    ) -> Result<TokenGrant> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ];
        self.token_request(settings, token_endpoint, form).await
    }

    async fn token_request(
        &self,
        settings: &LaunchSettings,
        token_endpoint: &str,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<TokenGrant> {
        match &settings.client_auth {
            ClientAuth::Public => form.push(("client_id", settings.client_id.clone())),
            ClientAuth::Confidential(key) => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push((
                    "client_assertion",
                    key.client_assertion(&settings.client_id, token_endpoint, now_secs()),
                ));
            }
        }
        let resp = self
            .http
            .post(token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(LaunchError::EhrUnavailable {
                status: Some(status.as_u16()),
            });
        }
        if !status.is_success() {
            return Err(LaunchError::TokenRejected {
                status: status.as_u16(),
            });
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|_| LaunchError::FhirInvalid("token response is not JSON"))?;
        parse_grant(&body, now_secs())
    }
}

/// Reads a token response. `fhirUser` comes from the response itself when the server adds it,
/// else from the ID token's claims: the ID token arrived straight from the token endpoint over
/// TLS, which OpenID Connect Core §3.1.3.7 (6) accepts in place of checking its signature.
pub fn parse_grant(body: &Value, now: u64) -> Result<TokenGrant> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let access_token = text("access_token").ok_or(LaunchError::FhirInvalid("no access_token"))?;
    if !text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err(LaunchError::FhirInvalid("token_type is not Bearer"));
    }
    let expires_in = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(300);
    let fhir_user = text("fhirUser").or_else(|| {
        text("id_token")
            .as_deref()
            .and_then(id_token_claims)
            .and_then(|c| c.get("fhirUser").and_then(Value::as_str).map(str::to_owned))
    });
    Ok(TokenGrant {
        access_token,
        refresh_token: text("refresh_token"),
        expires_at: now.saturating_add(expires_in),
        scope: text("scope"),
        patient: text("patient"),
        fhir_user,
    })
}

fn id_token_claims(jwt: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The authorization request URL (`response_type=code`, PKCE S256, `aud` = the FHIR base).
pub fn authorize_url(
    config: &SmartConfiguration,
    settings: &LaunchSettings,
    iss: &str,
    launch: Option<&str>,
    scope: &str,
    state: &str,
    challenge: &str,
) -> Result<String> {
    let mut url = Url::parse(&config.authorization_endpoint)
        .map_err(|_| LaunchError::Discovery("bad authorization endpoint"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", &settings.redirect_uri())
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("aud", iss)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(launch) = launch {
            q.append_pair("launch", launch);
        }
    }
    Ok(url.into())
}

/// Checks the `state` the callback received against the session's.
pub fn check_state(expected: Option<&str>, got: Option<&str>) -> Result<()> {
    match (expected, got) {
        (Some(e), Some(g)) if same_secret(e, g) => Ok(()),
        _ => Err(LaunchError::StateMismatch),
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(scopes: &[&str]) -> SmartConfiguration {
        serde_json::from_value(json!({
            "authorization_endpoint": "https://ehr.example/auth",
            "token_endpoint": "https://ehr.example/token",
            "scopes_supported": scopes,
        }))
        .unwrap()
    }

    #[test]
    fn scopes_fall_back_to_v1_only_when_the_server_lists_only_v1() {
        assert_eq!(config(&[]).scopes(false), EHR_SCOPES_V2);
        assert_eq!(
            config(&["patient/Patient.rs", "patient/Patient.read"]).scopes(false),
            EHR_SCOPES_V2
        );
        assert_eq!(
            config(&["launch", "patient/*.read"]).scopes(false),
            EHR_SCOPES_V1
        );
        assert_eq!(
            config(&["patient/*.read"]).scopes(true),
            STANDALONE_SCOPES_V1
        );
    }

    #[test]
    fn grant_reads_context_and_fhir_user_from_id_token() {
        use base64::Engine as _;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"fhirUser": "Practitioner/7"}).to_string());
        let body = json!({
            "access_token": "a", "token_type": "bearer", "expires_in": 60,
            "patient": "p1", "id_token": format!("e30.{claims}.sig"),
        });
        let g = parse_grant(&body, 100).unwrap();
        assert_eq!(g.expires_at, 160);
        assert_eq!(g.patient.as_deref(), Some("p1"));
        assert_eq!(g.fhir_user.as_deref(), Some("Practitioner/7"));
        assert!(parse_grant(&json!({"access_token": "a", "token_type": "mac"}), 0).is_err());
    }

    #[test]
    fn state_must_match_exactly() {
        assert!(check_state(Some("s"), Some("s")).is_ok());
        assert!(check_state(Some("s"), Some("t")).is_err());
        assert!(check_state(None, Some("s")).is_err());
        assert!(check_state(Some("s"), None).is_err());
    }
}
