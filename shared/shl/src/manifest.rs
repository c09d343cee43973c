//! Manifest request and response bodies, the 401 error body, and the embed-or-location choice
//! (checklist O.79–O.86).
//!
//! Parsing ignores unknown properties (receivers SHALL ignore them, N.76) and keeps unknown
//! `contentType`/`status` values instead of failing, so a newer server does not break an older
//! client; callers skip files whose type they cannot handle.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The longest a `location` URL may stay usable after the manifest request (O.84).
pub const MAX_LOCATION_LIFETIME: Duration = Duration::from_secs(3600);

/// Body of `POST <manifest url>` (O.79). `Debug` hides the passcode and recipient.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRequest {
    /// Who is asking, shown to the sharer (required).
    pub recipient: String,
    /// Required when the link has flag `P`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Upper bound on the length of any `embedded` JWE in the response (O.83).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_length_max: Option<u64>,
}

impl fmt::Debug for ManifestRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestRequest")
            .field("recipient", &"<redacted>")
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .field("embedded_length_max", &self.embedded_length_max)
            .finish()
    }
}

impl ManifestRequest {
    /// Parses a request body (unknown properties ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|_| Error::InvalidJson {
            what: "manifest request",
        })
    }
}

/// A file's `contentType` (O.82). Unknown values are kept as [`ContentType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ContentType {
    /// `application/smart-health-card`: a `.smart-health-card` file (`{"verifiableCredential":[…]}`).
    SmartHealthCard,
    /// `application/smart-api-access`: a SMART access-token response plus `aud` (O.86).
    SmartApiAccess,
    /// `application/fhir+json`: a FHIR resource.
    FhirJson,
    /// Anything else: not for this library's callers to open.
    Other(String),
}

impl ContentType {
    /// The MIME type string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SmartHealthCard => "application/smart-health-card",
            Self::SmartApiAccess => "application/smart-api-access",
            Self::FhirJson => "application/fhir+json",
            Self::Other(s) => s,
        }
    }
}

impl From<String> for ContentType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "application/smart-health-card" => Self::SmartHealthCard,
            "application/smart-api-access" => Self::SmartApiAccess,
            "application/fhir+json" => Self::FhirJson,
            _ => Self::Other(s),
        }
    }
}

impl From<ContentType> for String {
    fn from(c: ContentType) -> Self {
        match c {
            ContentType::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file's `status` (O.82). Unknown values are kept as [`FileStatus::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FileStatus {
    /// `finalized`
    Finalized,
    /// `can-change`
    CanChange,
    /// `no-longer-valid`
    NoLongerValid,
    /// Anything else.
    Other(String),
}

impl From<String> for FileStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "finalized" => Self::Finalized,
            "can-change" => Self::CanChange,
            "no-longer-valid" => Self::NoLongerValid,
            _ => Self::Other(s),
        }
    }
}

impl From<FileStatus> for String {
    fn from(s: FileStatus) -> Self {
        match s {
            FileStatus::Finalized => "finalized".to_owned(),
            FileStatus::CanChange => "can-change".to_owned(),
            FileStatus::NoLongerValid => "no-longer-valid".to_owned(),
            FileStatus::Other(s) => s,
        }
    }
}

/// One entry of `files` (O.82): a `location` to GET, an `embedded` JWE, or both.
/// `Debug` hides the location (it is a bearer URL) and shows only the embedded length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// What the decrypted file is.
    pub content_type: ContentType,
    /// Short-lived URL answering `application/jose` with the JWE (O.84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The compact JWE inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<String>,
    /// ISO 8601 instant of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Whether the file may still change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FileStatus>,
    /// FHIR version of FHIR content (absent means 4.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_version: Option<String>,
}

impl fmt::Debug for ManifestFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestFile")
            .field("content_type", &self.content_type)
            .field("location", &self.location.as_ref().map(|_| "<redacted>"))
            .field("embedded_len", &self.embedded.as_ref().map(String::len))
            .field("last_updated", &self.last_updated)
            .field("status", &self.status)
            .field("fhir_version", &self.fhir_version)
            .finish()
    }
}

impl ManifestFile {
    /// A file served by `location`.
    pub fn located(content_type: ContentType, location: impl Into<String>) -> Self {
        Self::bare(content_type, Some(location.into()), None)
    }

    /// A file sent inline.
    pub fn embedded(content_type: ContentType, jwe: impl Into<String>) -> Self {
        Self::bare(content_type, None, Some(jwe.into()))
    }

    fn bare(content_type: ContentType, location: Option<String>, embedded: Option<String>) -> Self {
        Self {
            content_type,
            location,
            embedded,
            last_updated: None,
            status: None,
            fhir_version: None,
        }
    }

    /// Checks O.82: at least one of `location` and `embedded`.
    pub fn validate(&self) -> Result<()> {
        if self.location.is_none() && self.embedded.is_none() {
            return Err(Error::InvalidManifest {
                reason: "file has neither location nor embedded",
            });
        }
        Ok(())
    }
}

