//! Compact JWS with the SMART Health Cards header (rules 17–20).
//!
//! Generic JWT libraries do not inflate `zip:"DEF"` in a JWS (rule 20), so the compact form is
//! assembled and taken apart here, and the signature is the raw 64-byte `R‖S` (rule 19).

use serde_json::Value;

use crate::b64;
use crate::error::{Error, Problem, ProblemKind};

/// The protected header vaxcred emits, member order as published: `{"zip":"DEF","alg":"ES256","kid":…}`.
pub fn header_json(kid: &str) -> String {
    format!(r#"{{"zip":"DEF","alg":"ES256","kid":"{kid}"}}"#)
}

/// A compact JWS taken apart, before any signature check.
#[derive(Debug, Clone)]
pub struct ParsedJws<'a> {
    /// `b64(header).b64(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    /// Decoded header.
    pub header: Value,
    /// Decoded (still compressed, when `zip` is set) payload bytes.
    pub payload: Vec<u8>,
    /// Decoded signature bytes.
    pub signature: Vec<u8>,
}

impl ParsedJws<'_> {
    /// `alg` of the header.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }
    /// `kid` of the header.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
    /// `zip` of the header.
    pub fn zip(&self) -> Option<&str> {
        self.header.get("zip").and_then(Value::as_str)
    }

    /// Header problems per rule 17.
    pub fn header_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.alg() != Some("ES256") {
            problems.push(Problem::error(
                ProblemKind::JwsHeader,
                "JWS header `alg` must be `ES256` (rule 17)",
            ));
        }
        if self.zip() != Some("DEF") {
            problems.push(Problem::error(
                ProblemKind::JwsHeader,
                "JWS header `zip` must be `DEF` (rule 17)",
            ));
        }
        if self.kid().is_none_or(str::is_empty) {
            problems.push(Problem::error(
                ProblemKind::JwsHeader,
                "JWS header lacks `kid` (rule 17)",
            ));
        }
        problems
    }
}

/// Splits a compact JWS into its three parts and decodes them.
pub fn parse(jws: &str) -> Result<ParsedJws<'_>, Problem> {
    let malformed = |why: &str| Problem::error(ProblemKind::JwsMalformed, why.to_owned());
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a compact JWS has exactly three `.`-separated parts",
        ));
    };
    let header_bytes = b64::decode(h).ok_or_else(|| malformed("JWS header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&header_bytes).map_err(|_| malformed("JWS header is not JSON"))?;
    if !header.is_object() {
        return Err(malformed("JWS header is not a JSON object"));
    }
    let payload = b64::decode(p).ok_or_else(|| malformed("JWS payload is not base64url"))?;
    let signature = b64::decode(s).ok_or_else(|| malformed("JWS signature is not base64url"))?;
    let signing_input = jws.get(..h.len() + 1 + p.len()).unwrap_or_default();
    Ok(ParsedJws {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// Assembles `b64(header).b64(payload)` into `out` (cleared first).
pub fn signing_input_into(header_b64: &str, compressed_payload: &[u8], out: &mut String) {
    out.clear();
    out.push_str(header_b64);
    out.push('.');
    b64::encode_into(compressed_payload, out);
}

/// Appends `.b64(signature)` to a signing input, giving the compact JWS.
pub fn finish(mut signing_input: String, signature: &[u8; 64]) -> String {
    signing_input.push('.');
    b64::encode_into(signature, &mut signing_input);
    signing_input
}

/// Signs an already-compressed payload; a convenience for tests and tools that build odd JWS.
pub fn sign_compressed(
    signer: &dyn crate::keys::JwsSigner,
    header: &str,
    compressed_payload: &[u8],
) -> Result<String, Error> {
    let mut input = String::new();
    signing_input_into(
        &b64::encode(header.as_bytes()),
        compressed_payload,
        &mut input,
    );
    let sig = signer.sign_es256(input.as_bytes())?;
    Ok(finish(input, &sig))
}
