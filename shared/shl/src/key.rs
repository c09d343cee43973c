//! Link keys and random identifiers (checklist N.72, N.73, N.77, O.84).
//!
//! Every secret here is 32 bytes from the OS RNG rendered as 43 base64url characters: the link
//! key, the manifest id in the manifest URL and the file-location tokens, so each carries
//! 256 bits of entropy, which N.73 requires of the manifest URL.

use std::fmt;

use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::b64;
use crate::error::{Error, Result};

/// Length of a 32-byte value in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// The symmetric key of one link: 32 bytes, shared with the receiver in the payload's `key`.
///
/// Generated once per link and reused for every file and update of that link (N.77). `Debug`
/// never prints it; memory is wiped on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ShlKey([u8; 32]);

impl ShlKey {
    /// A fresh key from the OS RNG.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| Error::Random)?;
        Ok(Self(bytes))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the payload's `key`: 43 base64url characters decoding to 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Self> {
        if text.len() != TOKEN_LEN {
            return Err(Error::InvalidKey);
        }
        let mut bytes = b64::decode(text).map_err(|_| Error::InvalidKey)?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::InvalidKey);
        bytes.zeroize();
        key.map(Self)
    }

    /// The 43-character base64url form used in the payload.
    pub fn to_base64url(&self) -> String {
        b64::URL.encode(self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// RFC 7638 thumbprint of the key as an `oct` JWK (`{"k":…,"kty":"oct"}`): the `kid` that the
    /// HL7 examples and the validator's mock server put in JWE headers. It reveals nothing usable
    /// about the key (SHA-256 of 256 random bits).
    pub fn thumbprint(&self) -> String {
        let mut k = self.to_base64url();
        let mut jwk = format!("{{\"k\":\"{k}\",\"kty\":\"oct\"}}");
        let digest = Sha256::digest(jwk.as_bytes());
        k.zeroize();
        jwk.zeroize();
        b64::URL.encode(digest)
    }
}

impl fmt::Debug for ShlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShlKey(<redacted>)")
    }
}

/// 32 random bytes as 43 base64url characters (256 bits of entropy).
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| Error::Random)?;
    Ok(b64::URL.encode(bytes))
}

/// A manifest id for the manifest URL path (N.73: ≥ 256 bits of entropy).
pub fn generate_manifest_id() -> Result<String> {
    random_token()
}

/// A file-location token for a short-lived `location` URL (O.84); unguessable because the
/// location is dereferenceable without further authentication.
pub fn generate_file_token() -> Result<String> {
    random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_43_char_base64url_and_distinct() {
        let a = random_token().unwrap();
        let b = generate_manifest_id().unwrap();
        let c = generate_file_token().unwrap();
        for t in [&a, &b, &c] {
            assert_eq!(t.len(), TOKEN_LEN);
            assert!(t
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        }
        assert!(a != b && b != c && a != c);
        let k = ShlKey::generate().unwrap();
        assert_eq!(ShlKey::from_base64url(&k.to_base64url()).unwrap(), k);
        assert_eq!(format!("{k:?}"), "ShlKey(<redacted>)");
    }

    #[test]
    fn rejects_keys_of_wrong_size() {
        assert_eq!(ShlKey::from_base64url("abc"), Err(Error::InvalidKey));
        // 44 chars with padding: a 32-byte key written with `=` is not the 43-char form.
        let padded = format!("{}=", ShlKey::generate().unwrap().to_base64url());
        assert_eq!(ShlKey::from_base64url(&padded), Err(Error::InvalidKey));
        // 43 chars but not base64url.
        assert_eq!(
            ShlKey::from_base64url(&"!".repeat(43)),
            Err(Error::InvalidKey)
        );
    }
}
