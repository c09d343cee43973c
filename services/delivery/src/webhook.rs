//! Standard Webhooks signing (<https://www.standardwebhooks.com/>, spec `standard-webhooks.md`):
//! headers `webhook-id`, `webhook-timestamp` (epoch seconds) and `webhook-signature:
//! v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, where the per-endpoint secret is
//! `whsec_<base64(key)>`. Hand-written on the workspace's `hmac`/`sha2`/`base64` (about 60 lines)
//! rather than the `standardwebhooks` crate, which brings its own `time`/`http` versions; the
//! tests check it against the spec's published example.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

/// Header carrying the message id (stable across retries of one message).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time, epoch seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying `v1,<base64>` signatures, space-separated.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a secret or signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `whsec_<base64>` or too short.
    #[error("malformed webhook secret")]
    BadSecret,
    /// No `v1` signature matched.
    #[error("no matching signature")]
    Mismatch,
    /// Timestamp outside the tolerance window.
    #[error("timestamp outside tolerance")]
    Stale,
}

impl WebhookSecret {
    /// A fresh random 32-byte secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Parses `whsec_<base64>` (the prefix is optional, as the reference libraries accept).
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let b64 = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = STANDARD
            .decode(b64)
            .map_err(|_| SignatureError::BadSecret)?;
        if key.len() < 24 {
            return Err(SignatureError::BadSecret);
        }
        Ok(Self(key))
    }

    /// `whsec_<base64>`, the form shown once to the endpoint owner and stored.
    pub fn to_wire(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64>` over `{id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Verifies a `webhook-signature` header value (constant-time compare) and that `timestamp`
    /// is within `tolerance_secs` of `now`.
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
        header: &str,
        now: i64,
        tolerance_secs: i64,
    ) -> Result<(), SignatureError> {
        if (now - timestamp).abs() > tolerance_secs {
            return Err(SignatureError::Stale);
        }
        let matched = header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(candidate) = STANDARD.decode(b64) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
                return false;
            };
            mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&candidate).is_ok()
        });
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// A message id for `webhook-id`: `msg_` + the delivery id + the credential id, so retries of
/// one push share an id (receivers dedupe on it) and different pushes never do.
pub fn message_id(delivery_id: &str) -> String {
    format!("msg_{delivery_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks spec and its reference test suites.
    #[test]
    fn matches_the_spec_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        secret
            .verify(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                body,
                &sig,
                1_614_265_331,
                300,
            )
            .unwrap();
        assert_eq!(
            secret.verify("msg_other", 1_614_265_330, body, &sig, 1_614_265_331, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secret.verify(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                body,
                &sig,
                1_614_266_000,
                300
            ),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn secrets_round_trip_and_hide() {
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&s.to_wire()).unwrap(), s);
        assert!(!format!("{s:?}").contains(&s.to_wire()));
        assert_eq!(
            WebhookSecret::parse("whsec_!!"),
            Err(SignatureError::BadSecret)
        );
    }
}
