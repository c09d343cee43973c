//! vaxcred's SMART-on-FHIR launch app for clinicians (SMART App Launch 2.x): a nurse opens
//! vaxcred from the patient's chart in the EHR (EHR launch) or signs in and picks a patient
//! (standalone launch), sees the patient's doses with whether each goes on the card and why not,
//! and in one click issues the card (QR on screen), prints it, downloads it, or sends it by SMS or
//! to the patient's wallet.
//!
//! ```text
//! EHR ──GET /launch?iss&launch──► allowlist ─► discovery ─► session(state, PKCE) ─► 302 authorize
//! EHR ──GET /launch/callback?code&state──► state check ─► token (private_key_jwt ES384 | public)
//!     ─► session(tokens, patient, fhirUser) ─► /launch/patient: FHIR reads ─► model ─► page
//! ```
//!
//! Tokens stay on the server (database session store, opaque cookie); pages are server-rendered
//! and escaped; every form carries the session's CSRF token.
//!
//! # Layout
//! - [`settings`]: allowlist, client id, public/confidential client, redirect URI.
//! - [`crypto`]: random tokens, PKCE S256, the ES384 client key and its JWKS.
//! - [`smart`]: discovery, scopes (v2 with v1 fallback), authorize URL, token and refresh requests.
//! - [`session`]: server-side sessions over `store`, the cookie.
//! - [`fhir`]: Patient read and Immunization search on the EHR.
//! - [`record`]: normalization with `model` into the doses page's rows and the card's doses.
//! - [`actions`]: the [`actions::CardActions`] seam and its signing implementation.
//! - [`pages`]: the HTML pages. `routes`: the handlers.
//! - [`error`]: the crate's error type, [`LaunchError`].

pub mod actions;
pub mod crypto;
pub mod error;
pub mod fhir;
pub mod pages;
pub mod record;
mod routes;
pub mod session;
pub mod settings;
pub mod smart;

use std::sync::Arc;

pub use actions::{
    ActionContext, ActionError, CardActions, IssuedCard, SigningActions, SmsSent, WalletRegistered,
};
pub use error::LaunchError;
pub use settings::{ClientAuth, LaunchSettings};

/// Everything the routes share. Cheap to clone.
#[derive(Clone)]
pub struct LaunchState {
    settings: Arc<LaunchSettings>,
    sessions: session::Sessions,
    client: smart::SmartClient,
    actions: Arc<dyn CardActions>,
}

impl std::fmt::Debug for LaunchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchState")
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

impl LaunchState {
    /// The launch app over `store` (sessions) with these settings and actions.
    pub fn new(
        settings: LaunchSettings,
        store: store::Store,
        actions: Arc<dyn CardActions>,
    ) -> Result<Self, LaunchError> {
        let client = smart::SmartClient::new(settings.ehr_timeout)?;
        Ok(LaunchState {
            sessions: session::Sessions::new(store, settings.session_ttl),
            settings: Arc::new(settings),
            client,
            actions,
        })
    }

    /// Everything from the platform config, for `vaxcred serve`: settings from `[launch]`, cards
    /// signed for `issuer` with `keys` and the issue worker's settings and relay (`issuing`),
    /// printed on `launch.print_paper`, SMS and wallet through `delivery` when given. `None` when launch is off (empty `launch.ehr_allowlist`).
    pub fn from_config(
        config: &platform::Config,
        store: store::Store,
        keys: Arc<dyn issuer::keystore::KeyStore>,
        issuer: &store::Issuer,
        issuing: (
            issuer::worker::IssueConfig,
            Option<issuer::relay::RelayHandle>,
        ),
        delivery: Option<delivery::DeliveryState>,
    ) -> Result<Option<Self>, LaunchError> {
        let Some(settings) = LaunchSettings::from_config(config)? else {
            return Ok(None);
        };
        let (issue_config, relay) = issuing;
        let mut actions =
            SigningActions::new(keys, issuer.id.clone(), issuer.iss.clone(), store.clone())
                .with_issuing(issue_config, relay)
                .with_print(issuer.display_name.clone(), settings::print_paper(config));
        if let Some(d) = delivery {
            actions = actions.with_delivery(d);
        }
        Self::new(settings, store, Arc::new(actions)).map(Some)
    }

    /// The settings.
    pub fn settings(&self) -> &LaunchSettings {
        &self.settings
    }
}

/// Mounts the launch app's routes (`/launch…`) on an actix-web app.
pub fn configure(state: LaunchState) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(actix_web::web::Data::new(state.clone()));
        routes::register(cfg);
    }
}

/// Installs rustls's `ring` provider once (reqwest is built without a default provider so the
/// workspace does not also build aws-lc); a provider installed earlier by someone else is kept.
pub(crate) fn ensure_crypto_provider() {
    platform::tls::ensure_crypto_provider();
}