/// The manifest response body (O.82). `Debug` hides the FHIR `list`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Optional FHIR `List` describing the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<Value>,
    /// The files. The narrative allows none, the logical model wants one or more (S): parsing
    /// accepts an empty list.
    pub files: Vec<ManifestFile>,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("list", &self.list.as_ref().map(|_| "<redacted>"))
            .field("files", &self.files)
            .finish()
    }
}

impl Manifest {
    /// A manifest of these files, without `list`.
    pub fn new(files: Vec<ManifestFile>) -> Self {
        Self { list: None, files }
    }

    /// Parses a response body and checks each file (unknown properties ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|_| Error::InvalidJson { what: "manifest" })?;
        manifest.files.iter().try_for_each(ManifestFile::validate)?;
        Ok(manifest)
    }
}

/// Body of the 401 answer to a wrong passcode (O.81).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeErrorBody {
    /// Wrong passcodes the link will still take before it is disabled.
    pub remaining_attempts: u32,
}

/// Where one file goes in a manifest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inline as `embedded`.
    Embedded,
    /// Behind a short-lived `location` URL.
    Location,
}

/// The server's embedding preference when the request does not bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmbedPolicy {
    /// Largest JWE to embed when the request has no `embeddedLengthMax`; `None` (the default)
    /// embeds nothing unless asked, so clients that did not opt in always get the small,
    /// location-only manifest.
    pub default_max: Option<u64>,
}

impl EmbedPolicy {
    /// Decides embed vs location for a JWE of `jwe_len` characters. A request's
    /// `embeddedLengthMax` is a hard bound (O.83: SHALL NOT exceed); `0` means never embed.
    pub fn placement(&self, jwe_len: usize, embedded_length_max: Option<u64>) -> Placement {
        let bound = embedded_length_max.or(self.default_max);
        match bound {
            Some(max) if u64::try_from(jwe_len).is_ok_and(|len| len <= max) => Placement::Embedded,
            _ => Placement::Location,
        }
    }

    /// Builds the `files` entry for one current JWE: embedded if it fits, otherwise with a
    /// location from `make_location`, which is only called when needed (minting a location
    /// usually stores a one-hour token).
    pub fn file_entry<F>(
        &self,
        content_type: ContentType,
        jwe: String,
        embedded_length_max: Option<u64>,
        make_location: F,
    ) -> Result<ManifestFile>
    where
        F: FnOnce() -> Result<String>,
    {
        Ok(match self.placement(jwe.len(), embedded_length_max) {
            Placement::Embedded => ManifestFile::embedded(content_type, jwe),
            Placement::Location => ManifestFile::located(content_type, make_location()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_respects_the_request_bound() {
        let p = EmbedPolicy::default();
        assert_eq!(p.placement(100, None), Placement::Location);
        assert_eq!(p.placement(100, Some(100)), Placement::Embedded);
        assert_eq!(p.placement(101, Some(100)), Placement::Location);
        assert_eq!(p.placement(0, Some(0)), Placement::Embedded);
        let generous = EmbedPolicy {
            default_max: Some(1000),
        };
        assert_eq!(generous.placement(100, None), Placement::Embedded);
        // The request's bound wins over the server default, even when smaller.
        assert_eq!(generous.placement(100, Some(50)), Placement::Location);
    }

    #[test]
    fn location_is_minted_only_when_needed() {
        let p = EmbedPolicy::default();
        let f = p
            .file_entry(
                ContentType::SmartHealthCard,
                "x".repeat(10),
                Some(10),
                || panic!("location minted for an embedded file"),
            )
            .unwrap();
        assert_eq!(f.embedded.as_deref(), Some("xxxxxxxxxx"));
        let f = p
            .file_entry(ContentType::FhirJson, "x".repeat(11), Some(10), || {
                Ok("https://h.example/f/t".to_owned())
            })
            .unwrap();
        assert_eq!(f.location.as_deref(), Some("https://h.example/f/t"));
        assert_eq!(f.embedded, None);
    }

    #[test]
    fn request_and_error_bodies_use_camel_case() {
        let r = ManifestRequest {
            recipient: "Dr. X".into(),
            passcode: Some("1234".into()),
            embedded_length_max: Some(5),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"recipient":"Dr. X","passcode":"1234","embeddedLengthMax":5}"#
        );
        let d = format!("{r:?}");
        assert!(!d.contains("1234") && !d.contains("Dr. X"));
        assert_eq!(
            serde_json::to_string(&PasscodeErrorBody {
                remaining_attempts: 3
            })
            .unwrap(),
            r#"{"remainingAttempts":3}"#
        );
        assert!(ManifestRequest::parse(br#"{"passcode":"1"}"#).is_err());
        assert!(ManifestRequest::parse(br#"{"recipient":"a","embeddedLengthMax":-1}"#).is_err());
    }
}
