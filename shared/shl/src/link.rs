//! `shlink:/` URIs, bare or behind a viewer prefix (checklist N.74).
//!
//! The payload always travels in the URL fragment (`https://viewer…#shlink:/…`), which browsers
//! never send to the viewer's server, so the key stays on the device.

use base64::Engine as _;

use crate::b64;
use crate::error::{Error, Result};
use crate::payload::ShlPayload;

/// The URI scheme prefix.
pub const SCHEME_PREFIX: &str = "shlink:/";

/// A parsed link: its payload and, when it came behind a viewer, the viewer URL (without `#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShlLink {
    payload: ShlPayload,
    viewer: Option<String>,
}

impl ShlLink {
    /// Parses `shlink:/…` or `<viewer>#shlink:/…`; surrounding whitespace is ignored and the
    /// scheme is matched case-insensitively (QR alphanumeric mode upper-cases text).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (viewer, uri) = match strip_scheme(text) {
            Some(encoded) => (None, encoded),
            None => {
                let (viewer, fragment) = text.split_once('#').ok_or(Error::NotAShlink)?;
                let encoded = strip_scheme(fragment).ok_or(Error::NotAShlink)?;
                if viewer.is_empty() {
                    return Err(Error::NotAShlink);
                }
                (Some(viewer.to_owned()), encoded)
            }
        };
        let json =
            b64::decode_lenient(uri).map_err(|_| Error::InvalidBase64 { what: "payload" })?;
        let payload = ShlPayload::from_json(&json)?;
        Ok(Self { payload, viewer })
    }

    /// The payload.
    pub fn payload(&self) -> &ShlPayload {
        &self.payload
    }

    /// Consumes the link, returning its payload.
    pub fn into_payload(self) -> ShlPayload {
        self.payload
    }

    /// The viewer URL the link came behind, without the trailing `#`.
    pub fn viewer(&self) -> Option<&str> {
        self.viewer.as_deref()
    }
}

fn strip_scheme(text: &str) -> Option<&str> {
    let head = text.get(..SCHEME_PREFIX.len())?;
    if head.eq_ignore_ascii_case(SCHEME_PREFIX) {
        text.get(SCHEME_PREFIX.len()..)
    } else {
        None
    }
}

impl ShlPayload {
    /// `shlink:/` + base64url(minified JSON), no padding.
    pub fn to_shlink(&self) -> String {
        format!("{SCHEME_PREFIX}{}", b64::URL.encode(self.to_json()))
    }

    /// `<viewer>#shlink:/…`. The viewer must be an `http(s)` URL without a fragment (a trailing
    /// `#` is accepted), so the payload is exactly the fragment.
    pub fn to_viewer_link(&self, viewer: &str) -> Result<String> {
        let base = viewer.strip_suffix('#').unwrap_or(viewer);
        let lower = base.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
        if !scheme_ok || base.contains('#') || base.chars().any(char::is_whitespace) {
            return Err(Error::InvalidViewerUrl);
        }
        Ok(format!("{base}#{}", self.to_shlink()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ShlKey;

    #[test]
    fn viewer_prefix_rules() {
        let p = ShlPayload::builder("https://x.example/m", ShlKey::from_bytes([1; 32]))
            .build()
            .unwrap();
        let a = p.to_viewer_link("https://viewer.example.org").unwrap();
        let b = p.to_viewer_link("https://viewer.example.org#").unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("https://viewer.example.org#shlink:/"));
        for bad in [
            "viewer.example.org",
            "https://v.example/#x#",
            "https://v .example",
            "javascript:alert(1)",
        ] {
            assert_eq!(p.to_viewer_link(bad), Err(Error::InvalidViewerUrl), "{bad}");
        }
        let parsed = ShlLink::parse(&a).unwrap();
        assert_eq!(parsed.viewer(), Some("https://viewer.example.org"));
        assert_eq!(parsed.payload(), &p);
        let upper = p.to_shlink().replacen("shlink:/", "SHLINK:/", 1);
        assert_eq!(ShlLink::parse(&upper).unwrap().payload(), &p);
    }

    #[test]
    fn rejects_non_links() {
        for bad in [
            "",
            "https://x.example",
            "#shlink:/e30",
            "shlink:",
            "https://x#nothing",
        ] {
            assert_eq!(ShlLink::parse(bad), Err(Error::NotAShlink), "{bad}");
        }
        assert_eq!(
            ShlLink::parse("shlink:/!!!"),
            Err(Error::InvalidBase64 { what: "payload" })
        );
    }
}
