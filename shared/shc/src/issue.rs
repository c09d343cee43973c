//! Issuing a card: bundle → minimized bundle → payload → raw DEFLATE → ES256 JWS → `shc:/` text.
//!
//! One [`CardIssuer`] per worker: it keeps the DEFLATE compressor, the encoded header and scratch
//! buffers across cards, because allocating them per card costs more than the work itself
//! (DESIGN.md §10). QR *images* are not made here: they cost ~30× the rest of the card, so they are
//! rendered on request from the stored JWS ([`crate::qr`]).

use std::sync::Arc;

use serde_json::Value;

use crate::deflate::Compressor;
use crate::error::Error;
use crate::keys::JwsSigner;
use crate::payload::{write_payload, Claims};
use crate::{b64, jws, minimize, qr, MAX_SINGLE_QR_JWS};

/// A signed card, ready to store: the JWS and its `shc:/` numeric QR text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCard {
    /// Compact JWS.
    pub jws: String,
    /// `shc:/…` text of the single QR code.
    pub qr_text: String,
    /// `kid` of the signing key.
    pub kid: String,
}

/// Issues cards with one signer, reusing its compressor and buffers.
pub struct CardIssuer {
    signer: Arc<dyn JwsSigner>,
    header_b64: String,
    compressor: Compressor,
    payload: Vec<u8>,
    compressed: Vec<u8>,
    allow_insecure_iss: bool,
}

impl std::fmt::Debug for CardIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardIssuer")
            .field("kid", &self.signer.kid())
            .finish_non_exhaustive()
    }
}

impl CardIssuer {
    /// An issuer signing with `signer`.
    pub fn new(signer: Arc<dyn JwsSigner>) -> Self {
        CardIssuer {
            header_b64: b64::encode(jws::header_json(signer.kid()).as_bytes()),
            signer,
            compressor: Compressor::new(),
            payload: Vec::with_capacity(4096),
            compressed: Vec::with_capacity(2048),
            allow_insecure_iss: false,
        }
    }

    /// Development only: accept an `http://` `iss` (rule 2 forbids it; verifiers reject such
    /// cards). Lets a developer's `vaxcred serve` on a loopback address issue cards at all.
    pub fn set_allow_insecure_iss(&mut self, allow: bool) {
        self.allow_insecure_iss = allow;
    }

    /// `kid` of the signer.
    pub fn kid(&self) -> &str {
        self.signer.kid()
    }

    /// Issues a card from FHIR bundle JSON text (minimized here).
    pub fn issue_json(&mut self, bundle_json: &[u8], claims: &Claims) -> Result<IssuedCard, Error> {
        let mut bundle: Value = serde_json::from_slice(bundle_json)
            .map_err(|e| Error::Json(format!("bundle: {}", e.classify_name())))?;
        self.issue(&mut bundle, claims)
    }

    /// Minimizes `bundle` in place (rules 10–16) and issues a card from it.
    pub fn issue(&mut self, bundle: &mut Value, claims: &Claims) -> Result<IssuedCard, Error> {
        minimize::minimize_bundle(bundle)?;
        self.issue_minimized(bundle, claims)
    }

    /// Issues a card from a bundle that is already minimized, exactly as given.
    pub fn issue_minimized(
        &mut self,
        bundle: &Value,
        claims: &Claims,
    ) -> Result<IssuedCard, Error> {
        let jws = self.sign_payload_of(bundle, claims)?;
        if jws.len() > MAX_SINGLE_QR_JWS {
            return Err(Error::TooLargeForQr {
                jws_len: jws.len(),
                max: MAX_SINGLE_QR_JWS,
            });
        }
        let qr_text = qr::numeric_text(&jws)?;
        Ok(IssuedCard {
            jws,
            qr_text,
            kid: self.signer.kid().to_owned(),
        })
    }

    /// Builds, compresses and signs the payload for `bundle` without any QR size limit (for
    /// cards shared only as files or links).
    pub fn sign_payload_of(&mut self, bundle: &Value, claims: &Claims) -> Result<String, Error> {
        match claims.validate() {
            Err(_) if self.allow_insecure_iss && claims.iss.starts_with("http://") => {
                let mut as_https = claims.clone();
                as_https.iss = claims.iss.replacen("http://", "https://", 1);
                as_https.validate()?;
            }
            other => other?,
        }
        write_payload(claims, bundle, &mut self.payload)?;
        self.compressor
            .compress_into(&self.payload, &mut self.compressed)?;
        let mut input =
            String::with_capacity(self.header_b64.len() + self.compressed.len() * 4 / 3 + 96);
        jws::signing_input_into(&self.header_b64, &self.compressed, &mut input);
        let signature = self.signer.sign_es256(input.as_bytes())?;
        Ok(jws::finish(input, &signature))
    }

    /// The minified payload bytes of the last card (for tests and diagnostics).
    pub fn last_payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Helper for the serde_json error category without its position text.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}
