//! The SHL payload (`url`, `key`, `exp`, `flag`, `label`, `v`): strict building, lenient parsing
//! (checklist N.72–N.77, S).
//!
//! Building enforces every SHALL of the sharer's side; parsing follows the receiver's side:
//! unknown properties and flags are ignored (N.75, N.76), the HL7 example's `exp` written as a
//! string of milliseconds is accepted and normalised to seconds (S), and a newer `v` is reported
//! as [`Error::UnsupportedVersion`] before anything else is read, so the caller can tell the user
//! and skip the manifest request (N.75).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::key::ShlKey;

/// The payload version this library builds and understands.
pub const SUPPORTED_VERSION: u64 = 1;
/// Maximum `label` length in characters (N.72).
pub const MAX_LABEL_CHARS: usize = 80;
/// Maximum `url` length in characters (N.73).
pub const MAX_URL_CHARS: usize = 128;

/// An `exp` at or above this is read as milliseconds on parse and refused on build: 10^11 seconds is the year 5138, while
/// 10^11 milliseconds is 1973, so no real expiry is ambiguous.
pub const MS_THRESHOLD: u64 = 100_000_000_000;

/// The payload's single-letter flags. Unknown letters are dropped on parse (N.75); output is
/// always alphabetical (N.72).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    long_term: bool,
    passcode: bool,
    direct_file: bool,
}

impl Flags {
    /// `L`: long-term link, the manifest may change and can be polled.
    pub fn long_term(self) -> bool {
        self.long_term
    }

    /// `P`: a passcode is required to fetch the manifest.
    pub fn passcode(self) -> bool {
        self.passcode
    }

    /// `U`: `url` is a single encrypted file fetched with `GET ?recipient=` (P.87).
    pub fn direct_file(self) -> bool {
        self.direct_file
    }

    /// Reads a `flag` string, ignoring unknown letters; refuses `U` with `P` (N.72).
    pub fn parse(text: &str) -> Result<Self> {
        let mut flags = Self::default();
        for c in text.chars() {
            match c {
                'L' => flags.long_term = true,
                'P' => flags.passcode = true,
                'U' => flags.direct_file = true,
                _ => {}
            }
        }
        flags.check()?;
        Ok(flags)
    }

    fn check(self) -> Result<()> {
        if self.passcode && self.direct_file {
            return Err(Error::FlagConflict);
        }
        Ok(())
    }

    /// The wire form, letters in alphabetical order; empty when no flag is set.
    pub fn as_wire(self) -> String {
        let mut s = String::with_capacity(3);
        if self.long_term {
            s.push('L');
        }
        if self.passcode {
            s.push('P');
        }
        if self.direct_file {
            s.push('U');
        }
        s
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        !(self.long_term || self.passcode || self.direct_file)
    }
}

/// A SMART Health Link payload.
///
/// `Debug` hides `url`, `key` and `label`: the url and key together open the link, and labels
/// often name the patient.
#[derive(Clone, PartialEq, Eq)]
pub struct ShlPayload {
    url: String,
    key: ShlKey,
    exp: Option<u64>,
    flags: Flags,
    label: Option<String>,
    version: u64,
}

impl fmt::Debug for ShlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShlPayload")
            .field("url", &"<redacted>")
            .field("key", &self.key)
            .field("exp", &self.exp)
            .field("flags", &self.flags.as_wire())
            .field("label", &self.label.as_ref().map(|_| "<redacted>"))
            .field("v", &self.version)
            .finish()
    }
}

/// Builds a payload that satisfies every sharer-side rule of N.72–N.73.
#[derive(Debug, Clone)]
#[must_use]
pub struct ShlPayloadBuilder {
    payload: ShlPayload,
}

impl ShlPayloadBuilder {
    /// Expiry hint, epoch seconds (below 10^11, checked by [`Self::build`]).
    pub fn exp(mut self, epoch_seconds: u64) -> Self {
        self.payload.exp = Some(epoch_seconds);
        self
    }

    /// Sets or clears `L`.
    pub fn long_term(mut self, on: bool) -> Self {
        self.payload.flags.long_term = on;
        self
    }

    /// Sets or clears `P`.
    pub fn passcode(mut self, on: bool) -> Self {
        self.payload.flags.passcode = on;
        self
    }

