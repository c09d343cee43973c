//! The clinician's one-click actions behind a small trait, so the pages and the SMART flow do not
//! depend on how cards are signed, printed or sent: issue a card for the patient's normalized
//! doses; the printable PDF; send by SMS; register a wallet endpoint and push; the
//! `.smart-health-card` file.
//!
//! [`SigningActions`] is the real implementation: issuing records the launch as an event and
//! applies the EHR's doses to the store exactly as ingest does (`ingest::convert`), then has the
//! issue worker's own path ([`issuer::worker::issue_for_patient`]) sign and store the patient's
//! current cards (with their `rid`, superseding older ones and queueing delivery) and audits the
//! clinician (`fhirUser`). A second click
//! for unchanged doses returns the same credential, so nothing is issued twice. Print renders the
//! issuer's printable PDF (`issuer::pdf`). With a [`delivery::DeliveryState`]
//! ([`SigningActions::with_delivery`]), SMS creates a SMART Health Link for the credential and
//! sends its viewer link through delivery's gateway (retried by delivery), and the wallet action
//! registers the patient's endpoint and queues the push; without one they answer
//! [`ActionError::NotAvailable`].

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
    /// The patient's identifiers match several stored patients: held for a person to review.
    #[error("held for review")]
    HeldForReview,
}

impl ActionError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAvailable(_) => "launch-action-not-available",
            Self::Invalid(_) => "launch-action-invalid",
            Self::Card(_) => "launch-card-failed",
            Self::Temporary(_) => "launch-action-temporary",
            Self::HeldForReview => "launch-held-for-review",
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
    /// The delivery job id (attempts are recorded against it).
    pub delivery_id: String,
}

/// Result of registering a wallet endpoint.
#[derive(Clone)]
pub struct WalletRegistered {
    /// Endpoint id.
    pub endpoint_id: String,
    /// The Standard Webhooks signing secret (`whsec_…`), shown once so the wallet can verify
    /// pushes. `Debug` hides it.
    pub signing_secret: String,
}

impl std::fmt::Debug for WalletRegistered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletRegistered")
            .field("endpoint_id", &self.endpoint_id)
            .finish_non_exhaustive()
    }
}

/// The actions.
#[async_trait]
pub trait CardActions: Send + Sync {
    /// Issues a card for the patient's normalized record (`record.events`: every dose event the
    /// EHR holds) covering `card_doses` (one disease group, as shown to the clinician), and
    /// records the clinician.
    async fn issue(
        &self,
        ctx: &ActionContext,
        record: &model::Normalized,
        card_doses: &[model::Dose],
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
    ) -> Result<WalletRegistered, ActionError>;

    /// The `.smart-health-card` file.
    fn health_card_file(&self, card: &IssuedCard) -> Vec<u8> {
        shc::file::HealthCardFile::single(card.jws.clone())
            .to_json()
            .into_bytes()
    }
}

/// Real issuance and printing with the issuer's key store and the shared database.
pub struct SigningActions {
    /// Signing and storing, exactly as the issue worker does it (`rid`s, CRL-aware `nbf`,
    /// one current card per disease group, `deliver` outbox rows).
    cards: issuer::worker::CardContext,
    issue_config: issuer::worker::IssueConfig,
    pool: issuer::worker::IssuerPool,
    issuer_id: String,
    iss: String,
    issuer_name: String,
    paper: issuer::pdf::Paper,
    store: store::Store,
    delivery: Option<delivery::DeliveryState>,
}

impl std::fmt::Debug for SigningActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningActions")
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

/// `source` of the events the launch app records.
pub const EVENT_SOURCE: &str = "launch";

impl SigningActions {
    /// Signs for `issuer_id` (whose `iss` URL is `iss`) with `keys`, in `store`.
    pub fn new(
        keys: Arc<dyn issuer::keystore::KeyStore>,
        issuer_id: impl Into<String>,
        iss: impl Into<String>,
        store: store::Store,
    ) -> Self {
        let (issuer_id, iss) = (issuer_id.into(), iss.into());
        SigningActions {
            cards: issuer::worker::CardContext {
                store: store.clone(),
                keys,
                issuers: Arc::new(std::collections::HashMap::from([(
                    issuer_id.clone(),
                    iss.clone(),
                )])),
                relay: None,
            },
            issue_config: issuer::worker::IssueConfig::default(),
            pool: issuer::worker::IssuerPool::default(),
            issuer_id,
            iss,
            issuer_name: "vaxcred".to_owned(),
            paper: issuer::pdf::Paper::Letter,
            store,
            delivery: None,
        }
    }

