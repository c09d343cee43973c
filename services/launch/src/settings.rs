//! The launch app's settings: which EHRs may launch it, who it is to them (client id, public or
//! confidential with an ES384 key), where it is reached (redirect URI), and session lifetime.
//! Built from the platform config's `[launch]` section by the binary, or directly by tests.

use std::time::Duration;

use url::Url;

use crate::crypto::ClientKey;

/// How the app authenticates at the EHR's token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Public client: `client_id` in the form, PKCE only.
    Public,
    /// Confidential asymmetric client: `private_key_jwt` signed with this key; its JWKS is served
    /// at `{base}/launch/jwks.json`.
    Confidential(Box<ClientKey>),
}

/// Settings of the launch app.
#[derive(Debug, Clone)]
pub struct LaunchSettings {
    /// Externally visible base URL of this app (scheme, host, optional path; no trailing slash);
    /// the redirect URI registered at the EHR is `{base}/launch/callback`.
    pub public_base_url: Url,
    /// FHIR base URLs (`iss`) allowed to launch the app. Empty: launch refused.
    pub ehr_allowlist: Vec<Url>,
    /// OAuth client id registered at the EHRs.
    pub client_id: String,
    /// Public or confidential client.
    pub client_auth: ClientAuth,
    /// How long a launch session lives without use. Default 8 hours (a clinical shift).
    pub session_ttl: Duration,
    /// Timeout of one request to an EHR. Default 10 s.
    pub ehr_timeout: Duration,
}

impl LaunchSettings {
    /// Settings with the defaults for everything but the essentials.
    pub fn new(
        public_base_url: Url,
        ehr_allowlist: Vec<Url>,
        client_id: impl Into<String>,
        client_auth: ClientAuth,
    ) -> Self {
        LaunchSettings {
            public_base_url,
            ehr_allowlist,
            client_id: client_id.into(),
            client_auth,
            session_ttl: Duration::from_secs(8 * 3600),
            ehr_timeout: Duration::from_secs(10),
        }
    }

    /// The redirect URI sent to the EHR.
    pub fn redirect_uri(&self) -> String {
        format!("{}/launch/callback", base(&self.public_base_url))
    }

    /// The URL where the app's JWKS is published.
    pub fn jwks_uri(&self) -> String {
        format!("{}/launch/jwks.json", base(&self.public_base_url))
    }

    /// The allowlisted FHIR base matching `iss` (compared without a trailing slash), if any.
    pub fn allowed_iss(&self, iss: &str) -> Option<String> {
        let wanted = iss.trim_end_matches('/');
        self.ehr_allowlist
            .iter()
            .map(base)
            .find(|allowed| allowed == wanted)
    }
}

/// A URL as a base string without a trailing slash.
pub fn base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_with_or_without_trailing_slash_only() {
        let s = LaunchSettings::new(
            Url::parse("https://app.example/").unwrap(),
            vec![Url::parse("https://ehr.example/fhir/r4").unwrap()],
            "app",
            ClientAuth::Public,
        );
        assert!(s.allowed_iss("https://ehr.example/fhir/r4/").is_some());
        assert!(s.allowed_iss("https://ehr.example/fhir/r4").is_some());
        assert!(s.allowed_iss("https://ehr.example/fhir").is_none());
        assert!(s.allowed_iss("https://ehr.example/fhir/r4.evil").is_none());
        assert_eq!(s.redirect_uri(), "https://app.example/launch/callback");
    }
}
