//! base64url engines: strict for JWE segments (RFC 7515 §2: no padding, canonical), lenient on
//! padding for `shlink:/` payloads, which people copy around and tools sometimes pad.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, DecodeError, Engine as _};

/// Unpadded, canonical base64url: what this crate emits, and what JWE segments must be.
pub(crate) const URL: GeneralPurpose = URL_SAFE_NO_PAD;

/// base64url accepting input with or without `=` padding.
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Strict decode (JWE segments, keys).
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    URL.decode(text)
}

/// Padding-tolerant decode (link payloads).
pub(crate) fn decode_lenient(text: &str) -> Result<Vec<u8>, DecodeError> {
    URL_LENIENT.decode(text)
}