    /// Signs with the issue worker's settings (`rid` secret, development `iss`) and wakes its
    /// outbox relay after storing a card. Without this, cards carry no `rid` and the relay finds
    /// their delivery rows on its next poll.
    pub fn with_issuing(
        mut self,
        config: issuer::worker::IssueConfig,
        relay: Option<issuer::relay::RelayHandle>,
    ) -> Self {
        self.issue_config = config;
        self.cards.relay = relay;
        self
    }

    /// Sends SMS and wallet pushes through `delivery` (its SMS gateway, SSRF guard, retries).
    pub fn with_delivery(mut self, delivery: delivery::DeliveryState) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// The delivery state and the stored credential behind `card`.
    async fn delivery_and_credential(
        &self,
        card: &IssuedCard,
        what: &'static str,
    ) -> Result<(&delivery::DeliveryState, store::Credential), ActionError> {
        let d = self
            .delivery
            .as_ref()
            .ok_or(ActionError::NotAvailable(what))?;
        let id = card
            .credential_id
            .as_deref()
            .ok_or(ActionError::NotAvailable(what))?;
        let credential = self
            .store
            .get_credential(id)
            .await
            .map_err(|_| ActionError::Temporary("database"))?
            .ok_or(ActionError::Temporary("credential vanished"))?;
        Ok((d, credential))
    }

    async fn audit(
        &self,
        ctx: &ActionContext,
        action: &str,
        credential_id: &str,
        details: serde_json::Value,
    ) -> Result<(), ActionError> {
        self.store
            .append_audit(&store::NewAuditEntry {
                actor: ctx.clinician.clone(),
                action: action.to_owned(),
                subject_kind: "credential".to_owned(),
                subject_id: credential_id.to_owned(),
                details,
            })
            .await
            .map(|_| ())
            .map_err(|_| ActionError::Temporary("audit write failed"))
    }

    /// The issuer's display name and paper size for printed cards (default `vaxcred`, Letter).
    pub fn with_print(mut self, issuer_name: impl Into<String>, paper: issuer::pdf::Paper) -> Self {
        self.issuer_name = issuer_name.into();
        self.paper = paper;
        self
    }

    /// Records the launch as an event and applies the doses; returns the internal patient id.
    async fn apply(
        &self,
        ctx: &ActionContext,
        record: &model::Normalized,
    ) -> Result<String, ActionError> {
        let temp = |_| ActionError::Temporary("database");
        let nonce = crate::crypto::random_token();
        let recorded = self
            .store
            .record_events(&[store::IncomingEvent {
                message_id: Some(format!("launch-{nonce}")),
                content_hash: crate::crypto::token_hash(&nonce),
                source: Some(EVENT_SOURCE.to_owned()),
            }])
            .await
            .map_err(temp)?;
        let event_id = match recorded.into_iter().next() {
            Some(store::Recorded::New { event_id }) => event_id,
            _ => return Err(ActionError::Temporary("event not recorded")),
        };
        let received = chrono::Utc::now().timestamp_micros();
        let change = ingest::convert::apply_event(
            &event_id,
            &self.issuer_id,
            Some(EVENT_SOURCE),
            Some(&ctx.ehr),
            record,
            received,
        );
        match self.store.apply_event(&change).await.map_err(temp)? {
            store::ApplyOutcome::Applied { patient_id, .. } => Ok(patient_id),
            store::ApplyOutcome::Held { .. } => Err(ActionError::HeldForReview),
        }
    }

    /// The active credential for the current doses of `disease`, signed and stored by the issue
    /// worker's own path ([`issuer::worker::issue_for_patient`]) if it is not there yet.
    async fn current_credential(
        &self,
        patient_id: &str,
        disease: &str,
    ) -> Result<store::Credential, ActionError> {
        let temp = |_| ActionError::Temporary("database");
        // A concurrent ingest may bump the doses version between snapshot and store: try again.
        for _ in 0..3 {
            match issuer::worker::issue_for_patient(
                &self.cards,
                &self.issue_config,
                &self.pool,
                patient_id,
            )
            .await
            {
                Ok(_) => {}
                Err(e) if e.is_retryable() => return Err(ActionError::Temporary("database")),
                Err(e) => return Err(ActionError::Card(e.code())),
            }
            let version = self
                .store
                .get_patient(patient_id)
                .await
                .map_err(temp)?
                .ok_or(ActionError::Temporary("patient vanished"))?
                .doses_version;
            let active = self
                .store
                .active_credential(
                    patient_id,
                    &self.issuer_id,
                    disease,
                    store::CredentialFormat::Shc,
                )
                .await
                .map_err(temp)?;
            if let Some(c) = active.filter(|c| c.doses_version == version) {
                return Ok(c);
            }
        }
        Err(ActionError::Temporary("doses kept changing"))
    }
}