    /// Sets or clears `U`.
    pub fn direct_file(mut self, on: bool) -> Self {
        self.payload.flags.direct_file = on;
        self
    }

    /// Short description shown to the receiver (≤ 80 characters).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.payload.label = Some(label.into());
        self
    }

    /// Checks the rules and returns the payload (`v` is always 1).
    pub fn build(self) -> Result<ShlPayload> {
        let p = self.payload;
        let url_len = p.url.chars().count();
        if url_len == 0 || url_len > MAX_URL_CHARS {
            return Err(Error::UrlLength { len: url_len });
        }
        if let Some(label) = &p.label {
            let len = label.chars().count();
            if len > MAX_LABEL_CHARS {
                return Err(Error::LabelTooLong { len });
            }
        }
        // Such a value would read back as milliseconds (see `MS_THRESHOLD`), and is no real
        // expiry anyway (year 5138).
        if p.exp.is_some_and(|e| e >= MS_THRESHOLD) {
            return Err(Error::InvalidField { field: "exp" });
        }
        p.flags.check()?;
        Ok(p)
    }
}

/// Wire order: `url`, `flag`, `key`, `label`, `exp`, `v` — the order of the validator's test
/// links, so a payload built from their fields reproduces their bytes.
#[derive(Serialize)]
struct Wire<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    v: u64,
}

impl ShlPayload {
    /// Starts a payload for the manifest (or, with `U`, file) URL and the link's key.
    pub fn builder(url: impl Into<String>, key: ShlKey) -> ShlPayloadBuilder {
        ShlPayloadBuilder {
            payload: ShlPayload {
                url: url.into(),
                key,
                exp: None,
                flags: Flags::default(),
                label: None,
                version: SUPPORTED_VERSION,
            },
        }
    }

    /// Manifest URL (or the file URL when [`Flags::direct_file`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The link's decryption key.
    pub fn key(&self) -> &ShlKey {
        &self.key
    }

    /// Expiry hint in epoch seconds (already normalised if the input was in milliseconds).
    pub fn exp(&self) -> Option<u64> {
        self.exp
    }

    /// The flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// The label, if any. Parsed labels are not length-checked (receivers are lenient).
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The payload version (1).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Minified JSON, always with `"v":1`.
    pub fn to_json(&self) -> String {
        let flags = self.flags.as_wire();
        let wire = Wire {
            url: &self.url,
            flag: (!flags.is_empty()).then_some(flags),
            key: self.key.to_base64url(),
            label: self.label.as_deref(),
            exp: self.exp,
            v: self.version,
        };
        // A struct of strings and integers always serialises; the fallback keeps this total.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses payload JSON leniently (receiver rules, N.75–N.76, S).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| Error::InvalidJson { what: "payload" })?;
        let Value::Object(obj) = value else {
            return Err(Error::InvalidJson { what: "payload" });
        };
        Self::from_object(&obj)
    }

    /// Parses an already-decoded payload object leniently.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self> {
        // Version first: a newer payload may give other fields new meanings (N.75).
        let version = match obj.get("v") {
            None | Some(Value::Null) => SUPPORTED_VERSION,
            Some(v) => match v.as_u64() {
                Some(0) | None => return Err(Error::InvalidField { field: "v" }),
                Some(n) if n > SUPPORTED_VERSION => {
                    return Err(Error::UnsupportedVersion { version: n })
                }
                Some(n) => n,
            },
        };
        let url = match obj.get("url") {
            None | Some(Value::Null) => return Err(Error::MissingField { field: "url" }),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(Error::InvalidField { field: "url" }),
        };
        let key = match obj.get("key") {
            None | Some(Value::Null) => return Err(Error::MissingField { field: "key" }),
            Some(Value::String(s)) => ShlKey::from_base64url(s)?,
            Some(_) => return Err(Error::InvalidKey),
        };
        let flags = match obj.get("flag") {
            None | Some(Value::Null) => Flags::default(),
            Some(Value::String(s)) => Flags::parse(s)?,
            Some(_) => return Err(Error::InvalidField { field: "flag" }),
        };
        let label = match obj.get("label") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Error::InvalidField { field: "label" }),
        };
        let exp = match obj.get("exp") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_exp(v)?),
        };
        Ok(Self {
            url,
            key,
            exp,
            flags,
            label,
            version,
        })
    }
}

