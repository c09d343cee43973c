//! SMART Backend Services (SMART App Launch 2.x, "Backend Services"): an access token from the
//! EHR's token endpoint by `client_credentials` with a `private_key_jwt` client assertion signed
//! ES384, cached until shortly before it expires. Concurrent callers share one token request.
//!
//! The assertion and the token are secrets: never logged, never in errors.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p384::ecdsa::signature::Signer as _;
use p384::ecdsa::{Signature, SigningKey};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::SmartConfig;
use crate::error::{Error, Result};

/// The assertion type of RFC 7523 client authentication.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token is renewed this long before its `expires_in` runs out.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Assertion lifetime; the spec caps it at five minutes.
const ASSERTION_LIFETIME: u64 = 300;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token client for one EHR.
pub struct SmartClient {
    http: reqwest::Client,
    config: SmartConfig,
    key: SigningKey,
    cached: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient")
            .field("client_id", &self.config.client_id)
            .field("kid", &self.config.kid)
            .finish_non_exhaustive()
    }
}

impl SmartClient {
    /// A client; fails when the private JWK is not a P-384 key.
    pub fn new(http: reqwest::Client, config: SmartConfig) -> Result<Self> {
        let secret = p384::SecretKey::from_jwk_str(&config.private_jwk)
            .map_err(|_| Error::Config("smart private_jwk is not a P-384 private JWK"))?;
        Ok(SmartClient {
            http,
            key: SigningKey::from(&secret),
            config,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one.
    pub async fn token(&self) -> Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.request_token().await?;
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets the cached token (after the FHIR server refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// The signed client assertion (a JWT: header `alg` ES384, `typ` JWT, `kid`; claims `iss` =
    /// `sub` = client id, `aud` = token URL, `exp` ≤ 5 minutes, unique `jti`).
    pub fn client_assertion(&self) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Config("system clock before 1970"))?
            .as_secs();
        let mut jti = [0u8; 16];
        OsRng.fill_bytes(&mut jti);
        let header = serde_json::json!({ "alg": "ES384", "typ": "JWT", "kid": self.config.kid });
        let claims = serde_json::json!({
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": self.config.token_url,
            "exp": now + ASSERTION_LIFETIME,
            "jti": hex::encode(jti),
        });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature: Signature = self.key.sign(input.as_bytes());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(input)
    }

    async fn request_token(&self) -> Result<(String, Duration)> {
        let assertion = self.client_assertion()?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.config.scope.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let response = self
            .http
            .post(&self.config.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|_| Error::EhrUnavailable { status: None })?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 | 400 => return Err(Error::EhrAuth { status }),
            429 | 500..=599 => {
                return Err(Error::EhrUnavailable {
                    status: Some(status),
                })
            }
            _ => return Err(Error::EhrRefused { status }),
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|_| Error::EhrRefused { status })?;
        // The spec says SHOULD give expires_in (≤ 5 minutes is common); assume 5 minutes if not.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(300));
        Ok((body.access_token, lifetime))
    }
}
