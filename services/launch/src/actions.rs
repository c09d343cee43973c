//! The clinician's one-click actions behind a small trait, so the pages and the SMART flow do not
//! depend on how cards are signed, printed or sent: issue a card for the patient's normalized
//! doses; the printable PDF; send by SMS; register a wallet endpoint and push; the
//! `.smart-health-card` file.
//!
//! [`SigningActions`] is the real implementation available today: it signs with the issuer's
//! [`issuer::keystore::KeyStore`] through `shc::CardIssuer` and writes an audit row naming the
//! clinician (`fhirUser`) for every issuance. Print, SMS and wallet answer
//! [`ActionError::NotAvailable`] until the issuer's PDF and the delivery API are wired in.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who is acting and for whom (ids only: they go to the audit table and logs).
#[derive(Debug, Clone)]
pub struct ActionContext {
    /// The clinician (`fhirUser`, e.g. `Practitioner/123`), or `unknown-clinician`.
    pub clinician: String,
    /// FHIR base of the EHR.
    pub ehr: String,
    /// The EHR's Patient id.
    pub ehr_patient_id: String,
}

/// A card issued in this session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCard {
    /// Stored credential id, when the implementation stores one.
    pub credential_id: Option<String>,
    /// Compact JWS.
    pub jws: String,
    /// `shc:/` numeric QR text.
    pub qr_text: String,
    /// Signing key id.
    pub kid: String,
}

impl std::fmt::Debug for IssuedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCard")
            .field("credential_id", &self.credential_id)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why an action did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// This deployment does not offer the action (not configured, or not built yet).
    #[error("action not available: {0}")]
    NotAvailable(&'static str),
    /// The input was refused (e.g. a phone number or URL that does not parse).
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// The card could not be built or signed (code from `model`/`shc`).
    #[error("card not issued: {0}")]
    Card(&'static str),
    /// A downstream service (gateway, wallet, database) failed; trying again may work.
    #[error("temporarily failed: {0}")]
    Temporary(&'static str),
}

impl ActionError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAvailable(_) => "launch-action-not-available",
            Self::Invalid(_) => "launch-action-invalid",
            Self::Card(_) => "launch-card-failed",
            Self::Temporary(_) => "launch-action-temporary",
        }
    }

    /// Whether trying again later may work.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Temporary(_))
    }
}

/// Result of sending a card by SMS.
#[derive(Debug, Clone)]
pub struct SmsSent {
    /// The gateway's message id.
    pub message_id: String,
}

/// The actions.
#[async_trait]
pub trait CardActions: Send + Sync {
    /// Issues a card for these doses (one disease group) and records the clinician.
    async fn issue(
        &self,
        ctx: &ActionContext,
        patient: &model::Patient,
        doses: &[model::Dose],
    ) -> Result<IssuedCard, ActionError>;

    /// The printable PDF of an issued card.
    async fn printable_pdf(
        &self,
        ctx: &ActionContext,
        card: &IssuedCard,
        patient: &model::Patient,
    ) -> Result<Vec<u8>, ActionError>;

    /// Sends a link to the card by SMS to `phone` (as typed; the implementation normalizes).
    async fn send_sms(
        &self,
        ctx: &ActionContext,
        card: &IssuedCard,
        phone: &str,
    ) -> Result<SmsSent, ActionError>;

    /// Registers the patient's wallet endpoint and pushes the card to it.
    async fn register_wallet(
        &self,
        ctx: &ActionContext,
        card: &IssuedCard,
        url: &str,
    ) -> Result<(), ActionError>;

    /// The `.smart-health-card` file.
    fn health_card_file(&self, card: &IssuedCard) -> Vec<u8> {
        shc::file::HealthCardFile::single(card.jws.clone())
            .to_json()
            .into_bytes()
    }
}

/// Real issuance with the issuer's key store; audit rows in the shared database.
pub struct SigningActions {
    keys: Arc<dyn issuer::keystore::KeyStore>,
    issuer_id: String,
    iss: String,
    store: store::Store,
}

impl std::fmt::Debug for SigningActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningActions")
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

impl SigningActions {
    /// Signs for `issuer_id` (whose `iss` URL is `iss`) with `keys`; audits into `store`.
    pub fn new(
        keys: Arc<dyn issuer::keystore::KeyStore>,
        issuer_id: impl Into<String>,
        iss: impl Into<String>,
        store: store::Store,
    ) -> Self {
        SigningActions {
            keys,
            issuer_id: issuer_id.into(),
            iss: iss.into(),
            store,
        }
    }
}

#[async_trait]
impl CardActions for SigningActions {
    async fn issue(
        &self,
        ctx: &ActionContext,
        patient: &model::Patient,
        doses: &[model::Dose],
    ) -> Result<IssuedCard, ActionError> {
        let bundle = model::card_bundle(patient, doses, &model::CardOptions::default())
            .map_err(|r| ActionError::Card(r.code()))?;
        let signer = self
            .keys
            .active_signer(&self.issuer_id)
            .map_err(|_| ActionError::Temporary("no active signing key"))?;
        // A fresh issuer per click: its buffers cost far less than the clinician's click.
        let mut card_issuer = shc::CardIssuer::new(signer);
        let card = card_issuer
            .issue_minimized(&bundle, &shc::Claims::new(&self.iss))
            .map_err(|e| ActionError::Card(e.code()))?;
        self.store
            .append_audit(&store::NewAuditEntry {
                actor: ctx.clinician.clone(),
                action: "card.issue.launch".to_owned(),
                subject_kind: "ehr-patient".to_owned(),
                subject_id: ctx.ehr_patient_id.clone(),
                details: serde_json::json!({
                    "ehr": ctx.ehr,
                    "issuer_id": self.issuer_id,
                    "kid": card.kid,
                    "doses": doses.len(),
                }),
            })
            .await
            .map_err(|_| ActionError::Temporary("audit write failed"))?;
        tracing::info!(kid = %card.kid, doses = doses.len(), "card issued from launch");
        Ok(IssuedCard {
            credential_id: None,
            jws: card.jws,
            qr_text: card.qr_text,
            kid: card.kid,
        })
    }

    async fn printable_pdf(
        &self,
        _ctx: &ActionContext,
        _card: &IssuedCard,
        _patient: &model::Patient,
    ) -> Result<Vec<u8>, ActionError> {
        Err(ActionError::NotAvailable("printing"))
    }

    async fn send_sms(
        &self,
        _ctx: &ActionContext,
        _card: &IssuedCard,
        _phone: &str,
    ) -> Result<SmsSent, ActionError> {
        Err(ActionError::NotAvailable("sms"))
    }

    async fn register_wallet(
        &self,
        _ctx: &ActionContext,
        _card: &IssuedCard,
        _url: &str,
    ) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable("wallet"))
    }
}