/// `exp` as a number of seconds (integer or fractional), or a numeric string; milliseconds
/// (the HL7 example's `"1767225600000"`) are normalised to seconds.
fn parse_exp(value: &Value) -> Result<u64> {
    let invalid = Error::InvalidField { field: "exp" };
    let raw = match value {
        Value::Number(n) => number_to_secs(n.as_u64(), n.as_f64()),
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => number_to_secs(None, s.parse::<f64>().ok()),
            }
        }
        _ => None,
    }
    .ok_or(invalid)?;
    Ok(if raw >= MS_THRESHOLD { raw / 1000 } else { raw })
}

fn number_to_secs(int: Option<u64>, float: Option<f64>) -> Option<u64> {
    if let Some(n) = int {
        return Some(n);
    }
    let f = float?;
    // Fractional seconds (as in some SHC examples) are floored; `as` saturates, and the range
    // check keeps negatives and non-finite values out.
    if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 {
        Some(f.floor() as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ShlKey {
        ShlKey::from_bytes([7; 32])
    }

    #[test]
    fn flags_are_alphabetical_and_u_with_p_is_refused() {
        let p = ShlPayload::builder("https://x.example/m", key())
            .passcode(true)
            .long_term(true)
            .build()
            .unwrap();
        assert_eq!(p.flags().as_wire(), "LP");
        let err = ShlPayload::builder("https://x.example/m", key())
            .passcode(true)
            .direct_file(true)
            .build()
            .unwrap_err();
        assert_eq!(err, Error::FlagConflict);
        assert_eq!(Flags::parse("PU"), Err(Error::FlagConflict));
        assert_eq!(Flags::parse("ZUL").unwrap().as_wire(), "LU");
    }

    #[test]
    fn label_and_url_limits_count_characters() {
        let ok = "é".repeat(80);
        assert!(ShlPayload::builder("https://x.example/m", key())
            .label(ok)
            .build()
            .is_ok());
        let err = ShlPayload::builder("https://x.example/m", key())
            .label("é".repeat(81))
            .build()
            .unwrap_err();
        assert_eq!(err, Error::LabelTooLong { len: 81 });
        let url = format!("https://{}", "a".repeat(120));
        assert!(ShlPayload::builder(url, key()).build().is_ok());
        let url = format!("https://{}", "a".repeat(121));
        assert_eq!(
            ShlPayload::builder(url, key()).build().unwrap_err(),
            Error::UrlLength { len: 129 }
        );
        assert_eq!(
            ShlPayload::builder("", key()).build().unwrap_err(),
            Error::UrlLength { len: 0 }
        );
    }

    #[test]
    fn exp_accepts_seconds_fractions_and_millisecond_strings() {
        let k = key().to_base64url();
        for (exp, want) in [
            ("1704096000", 1_704_096_000),
            ("1704096000.7", 1_704_096_000),
            ("\"1767225600000\"", 1_767_225_600),
            ("\"1704096000\"", 1_704_096_000),
            ("1767225600000", 1_767_225_600),
        ] {
            let json = format!(r#"{{"url":"u","key":"{k}","exp":{exp}}}"#);
            assert_eq!(
                ShlPayload::from_json(json.as_bytes()).unwrap().exp(),
                Some(want),
                "{exp}"
            );
        }
        for exp in ["-1", "\"soon\"", "true", "{}"] {
            let json = format!(r#"{{"url":"u","key":"{k}","exp":{exp}}}"#);
            assert_eq!(
                ShlPayload::from_json(json.as_bytes()).unwrap_err(),
                Error::InvalidField { field: "exp" }
            );
        }
    }

    #[test]
    fn newer_version_is_reported_before_other_fields() {
        assert_eq!(
            ShlPayload::from_json(br#"{"v":2}"#).unwrap_err(),
            Error::UnsupportedVersion { version: 2 }
        );
        assert_eq!(
            ShlPayload::from_json(br#"{"v":0,"url":"u"}"#).unwrap_err(),
            Error::InvalidField { field: "v" }
        );
    }

    #[test]
    fn debug_hides_url_key_and_label() {
        let p = ShlPayload::builder("https://secret.example/abc", key())
            .label("Oliver")
            .build()
            .unwrap();
        let d = format!("{p:?}");
        assert!(
            !d.contains("secret") && !d.contains("Oliver") && !d.contains(&key().to_base64url())
        );
    }
}
