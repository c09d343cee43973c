//! JWS payload: the claims of a health card and their minified bytes (rules 1–9).
//!
//! Member order is part of the contract (rule 9): `iss`, `nbf`, `vc` {`type`, `credentialSubject`
//! {`fhirVersion`, `fhirBundle`}, `rid`}, `exp` — the order of every published example — so that a
//! payload built here from an example's bundle and claims is byte-identical to the example.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::error::Error;
use crate::{b64, FHIR_VERSION, HEALTH_CARD_TYPE};

/// A JWT NumericDate (seconds since the epoch). The published examples use fractional seconds
/// (rule 3), so the JSON number is kept as it was read; vaxcred itself issues whole seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NumericDate(Number);

impl NumericDate {
    /// Whole seconds since the epoch.
    pub fn from_secs(secs: u64) -> Self {
        NumericDate(Number::from(secs))
    }

    /// The current time, in whole seconds.
    pub fn now() -> Self {
        Self::from_secs(now_secs())
    }

    /// A JSON number as read from a payload.
    pub fn from_number(n: Number) -> Self {
        NumericDate(n)
    }

    /// Seconds as a float (fractions kept).
    pub fn as_f64(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }

    /// The JSON number.
    pub fn as_number(&self) -> &Number {
        &self.0
    }
}

/// Seconds since the epoch now (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The claims around the FHIR bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Issuer base URL: https, no trailing slash (rule 2).
    pub iss: String,
    /// Issuance time (rule 3).
    pub nbf: NumericDate,
    /// Optional expiry (rule 4).
    pub exp: Option<NumericDate>,
    /// Optional revocation id (rule 28).
    pub rid: Option<String>,
    /// Extra `vc.type` values after the health-card type. Deprecated since v1.4 (rule 5): vaxcred
    /// issues none; kept so payloads of older issuers can be rebuilt exactly.
    pub extra_types: Vec<String>,
}

impl Claims {
    /// Claims issued now by `iss`, without expiry or `rid`.
    pub fn new(iss: impl Into<String>) -> Self {
        Claims {
            iss: iss.into(),
            nbf: NumericDate::now(),
            exp: None,
            rid: None,
            extra_types: Vec::new(),
        }
    }

    /// Reads the claims of a parsed payload (everything but the bundle).
    pub fn from_payload(payload: &Value) -> Result<Self, Error> {
        let iss = payload
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Claim("missing `iss`".into()))?;
        let nbf = payload
            .get("nbf")
            .and_then(|v| v.as_number().cloned())
            .ok_or_else(|| Error::Claim("missing or non-numeric `nbf`".into()))?;
        let exp = match payload.get("exp") {
            None => None,
            Some(v) => Some(NumericDate(
                v.as_number()
                    .cloned()
                    .ok_or_else(|| Error::Claim("non-numeric `exp`".into()))?,
            )),
        };
        let vc = payload.get("vc");
        let rid = vc
            .and_then(|vc| vc.get("rid"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let extra_types = vc
            .and_then(|vc| vc.get("type"))
            .and_then(Value::as_array)
            .map(|types| {
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != HEALTH_CARD_TYPE)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Claims {
            iss: iss.to_owned(),
            nbf: NumericDate(nbf),
            exp,
            rid,
            extra_types,
        })
    }

    /// Checks the issuer-side rules: `iss` https without trailing slash (rule 2), `rid` base64url
    /// and at most 24 characters (rule 28).
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(why) = issuer_url_problem(&self.iss) {
            return Err(Error::Claim(why.into()));
        }
        if let Some(rid) = &self.rid {
            if rid.is_empty() || rid.len() > 24 || !b64::is_base64url(rid) {
                return Err(Error::Claim(
                    "`rid` must be 1–24 base64url characters (rule 28)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Why an `iss` breaks rule 2, if it does.
pub fn issuer_url_problem(iss: &str) -> Option<&'static str> {
    if !iss.starts_with("https://") {
        return Some("`iss` must be an https URL (rule 2)");
    }
    if iss.ends_with('/') {
        return Some("`iss` must not end with `/` (rule 2)");
    }
    if iss.len() <= "https://".len() || iss.chars().any(|c| c.is_whitespace()) {
        return Some("`iss` is not a URL (rule 2)");
    }
    None
}

/// Writes the minified payload for `bundle` and `claims` into `out` (cleared first).
pub fn write_payload(claims: &Claims, bundle: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    let err = |e: serde_json::Error| Error::Json(e.to_string());
    out.extend_from_slice(b"{\"iss\":");
    serde_json::to_writer(&mut *out, &claims.iss).map_err(err)?;
    out.extend_from_slice(b",\"nbf\":");
    serde_json::to_writer(&mut *out, claims.nbf.as_number()).map_err(err)?;
    out.extend_from_slice(b",\"vc\":{\"type\":[");
    serde_json::to_writer(&mut *out, HEALTH_CARD_TYPE).map_err(err)?;
    for t in &claims.extra_types {
        out.push(b',');
        serde_json::to_writer(&mut *out, t).map_err(err)?;
    }
    out.extend_from_slice(b"],\"credentialSubject\":{\"fhirVersion\":");
    serde_json::to_writer(&mut *out, FHIR_VERSION).map_err(err)?;
    out.extend_from_slice(b",\"fhirBundle\":");
    serde_json::to_writer(&mut *out, bundle).map_err(err)?;
    out.push(b'}');
    if let Some(rid) = &claims.rid {
        out.extend_from_slice(b",\"rid\":");
        serde_json::to_writer(&mut *out, rid).map_err(err)?;
    }
    out.push(b'}');
    if let Some(exp) = &claims.exp {
        out.extend_from_slice(b",\"exp\":");
        serde_json::to_writer(&mut *out, exp.as_number()).map_err(err)?;
    }
    out.write_all(b"}")
        .map_err(|e| Error::Json(e.to_string()))?;
    Ok(())
}

/// The minified payload for `bundle` and `claims`.
pub fn payload_bytes(claims: &Claims, bundle: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(2048);
    write_payload(claims, bundle, &mut out)?;
    Ok(out)
}
