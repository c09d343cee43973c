//! The issue worker: consumes `{p}.issue` jobs (`{patient_id, doses_version}`, published by the
//! outbox relay) in micro-batches and makes sure each patient has one current, signed card per
//! disease group.
//!
//! Jobs are coalesced: the worker always signs the patient's *current* snapshot, whatever version
//! the job names, and the store refuses a second active card for the same version
//! (`AlreadyIssued`) or a card for a version that moved on meanwhile (`Stale`: a newer job is
//! queued). A burst of N events for one patient therefore yields one current card, not N stale
//! ones, and replays or duplicate jobs change nothing.
//!
//! A disease group whose doses are all gone (entered-in-error) has its active card revoked.
//! Settlement: ack after the database commit (one multiple-ack per batch); database or broker
//! outages → retry queue (kept at the longest delay while the outage lasts: an outage is not the
//! message's fault); a card that cannot be built from stored data → DLQ with the reason's code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{Bus, Delivery};
use futures_util::StreamExt;
use model::{CardOptions, FhirDate, HumanName};
use shc::{CardIssuer, Claims};
use store::{
    CredentialFormat, CredentialStatus, IssueJob, NewCredential, PatientIdentity, Store,
    StoreCredentialOutcome,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::{Error, Result};
use crate::keystore::KeyStore;
use crate::relay::RelayHandle;

/// Worker tuning.
#[derive(Debug, Clone)]
pub struct IssueConfig {
    /// Most jobs per micro-batch (keep ≤ the consumer prefetch).
    pub batch: usize,
    /// How long to wait for more jobs once one arrived.
    pub linger: Duration,
    /// Patients signed and stored concurrently within a batch.
    pub concurrency: usize,
    /// Card options (IAL policy).
    pub card_options: CardOptions,
    /// Secret for `rid`s (revocation ids, `shc::rid::derive`); `None` issues cards without `rid`.
    pub rid_secret: Option<String>,
    /// Development only: sign cards for an `http://` `iss` (a loopback `serve`).
    pub allow_insecure_iss: bool,
}

impl Default for IssueConfig {
    fn default() -> Self {
        IssueConfig {
            batch: 100,
            linger: Duration::from_millis(3),
            concurrency: 8,
            card_options: CardOptions::default(),
            rid_secret: None,
            allow_insecure_iss: false,
        }
    }
}

/// What the worker needs. Cheap to clone.
#[derive(Clone)]
pub struct IssueContext {
    /// The database.
    pub store: Store,
    /// The broker.
    pub bus: Bus,
    /// Signing keys.
    pub keys: Arc<dyn KeyStore>,
    /// Issuer id → `iss`, for every issuer this worker signs for.
    pub issuers: Arc<HashMap<String, String>>,
    /// Woken after a card (and its `deliver` outbox row) is committed.
    pub relay: RelayHandle,
    /// Where the issue latency histogram goes (`None` in tools and some tests).
    pub metrics: Option<platform::Metrics>,
}

/// What happened to one patient's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    /// New cards stored (ids), older ones superseded.
    Issued(Vec<String>),
    /// Nothing to do: cards for the current version exist, or the version moved on (a newer job
    /// is queued), or the patient does not exist.
    UpToDate,
    /// Active cards revoked because no dose is left for their disease group.
    Revoked(Vec<String>),
}

/// Runs one issue worker until `shutdown`: the batch in hand is finished, then the consumer is
/// dropped so prefetched jobs return to the queue.
pub async fn run(
    ctx: IssueContext,
    config: IssueConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut consumer = ctx.bus.consumer("issue")?;
    let pool = IssuerPool::default();
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            d = consumer.recv() => match d {
                Some(d) => d,
                None => return Ok(()),
            },
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.linger;
        while batch.len() < config.batch {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Some(d)) => batch.push(d),
                _ => break,
            }
        }
        process_batch(&ctx, &config, &pool, batch)
            .instrument(info_span!(
                "issue_batch",
                otel.kind = "CONSUMER",
                messaging.system = "rabbitmq"
            ))
            .await;
    }
}

/// Reusable card issuers (each keeps its DEFLATE compressor), by `kid`.
#[derive(Default)]
pub struct IssuerPool(Mutex<HashMap<String, Vec<CardIssuer>>>);

impl IssuerPool {
    fn take(&self, keys: &dyn KeyStore, issuer_id: &str) -> Result<CardIssuer> {
        let signer = keys.active_signer(issuer_id)?;
        let pooled = self
            .0
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(signer.kid()).and_then(Vec::pop));
        Ok(pooled.unwrap_or_else(|| CardIssuer::new(signer)))
    }

    fn put(&self, issuer: CardIssuer) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(issuer.kid().to_owned()).or_default().push(issuer);
        }
    }
}

