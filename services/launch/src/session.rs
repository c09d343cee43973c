//! Server-side launch sessions. The browser holds only an opaque random cookie (`HttpOnly`,
//! `Secure`, `SameSite=Lax`); the database row, keyed by the cookie's SHA-256, holds the launch
//! state (`state`, PKCE verifier), the EHR's tokens, the patient in context and the clinician.
//! A new launch always starts a new session (no session fixation), and each session has its own
//! CSRF token for the forms.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use crate::actions::IssuedCard;
use crate::crypto::{random_token, token_hash};
use crate::error::{LaunchError, Result};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "vaxcred_launch";

/// Where a session is in the launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Sent to the EHR's authorization endpoint; waiting for the callback.
    Authorizing,
    /// Tokens obtained; the patient's pages work.
    Active,
}

/// What a session row holds. Tokens never leave the server.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionData {
    /// Phase.
    pub phase: Phase,
    /// CSRF token of this session's forms.
    pub csrf: String,
    /// FHIR base of the EHR (an allowlisted `iss`).
    pub iss: String,
    /// Token endpoint from discovery.
    pub token_endpoint: String,
    /// `state` sent to the authorization endpoint (cleared after the callback).
    pub state: Option<String>,
    /// PKCE verifier (cleared after the callback).
    pub code_verifier: Option<String>,
    /// Access token.
    pub access_token: Option<String>,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Access-token expiry, seconds since the epoch.
    pub expires_at: u64,
    /// Patient in context (the EHR's Patient id).
    pub patient: Option<String>,
    /// The clinician (`fhirUser`).
    pub fhir_user: Option<String>,
    /// The card issued in this session, for print / download / SMS / wallet.
    pub card: Option<IssuedCard>,
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionData")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// A loaded session: its row id and data.
#[derive(Debug, Clone)]
pub struct Session {
    /// Row id (hash of the cookie value).
    pub id: String,
    /// Data.
    pub data: SessionData,
}

/// The session store over the shared database.
#[derive(Debug, Clone)]
pub struct Sessions {
    store: store::Store,
    ttl: Duration,
}

impl Sessions {
    /// Sessions in `store`, each living `ttl` after its last write.
    pub fn new(store: store::Store, ttl: Duration) -> Self {
        Sessions { store, ttl }
    }

    /// Creates a session; returns the cookie value (only the browser keeps it) and the session.
    pub async fn create(&self, data: SessionData) -> Result<(String, Session)> {
        let cookie_value = random_token();
        let session = Session {
            id: token_hash(&cookie_value),
            data,
        };
        self.save(&session).await?;
        Ok((cookie_value, session))
    }

    /// Writes a session back (extending its life).
    pub async fn save(&self, session: &Session) -> Result<()> {
        let data = serde_json::to_value(&session.data)
            .map_err(|_| LaunchError::Internal("session data does not serialize"))?;
        let ttl = chrono::Duration::from_std(self.ttl)
            .map_err(|_| LaunchError::Internal("session ttl out of range"))?;
        self.store
            .put_launch_session(&session.id, &data, chrono::Utc::now() + ttl)
            .await?;
        Ok(())
    }

    /// The session of a cookie value, if live.
    pub async fn load(&self, cookie_value: &str) -> Result<Session> {
        let id = token_hash(cookie_value);
        let row = self
            .store
            .get_launch_session(&id)
            .await?
            .ok_or(LaunchError::NoSession)?;
        let data: SessionData =
            serde_json::from_value(row.data).map_err(|_| LaunchError::NoSession)?;
        Ok(Session { id, data })
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<u64> {
        Ok(self.store.purge_expired_launch_sessions().await?)
    }

    /// Deletes a session (e.g. the previous one when a new launch starts in the same browser).
    pub async fn delete(&self, cookie_value: &str) -> Result<()> {
        self.store
            .delete_launch_session(&token_hash(cookie_value))
            .await?;
        Ok(())
    }
}

/// The session cookie: `HttpOnly` (no script reads it), `Secure` (browsers treat
/// `http://127.0.0.1`/`localhost` as secure, so tests on loopback still get it), `SameSite=Lax`
/// (sent on the top-level redirect back from the EHR, not on cross-site POSTs).
pub fn session_cookie(value: String, path: &str) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, value)
        .path(path.to_owned())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .finish()
}
