//! Compact JWE with `alg:"dir"` and `enc:"A256GCM"`, the SHL file encryption (checklist Q.88–Q.91).
//!
//! Encryption always writes `cty` (some receivers refuse files without it, DESIGN §10) and a
//! fresh random 96-bit IV, because the link key is reused for every file and update (Q.90).
//! Decryption is lenient where published files differ from the text (no `cty`, an extra `kid`,
//! S) and strict where safety is at stake: only `dir`/`A256GCM`, an empty encrypted-key segment,
//! canonical base64url (so a tampered segment cannot decode to the same bytes), no unknown
//! `crit`, and a cap on the inflated size.

use std::fmt;

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce, Tag};
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use serde::Serialize;
use serde_json::Value;

use crate::b64;
use crate::error::{Error, Result};
use crate::key::ShlKey;

/// The only key-management algorithm: the link key is the content key.
pub const ALG_DIR: &str = "dir";
/// The only content encryption.
pub const ENC_A256GCM: &str = "A256GCM";
/// The only compression: raw DEFLATE (RFC 1951, no zlib header).
pub const ZIP_DEF: &str = "DEF";
/// Default cap on a decrypted (and inflated) file: far above any card or IPS bundle, low enough
/// that a DEFLATE bomb cannot exhaust a worker.
pub const DEFAULT_MAX_PLAINTEXT: usize = 16 * 1024 * 1024;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// How to encrypt one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EncryptOptions {
    content_type: String,
    compress: bool,
    kid: bool,
}

impl EncryptOptions {
    /// Encrypt a file of this content type (`cty`, e.g. `application/smart-health-card`).
    pub fn new(content_type: impl Into<String>) -> Self {
        Self {
            content_type: content_type.into(),
            compress: false,
            kid: false,
        }
    }

    /// Raw-DEFLATE the plaintext first and set `zip:"DEF"` (Q.89).
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Add `kid` = the key's RFC 7638 thumbprint, as the HL7 examples do (optional; helps a
    /// receiver holding several link keys).
    pub fn kid(mut self, on: bool) -> Self {
        self.kid = on;
        self
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    enc: &'static str,
    cty: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    zip: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Encrypts `plaintext` as a compact JWE (`header..iv.ciphertext.tag`).
pub fn encrypt(key: &ShlKey, plaintext: &[u8], options: &EncryptOptions) -> Result<String> {
    if options.content_type.is_empty() {
        return Err(Error::InvalidField { field: "cty" });
    }
    let header = Header {
        alg: ALG_DIR,
        enc: ENC_A256GCM,
        cty: &options.content_type,
        zip: options.compress.then_some(ZIP_DEF),
        kid: options.kid.then(|| key.thumbprint()),
    };
    let header_json = serde_json::to_vec(&header).map_err(|_| Error::EncryptionFailed)?;
    let header_b64 = b64::URL.encode(header_json);

    let mut buffer = if options.compress {
        deflate(plaintext)?
    } else {
        plaintext.to_vec()
    };
    let mut iv = [0u8; IV_LEN];
    OsRng.try_fill_bytes(&mut iv).map_err(|_| Error::Random)?;
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(iv), header_b64.as_bytes(), &mut buffer)
        .map_err(|_| Error::EncryptionFailed)?;

    let mut out = String::with_capacity(header_b64.len() + 4 + 16 + buffer.len() * 4 / 3 + 24);
    out.push_str(&header_b64);
    out.push_str("..");
    b64::URL.encode_string(iv, &mut out);
    out.push('.');
    b64::URL.encode_string(&buffer, &mut out);
    out.push('.');
    b64::URL.encode_string(tag, &mut out);
    Ok(out)
}

/// A decrypted file and what its protected header said.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptedFile {
    /// `cty`, when the sender set it (published files often omit it).
    pub content_type: Option<String>,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// Whether the plaintext was `zip:"DEF"`-compressed on the wire.
    pub compressed: bool,
    /// The plaintext, inflated if it was compressed.
    pub plaintext: Vec<u8>,
}

impl fmt::Debug for DecryptedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptedFile")
            .field("content_type", &self.content_type)
            .field("kid", &self.kid)
            .field("compressed", &self.compressed)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// Decrypts a compact JWE with the link key, inflating to at most [`DEFAULT_MAX_PLAINTEXT`].
pub fn decrypt(key: &ShlKey, jwe: &str) -> Result<DecryptedFile> {
    decrypt_with_limit(key, jwe, DEFAULT_MAX_PLAINTEXT)
}