async fn process_batch(
    ctx: &IssueContext,
    config: &IssueConfig,
    pool: &IssuerPool,
    batch: Vec<Delivery>,
) {
    let mut to_ack: Vec<Delivery> = Vec::with_capacity(batch.len());
    let mut by_patient: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for d in batch {
        match serde_json::from_slice::<IssueJob>(d.body()) {
            Ok(job) => by_patient.entry(job.patient_id).or_default().push(d),
            Err(_) => {
                let e = Error::BadJob;
                if let Err(err) = d
                    .dead_letter(
                        e.code(),
                        "issue job body is not {patient_id, doses_version}",
                    )
                    .await
                {
                    warn!(
                        code = err.code(),
                        "cannot dead-letter a malformed issue job"
                    );
                }
            }
        }
    }
    let patients: Vec<String> = by_patient.keys().cloned().collect();
    let results: Vec<(String, Result<IssueOutcome>)> = futures_util::stream::iter(patients)
        .map(|pid| async move {
            let started = std::time::Instant::now();
            let r = issue_for_patient(ctx, config, pool, &pid).await;
            if let (Some(m), Ok(_)) = (&ctx.metrics, &r) {
                m.observe_issue_latency(started.elapsed());
            }
            (pid, r)
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    for (pid, result) in results {
        let deliveries = by_patient.remove(&pid).unwrap_or_default();
        match result {
            Ok(outcome) => {
                debug!(patient_id = %pid, ?outcome, "issue job done");
                to_ack.extend(deliveries);
            }
            Err(e) if e.is_retryable() => {
                warn!(patient_id = %pid, code = e.code(), "issue failed transiently; retrying");
                for d in deliveries {
                    retry_later(d).await;
                }
            }
            Err(e) => {
                warn!(patient_id = %pid, code = e.code(), error = %e, "issue failed; dead-lettering");
                for d in deliveries {
                    if let Err(err) = d.dead_letter(e.code(), &e.to_string()).await {
                        warn!(code = err.code(), "cannot dead-letter an issue job");
                    }
                }
            }
        }
    }
    ack_all(to_ack).await;
}

/// Sends `d` to the retry queue for its attempt, staying at the longest delay once the schedule
/// is used up (outages are not the message's fault: it must not end in the DLQ for them).
pub(crate) async fn retry_later(d: Delivery) {
    let index = usize::try_from(d.attempt()).unwrap_or(usize::MAX);
    if let Err(e) = d.retry(index).await {
        // Unsettled: it returns to the queue when its channel closes (at-least-once).
        warn!(code = e.code(), "cannot schedule a retry");
    }
}

/// Acks a batch with one multiple-ack on its last delivery (every earlier one of the same channel
/// is covered). Deliveries from an older channel (a reconnect happened mid-batch) cannot be acked
/// any more and are redelivered by the broker; handlers are idempotent.
pub(crate) async fn ack_all(mut deliveries: Vec<Delivery>) {
    let Some(last) = deliveries.pop() else {
        return;
    };
    if let Err(e) = last.ack_multiple().await {
        warn!(
            code = e.code(),
            "batch ack failed; the broker will redeliver"
        );
    }
}

/// Issues (or revokes) the cards of one patient from the current snapshot.
pub async fn issue_for_patient(
    ctx: &IssueContext,
    config: &IssueConfig,
    pool: &IssuerPool,
    patient_id: &str,
) -> Result<IssueOutcome> {
    let Some(snap) = ctx.store.issue_snapshot(patient_id).await? else {
        return Ok(IssueOutcome::UpToDate);
    };
    let issuer_id = snap.patient.issuer_id.clone();
    let iss = ctx
        .issuers
        .get(&issuer_id)
        .cloned()
        .ok_or(Error::KeyStore("no key for this issuer"))?;
    let mut groups: BTreeMap<String, Vec<model::Dose>> = BTreeMap::new();
    for d in &snap.doses {
        groups
            .entry(d.disease.clone())
            .or_default()
            .push(to_model_dose(d)?);
    }
    // Groups whose doses are gone: revoke their active card.
    let mut revoked = Vec::new();
    let current: BTreeSet<&String> = groups.keys().collect();
    for c in ctx.store.list_credentials(patient_id).await? {
        if c.status == CredentialStatus::Active && !current.contains(&c.disease) {
            // Revoked as `rid.(nbf + 1)`: this card and earlier ones, not later cards.
            ctx.store.revoke_credential(&c.id).await?;
            revoked.push(c.id);
        }
    }
    if groups.is_empty() {
        return Ok(if revoked.is_empty() {
            IssueOutcome::UpToDate
        } else {
            IssueOutcome::Revoked(revoked)
        });
    }
    let patient = to_model_patient(&snap.patient.identity)?;
    let mut issued = Vec::new();
    for (disease, doses) in groups {
        if let Some(existing) = ctx
            .store
            .active_credential(patient_id, &issuer_id, &disease, CredentialFormat::Shc)
            .await?
        {
            if existing.doses_version == snap.patient.doses_version {
                continue;
            }
        }
        let bundle =
            model::card_bundle(&patient, &doses, &config.card_options).map_err(Error::Card)?;
        let mut card_issuer = pool.take(ctx.keys.as_ref(), &issuer_id)?;
        card_issuer.set_allow_insecure_iss(config.allow_insecure_iss);
        let kid = card_issuer.kid().to_owned();
        let mut claims = Claims::new(iss.clone());
        claims.rid = config
            .rid_secret
            .as_deref()
            .map(|secret| shc::rid::derive(secret, &kid, patient_id));
        // A card issued in the same second as a revoked one of this patient would fall under
        // its `rid.t` CRL entry (revoked if nbf < t): start this card's validity at t instead.
        if let Some(rid) = &claims.rid {
            if let Some(Some(t)) = ctx.store.revoked_before(&issuer_id, &kid, rid).await? {
                if let Ok(t) = u64::try_from(t) {
                    if claims.nbf.as_f64() < t as f64 {
                        claims.nbf = shc::NumericDate::from_secs(t);
                    }
                }
            }
        }
        let nbf = claims.nbf.as_f64() as i64;
        let signed = match card_issuer.issue_minimized(&bundle, &claims) {
            Ok(card) => Ok(card.jws),
            // Too many doses for one QR: still a valid card as a file or link.
            Err(shc::Error::TooLargeForQr { .. }) => card_issuer.sign_payload_of(&bundle, &claims),
            Err(e) => Err(e),
        };
        pool.put(card_issuer);
        let jws = signed.map_err(Error::Sign)?;
        let outcome = ctx
            .store
            .store_credential(&NewCredential {
                issuer_id: issuer_id.clone(),
                patient_id: patient_id.to_owned(),
                disease,
                doses_version: snap.patient.doses_version,
                format: CredentialFormat::Shc,
                artefact: jws,
                kid,
                rid: claims.rid.clone(),
                nbf,
                exp: None,
                status: CredentialStatus::Active,
            })
            .await?;
        match outcome {
            StoreCredentialOutcome::Stored { credential_id, .. } => {
                ctx.relay.wake();
                issued.push(credential_id);
            }
            StoreCredentialOutcome::Stale { .. } | StoreCredentialOutcome::AlreadyIssued { .. } => {
            }
        }
    }
    Ok(if issued.is_empty() {
        IssueOutcome::UpToDate
    } else {
        IssueOutcome::Issued(issued)
    })
}

/// The card-relevant identity as the model's patient. Stored identities were normalized on
/// ingest, so a failure here means the row was edited by hand: reported, not guessed.
fn to_model_patient(identity: &PatientIdentity) -> Result<model::Patient> {
    let name = match (&identity.family, identity.given.is_empty(), &identity.text) {
        (Some(family), false, _) => HumanName::Parts {
            family: family.clone(),
            given: identity.given.clone(),
            suffix: Vec::new(),
        },
        (_, _, Some(text)) => HumanName::Text { text: text.clone() },
        _ => return Err(Error::Card(model::Reject::PatientNameMissing)),
    };
    let birth_date = identity
        .birth_date
        .as_deref()
        .and_then(FhirDate::parse)
        .ok_or(Error::Card(model::Reject::BirthDateInvalid))?;
    Ok(model::Patient::new(name, birth_date))
}

fn to_model_dose(d: &store::Dose) -> Result<model::Dose> {
    let occurrence = d
        .occurrence
        .as_deref()
        .and_then(FhirDate::parse)
        .ok_or(Error::Card(model::Reject::OccurrenceInvalid { entry: 0 }))?;
    Ok(model::Dose {
        source: model::SourceKey {
            system: d.source_system.clone(),
            id: d.source_id.clone(),
        },
        version: model::SourceVersion::default(),
        vaccine: model::VaccineCode {
            system: d.vaccine_system.clone(),
            code: d.vaccine_code.clone(),
        },
        disease: d.disease.clone(),
        occurrence,
        lot_number: d.lot_number.clone(),
        performer: d.performer.clone(),
        is_subpotent: d.is_subpotent,
        ial: None,
    })
}
