//! The launch app's settings: which EHRs may launch it, who it is to them (client id, public or
//! confidential with an ES384 key), where it is reached (redirect URI), and session lifetime.
//! Built from the platform config's `[launch]` section by the binary, or directly by tests.

use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::crypto::ClientKey;
use crate::error::{LaunchError, Result};

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

    /// From the platform config (`[launch]`, `http.public_base_url`, `data_dir`). A confidential
    /// client's key is read from `launch.client_key_file`, or generated there (mode 0600) on first
    /// start; `None` when launch is off (empty allowlist).
    pub fn from_config(config: &platform::Config) -> Result<Option<Self>> {
        let launch = &config.launch;
        if launch.ehr_allowlist.is_empty() {
            return Ok(None);
        }
        let client_id = launch
            .client_id
            .clone()
            .ok_or(LaunchError::Internal("launch.client_id is required"))?;
        let client_auth = match launch.client_auth.as_deref() {
            Some("public") => ClientAuth::Public,
            _ => {
                let path = launch
                    .client_key_file
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("launch-client-key.jwk.json"));
                ClientAuth::Confidential(Box::new(load_or_generate_key(&path)?))
            }
        };
        let public_base_url = Url::parse(&config.public_base_url())
            .map_err(|_| LaunchError::Internal("http.public_base_url is not a URL"))?;
        let mut settings = LaunchSettings::new(
            public_base_url,
            launch.ehr_allowlist.clone(),
            client_id,
            client_auth,
        );
        if let Some(secs) = launch.session_ttl_secs {
            settings.session_ttl = Duration::from_secs(secs);
        }
        if let Some(ms) = launch.ehr_timeout_ms {
            settings.ehr_timeout = Duration::from_millis(ms);
        }
        Ok(Some(settings))
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

/// The printable card's paper from `launch.print_paper` (default Letter).
pub fn print_paper(config: &platform::Config) -> issuer::pdf::Paper {
    config
        .launch
        .print_paper
        .as_deref()
        .and_then(issuer::pdf::Paper::parse)
        .unwrap_or(issuer::pdf::Paper::Letter)
}

/// Reads the client key, or creates it (directory created, file mode 0600 so only the service
/// account reads it; written to a temporary name and renamed, so a crash leaves no half key).
pub fn load_or_generate_key(path: &Path) -> Result<ClientKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => ClientKey::from_jwk_str(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ClientKey::generate();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|_| LaunchError::Internal("cannot create the client key directory"))?;
            }
            let tmp = path.with_extension("tmp");
            write_private(&tmp, key.to_private_jwk_string().as_bytes())?;
            std::fs::rename(&tmp, path)
                .map_err(|_| LaunchError::Internal("cannot write the client key"))?;
            tracing::info!(kid = %key.kid(), "launch client key generated");
            Ok(key)
        }
        Err(_) => Err(LaunchError::Internal("cannot read the client key")),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|_| LaunchError::Internal("cannot write the client key"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|_| LaunchError::Internal("cannot write the client key"))
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

    #[test]
    fn from_config_generates_the_client_key_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let config = platform::Config::from_env_vars([
            ("VAXCRED_DATA_DIR", data_dir.as_str()),
            ("VAXCRED_LAUNCH__EHR_ALLOWLIST", "https://ehr.example/fhir"),
            ("VAXCRED_LAUNCH__CLIENT_ID", "app"),
            ("VAXCRED_LAUNCH__SESSION_TTL_SECS", "60"),
        ])
        .unwrap();
        let first = LaunchSettings::from_config(&config).unwrap().unwrap();
        let second = LaunchSettings::from_config(&config).unwrap().unwrap();
        let kid = |s: &LaunchSettings| match &s.client_auth {
            ClientAuth::Confidential(k) => k.kid().to_owned(),
            ClientAuth::Public => panic!("confidential expected"),
        };
        assert_eq!(kid(&first), kid(&second));
        assert_eq!(first.session_ttl, Duration::from_secs(60));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("launch-client-key.jwk.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let off =
            platform::Config::from_env_vars([("VAXCRED_DATA_DIR", data_dir.as_str())]).unwrap();
        assert!(LaunchSettings::from_config(&off).unwrap().is_none());
    }
}