/// Decrypts a compact JWE; the plaintext (after inflating) may not exceed `max_plaintext` bytes.
pub fn decrypt_with_limit(key: &ShlKey, jwe: &str, max_plaintext: usize) -> Result<DecryptedFile> {
    let jwe = jwe.trim();
    let mut parts = jwe.split('.');
    let (Some(header_b64), Some(encrypted_key), Some(iv_b64), Some(ct_b64), Some(tag_b64), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Error::MalformedJwe {
            reason: "expected 5 segments",
        });
    };

    let header_json =
        b64::decode(header_b64).map_err(|_| Error::InvalidBase64 { what: "jwe header" })?;
    let header: Value = serde_json::from_slice(&header_json)
        .map_err(|_| Error::InvalidJson { what: "jwe header" })?;
    let Value::Object(header) = header else {
        return Err(Error::InvalidJson { what: "jwe header" });
    };
    let text = |name: &'static str| -> Result<Option<String>> {
        match header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::MalformedJwe {
                reason: "header parameter is not a string",
            }),
        }
    };
    if text("alg")?.as_deref() != Some(ALG_DIR) {
        return Err(Error::UnsupportedAlg);
    }
    if text("enc")?.as_deref() != Some(ENC_A256GCM) {
        return Err(Error::UnsupportedEnc);
    }
    if header.contains_key("crit") {
        return Err(Error::UnsupportedCrit);
    }
    let compressed = match text("zip")?.as_deref() {
        None => false,
        Some(ZIP_DEF) => true,
        Some(_) => return Err(Error::UnsupportedZip),
    };
    let content_type = text("cty")?;
    let kid = text("kid")?;
    if !encrypted_key.is_empty() {
        return Err(Error::EncryptedKeyNotEmpty);
    }

    let iv = b64::decode(iv_b64).map_err(|_| Error::InvalidBase64 { what: "iv" })?;
    let iv = <[u8; IV_LEN]>::try_from(iv.as_slice()).map_err(|_| Error::MalformedJwe {
        reason: "iv must be 96 bits",
    })?;
    let tag = b64::decode(tag_b64).map_err(|_| Error::InvalidBase64 { what: "tag" })?;
    let tag = <[u8; TAG_LEN]>::try_from(tag.as_slice()).map_err(|_| Error::MalformedJwe {
        reason: "tag must be 128 bits",
    })?;
    let mut buffer =
        b64::decode(ct_b64).map_err(|_| Error::InvalidBase64 { what: "ciphertext" })?;
    if !compressed && buffer.len() > max_plaintext {
        return Err(Error::TooLarge {
            limit: max_plaintext,
        });
    }

    let cipher = Aes256Gcm::new(key.as_bytes().into());
    cipher
        .decrypt_in_place_detached(
            &Nonce::from(iv),
            header_b64.as_bytes(),
            &mut buffer,
            &Tag::from(tag),
        )
        .map_err(|_| Error::DecryptionFailed)?;

    let plaintext = if compressed {
        inflate(&buffer, max_plaintext)?
    } else {
        buffer
    };
    Ok(DecryptedFile {
        content_type,
        kid,
        compressed,
        plaintext,
    })
}

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
    let mut out = vec![0u8; compressor.deflate_compress_bound(data.len())];
    let n = compressor
        .deflate_compress(data, &mut out)
        .map_err(|_| Error::EncryptionFailed)?;
    out.truncate(n);
    Ok(out)
}

/// Raw inflate with a hard cap. libdeflate needs the output buffer up front, so grow it
/// geometrically up to the cap: at most ~log2(cap) attempts, never more than `cap` bytes held.
fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>> {
    let mut decompressor = libdeflater::Decompressor::new();
    let mut size = data
        .len()
        .saturating_mul(4)
        .clamp(4096, cap.max(1))
        .min(cap);
    loop {
        let mut out = vec![0u8; size];
        match decompressor.deflate_decompress(data, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) => {
                if size >= cap {
                    return Err(Error::TooLarge { limit: cap });
                }
                size = size.saturating_mul(2).min(cap);
            }
            Err(libdeflater::DecompressionError::BadData) => return Err(Error::InvalidDeflate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ShlKey {
        ShlKey::from_bytes([9; 32])
    }

    #[test]
    fn header_always_has_cty_and_optional_zip_and_kid() {
        let jwe = encrypt(
            &key(),
            b"hello",
            &EncryptOptions::new("application/smart-health-card")
                .compress(true)
                .kid(true),
        )
        .unwrap();
        let header = b64::decode(jwe.split('.').next().unwrap()).unwrap();
        let expected = format!(
            r#"{{"alg":"dir","enc":"A256GCM","cty":"application/smart-health-card","zip":"DEF","kid":"{}"}}"#,
            key().thumbprint()
        );
        assert_eq!(String::from_utf8(header).unwrap(), expected);
        let out = decrypt(&key(), &jwe).unwrap();
        assert_eq!(out.plaintext, b"hello");
        assert!(out.compressed);
    }

    #[test]
    fn inflate_cap_stops_bombs() {
        let big = vec![0u8; 1_000_000];
        let jwe = encrypt(&key(), &big, &EncryptOptions::new("a/b").compress(true)).unwrap();
        assert!(jwe.len() < 10_000);
        assert_eq!(
            decrypt_with_limit(&key(), &jwe, 999_999).unwrap_err(),
            Error::TooLarge { limit: 999_999 }
        );
        assert_eq!(
            decrypt_with_limit(&key(), &jwe, 1_000_000)
                .unwrap()
                .plaintext,
            big
        );
        let plain = encrypt(&key(), &big, &EncryptOptions::new("a/b")).unwrap();
        assert_eq!(
            decrypt_with_limit(&key(), &plain, 10).unwrap_err(),
            Error::TooLarge { limit: 10 }
        );
    }

    #[test]
    fn empty_content_type_is_refused() {
        assert_eq!(
            encrypt(&key(), b"x", &EncryptOptions::new("")).unwrap_err(),
            Error::InvalidField { field: "cty" }
        );
    }
}