#[async_trait]
impl CardActions for SigningActions {
    async fn issue(
        &self,
        ctx: &ActionContext,
        record: &model::Normalized,
        card_doses: &[model::Dose],
    ) -> Result<IssuedCard, ActionError> {
        let disease = card_doses
            .first()
            .map(|d| d.disease.clone())
            .ok_or(ActionError::Card("no-doses"))?;
        let patient_id = self.apply(ctx, record).await?;
        let credential = self.current_credential(&patient_id, &disease).await?;
        self.audit(
            ctx,
            "credential.issue.launch",
            &credential.id,
            serde_json::json!({
                "patient_id": patient_id,
                "ehr": ctx.ehr,
                "kid": credential.kid,
                "doses_version": credential.doses_version,
            }),
        )
        .await?;
        tracing::info!(credential_id = %credential.id, kid = %credential.kid, "card issued from launch");
        let qr_text =
            shc::qr::numeric_text(&credential.artefact).map_err(|e| ActionError::Card(e.code()))?;
        Ok(IssuedCard {
            credential_id: Some(credential.id),
            jws: credential.artefact,
            qr_text,
            kid: credential.kid,
        })
    }

    async fn printable_pdf(
        &self,
        _ctx: &ActionContext,
        card: &IssuedCard,
        _patient: &model::Patient,
    ) -> Result<Vec<u8>, ActionError> {
        let opts = issuer::pdf::PrintOptions {
            issuer_name: &self.issuer_name,
            iss: &self.iss,
            paper: self.paper,
        };
        issuer::pdf::render(&card.jws, &opts).map_err(|e| ActionError::Card(e.code()))
    }

    async fn send_sms(
        &self,
        ctx: &ActionContext,
        card: &IssuedCard,
        phone: &str,
    ) -> Result<SmsSent, ActionError> {
        let (d, credential) = self.delivery_and_credential(card, "sms").await?;
        let to = delivery::sms::E164::parse(phone, &d.settings().phone_default_region)
            .map_err(|_| ActionError::Invalid("phone number"))?;
        let options = delivery::links::LinkOptions {
            label: Some("Vaccination record".to_owned()),
            ..delivery::links::LinkOptions::default()
        };
        let link = delivery::links::create_link(d, &credential, &options)
            .await
            .map_err(|e| delivery_error(&e, "sms"))?;
        let job =
            delivery::notify::send_link_sms(d, &credential.id, &link.link_id, to, link.viewer_link)
                .await
                .map_err(|e| delivery_error(&e, "sms"))?;
        // The delivery id only: the link id is a capability and the number is PHI.
        self.audit(
            ctx,
            "credential.send.sms",
            &credential.id,
            serde_json::json!({"delivery_id": job.id}),
        )
        .await?;
        Ok(SmsSent {
            delivery_id: job.id,
        })
    }

    async fn register_wallet(
        &self,
        ctx: &ActionContext,
        card: &IssuedCard,
        url: &str,
    ) -> Result<WalletRegistered, ActionError> {
        let (d, credential) = self.delivery_and_credential(card, "wallet").await?;
        let parsed = url::Url::parse(url).map_err(|_| ActionError::Invalid("wallet url"))?;
        // The same SSRF guard the pushes go through: refuse now what could never be delivered.
        d.outbound()
            .vet(&parsed)
            .await
            .map_err(|_| ActionError::Invalid("wallet url"))?;
        let secret = delivery::webhook::WebhookSecret::generate().to_wire();
        let endpoint = self
            .store
            .create_wallet_endpoint(&store::NewWalletEndpoint {
                patient_id: credential.patient_id.clone(),
                url: parsed.to_string(),
                secret: secret.clone(),
            })
            .await
            .map_err(|_| ActionError::Temporary("database"))?;
        delivery::worker::enqueue_wallet_jobs(d, &credential.id)
            .await
            .map_err(|e| delivery_error(&e, "wallet"))?;
        // Push now rather than at the worker's next poll; failures are retried by delivery.
        let d2 = d.clone();
        tokio::spawn(async move {
            if let Err(e) = delivery::worker::process_due(&d2).await {
                tracing::warn!(
                    error.code = e.code(),
                    "wallet push after registration failed"
                );
            }
        });
        self.audit(
            ctx,
            "wallet.register.launch",
            &credential.id,
            serde_json::json!({"endpoint_id": endpoint.id}),
        )
        .await?;
        Ok(WalletRegistered {
            endpoint_id: endpoint.id,
            signing_secret: secret,
        })
    }
}

fn delivery_error(e: &delivery::DeliveryError, what: &'static str) -> ActionError {
    match e {
        delivery::DeliveryError::SmsDisabled => ActionError::NotAvailable(what),
        _ if e.is_retryable() => ActionError::Temporary(what),
        _ => ActionError::Invalid(what),
    }
}
