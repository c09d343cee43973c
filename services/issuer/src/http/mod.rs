//! The issuer's HTTP surface (DESIGN §6–7, spec-checklist §D, §E, §G, §H): what verifiers,
//! wallets, apps and admins reach.
//!
//! Every issuer of the deployment has the same routes under its own base: the default issuer at
//! the root (`iss` = the public base URL), further issuers under `/issuers/{slug}`:
//!
//! | route | what |
//! | --- | --- |
//! | `GET {base}/.well-known/jwks.json` | public keys (active and retired, not revoked), `crlVersion`, CORS |
//! | `GET {base}/.well-known/crl/{kid}.json` | the key's revocation list, CORS |
//! | `GET {base}/.well-known/smart-configuration` | capabilities incl. `health-cards`, CORS |
//! | `POST {base}/fhir/Patient/{id}/$health-cards-issue` | FHIR operation (SMART or API token) |
//! | `GET {base}/credentials/{id}[.smart-health-card]` | the card file |
//! | `GET {base}/credentials/{id}/qr.png`, `/qr.svg`, `/card.pdf?paper=a4\|letter` | QR and printable card |
//! | `/admin/…` (root only) | issuers, sources, keys, revocation; API token; audited |
//!
//! # Layout
//! - [`auth`]: bearer tokens: admin tokens (config), API tokens (hashed in the store), patient
//!   access tokens (HS256, minted by the launch app after a SMART launch).
//! - [`wellknown`]: JWKS, CRLs, smart-configuration.
//! - [`issue_op`]: the `$health-cards-issue` operation.
//! - [`cards`]: card downloads.
//! - [`admin`]: admin endpoints and the audit trail.
//! - [`startup`]: the `iss` checks that refuse to start a misconfigured issuer.

pub mod admin;
pub mod auth;
pub mod cards;
pub mod issue_op;
pub mod startup;
pub mod wellknown;

use std::sync::Arc;

use actix_web::{web, HttpRequest};
use store::{Issuer, Store};

use crate::issuers::DEFAULT_SLUG;
use crate::keys::ManagedKeys;
use crate::keystore::KeyStore;

pub use startup::{check_iss, check_issuers, StartupError};

/// Settings of the HTTP surface.
#[derive(Clone)]
pub struct HttpSettings {
    /// The externally visible base URL, no trailing slash (the default issuer's `iss`).
    pub public_base_url: String,
    /// Admin bearer tokens from the configuration (`admin.tokens`); API tokens with scope
    /// `admin` in the store work too.
    pub admin_tokens: Vec<String>,
    /// HMAC key of patient access tokens (see [`auth`]); `None` accepts only API tokens.
    pub patient_token_secret: Option<Vec<u8>>,
    /// Cards carry `rid`s (the issue worker has a rid secret): every JWK then announces
    /// `crlVersion` and every key has a CRL, empty or not.
    pub revocation: bool,
    /// `issuer.allow_insecure_iss`: accept `http://` issuers (development only).
    pub allow_insecure_iss: bool,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("public_base_url", &self.public_base_url)
            .field("revocation", &self.revocation)
            .finish_non_exhaustive()
    }
}

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    /// The database.
    pub store: Store,
    /// Signing keys (re-signing cards with fewer identity claims).
    pub keys: Arc<dyn KeyStore>,
    /// Key lifecycle (rotation, retirement, revocation); `None` disables those admin routes.
    pub managed: Option<ManagedKeys>,
    /// Settings.
    pub settings: Arc<HttpSettings>,
}

impl HttpState {
    /// State over `managed` keys.
    pub fn new(store: Store, managed: ManagedKeys, settings: HttpSettings) -> Self {
        HttpState {
            store,
            keys: managed.as_key_store(),
            managed: Some(managed),
            settings: Arc::new(settings),
        }
    }
}

/// Mounts every issuer route, for `App::configure`. Replaces [`crate::jwks::configure`] (mount
/// one or the other: this one serves the JWKS of every issuer).
pub fn configure(state: HttpState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state.clone()));
        cfg.service(web::scope("/admin").configure(admin::routes));
        cfg.service(web::scope("/issuers/{slug}").configure(issuer_routes));
        issuer_routes(cfg);
    }
}

fn issuer_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(wellknown::jwks))
        .route("/.well-known/crl/{kid}.json", web::get().to(wellknown::crl))
        .route(
            "/.well-known/smart-configuration",
            web::get().to(wellknown::smart_configuration),
        )
        .route(
            "/fhir/Patient/{id}/$health-cards-issue",
            web::post().to(issue_op::health_cards_issue),
        )
        .route("/credentials/{file}", web::get().to(cards::file))
        .route("/credentials/{id}/qr.png", web::get().to(cards::qr_png))
        .route("/credentials/{id}/qr.svg", web::get().to(cards::qr_svg))
        .route("/credentials/{id}/card.pdf", web::get().to(cards::pdf));
}

/// The issuer a request addresses: `/issuers/{slug}/…` or the default one at the root.
pub(crate) async fn issuer_of(
    state: &HttpState,
    req: &HttpRequest,
) -> Result<Option<Issuer>, store::Error> {
    let slug = req.match_info().get("slug").unwrap_or(DEFAULT_SLUG);
    state.store.get_issuer_by_slug(slug).await
}

/// The `iss` an issuer with `slug` must have under `public_base_url` (DESIGN §6).
pub fn expected_iss(public_base_url: &str, slug: &str) -> String {
    let base = public_base_url.trim_end_matches('/');
    if slug == DEFAULT_SLUG {
        base.to_owned()
    } else {
        format!("{base}/issuers/{slug}")
    }
}
