//! The small cryptography a SMART client needs: random opaque tokens (session cookie, `state`,
//! CSRF), PKCE S256 (RFC 7636), and the ES384 key that signs our `private_key_jwt` client
//! assertions (RFC 7523; SMART App Launch 2.x "Client Authentication: Asymmetric") with its
//! public JWKS, which the EHR fetches from the URL registered for this app.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p384::ecdsa::signature::Signer as _;
use p384::ecdsa::{Signature, SigningKey};
use rand_core::{OsRng, RngCore as _};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{LaunchError, Result};

/// 32 random bytes, base64url: cookie values, `state`, CSRF tokens, assertion `jti`s.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 hex of a token: what the database keeps instead of the cookie value.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison of two secrets (state, CSRF), so timing does not leak a prefix.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A PKCE pair: the verifier stays in the server session, the challenge goes to `/authorize`.
#[derive(Clone)]
pub struct Pkce {
    /// `code_verifier`: 43 characters of base64url (RFC 7636 §4.1 allows 43–128).
    pub verifier: String,
    /// `code_challenge` = BASE64URL(SHA256(verifier)), method `S256`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn generate() -> Self {
        let verifier = random_token();
        let challenge = s256_challenge(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The app's ES384 client-authentication key. `Debug` shows the `kid` only.
#[derive(Clone)]
pub struct ClientKey {
    key: SigningKey,
    kid: String,
    public_jwk: Value,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A new random key (development, tests; production loads one so the registered JWKS holds).
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::random(&mut OsRng))
    }

    /// From a private P-384 JWK (`{"kty":"EC","crv":"P-384","d":…,"x":…,"y":…}`).
    pub fn from_jwk_str(text: &str) -> Result<Self> {
        let secret = p384::SecretKey::from_jwk_str(text)
            .map_err(|_| LaunchError::Internal("client key is not a private P-384 JWK"))?;
        Ok(Self::from_signing_key(SigningKey::from(secret)))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        let x = point
            .x()
            .map(|x| URL_SAFE_NO_PAD.encode(x))
            .unwrap_or_default();
        let y = point
            .y()
            .map(|y| URL_SAFE_NO_PAD.encode(y))
            .unwrap_or_default();
        // RFC 7638 thumbprint: required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let public_jwk = json!({
            "kty": "EC", "crv": "P-384", "x": x, "y": y,
            "kid": kid, "alg": "ES384", "use": "sig", "key_ops": ["verify"],
        });
        ClientKey {
            key,
            kid,
            public_jwk,
        }
    }

    /// Key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS to publish (`{"keys":[…]}`), public members only.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk.clone()] })
    }

    /// The private JWK, for saving a generated key.
    pub fn to_private_jwk_string(&self) -> String {
        let secret = p384::SecretKey::from(self.key.as_nonzero_scalar());
        secret.to_jwk_string().to_string()
    }

    /// A client assertion for `token_endpoint` (SMART: `iss` = `sub` = client id, `aud` = token
    /// URL, `exp` ≤ 5 minutes ahead, unique `jti`), signed ES384.
    pub fn client_assertion(&self, client_id: &str, token_endpoint: &str, now: u64) -> String {
        let header = json!({ "alg": "ES384", "typ": "JWT", "kid": self.kid });
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "exp": now + 240,
            "iat": now,
            "jti": random_token(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

/// Verifies an ES384 compact JWS against a public JWK and returns its claims. For tests (the
/// mock EHR checks our assertions with it) and for anyone auditing the assertion format.
pub fn verify_es384(jws: &str, jwk: &Value) -> Option<Value> {
    let mut parts = jws.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "ES384" {
        return None;
    }
    if jwk.get("kty")?.as_str()? != "EC" || jwk.get("crv")?.as_str()? != "P-384" {
        return None;
    }
    let coord = |k: &str| -> Option<p384::FieldBytes> {
        let bytes: [u8; 48] = URL_SAFE_NO_PAD
            .decode(jwk.get(k)?.as_str()?)
            .ok()?
            .try_into()
            .ok()?;
        Some(bytes.into())
    };
    let point = p384::EncodedPoint::from_affine_coordinates(&coord("x")?, &coord("y")?, false);
    let vk = p384::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?;
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    use p384::ecdsa::signature::Verifier as _;
    vk.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn assertion_verifies_with_published_jwks_and_not_another_key() {
        let key = ClientKey::generate();
        let jws = key.client_assertion("app", "https://ehr.example/token", 1000);
        let jwk = key.jwks()["keys"][0].clone();
        let claims = verify_es384(&jws, &jwk).unwrap();
        assert_eq!(claims["iss"], "app");
        assert_eq!(claims["sub"], "app");
        assert_eq!(claims["aud"], "https://ehr.example/token");
        assert_eq!(claims["exp"], 1240);
        let other = ClientKey::generate().jwks()["keys"][0].clone();
        assert!(verify_es384(&jws, &other).is_none());
        assert!(!format!("{key:?}").contains(&key.to_private_jwk_string()));
        let again = ClientKey::from_jwk_str(&key.to_private_jwk_string()).unwrap();
        assert_eq!(again.kid(), key.kid());
    }

    #[test]
    fn same_secret_compares_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
