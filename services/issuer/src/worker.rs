//! The issue worker: consumes `{p}.issue` messages (one job `{patient_id, doses_version}` or a
//! pack `{"jobs": [...]}` from the outbox relay) in micro-batches and makes sure each patient
//! has one current, signed card per disease group.
//!
//! A batch costs a fixed number of database round trips whatever its size: one read
//! transaction for every patient's snapshot and active cards (`Store::issue_snapshots`), one CRL
//! lookup per signing key, one write transaction for every card with its supersede and
//! `deliver` outbox row (`Store::store_credentials`). Signing happens in between, on one pooled
//! `CardIssuer` per key.
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
//! A pack whose patients got different answers is split: the unfinished ones go back to the
//! queue as single jobs and are settled one by one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{Bus, Delivery, Outgoing};
use model::{CardOptions, FhirDate, HumanName};
use shc::{CardIssuer, Claims};
use store::{
    CredentialFormat, CredentialStatus, IssueJob, IssueMessage, NewCredential, PatientIdentity,
    Store, StoreCredentialOutcome,
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
            card_options: CardOptions::default(),
            rid_secret: None,
            allow_insecure_iss: false,
        }
    }
}

/// What signing and storing cards needs ([`issue_for_patients`]): the issue worker's, and the
/// launch app's when a clinician issues at the point of care. Cheap to clone.
#[derive(Clone)]
pub struct CardContext {
    /// The database.
    pub store: Store,
    /// Signing keys.
    pub keys: Arc<dyn KeyStore>,
    /// Issuer id → `iss`, for every issuer signed for.
    pub issuers: Arc<HashMap<String, String>>,
    /// Woken after cards (and their `deliver` outbox rows) are committed; without one the
    /// relay finds the rows on its next poll.
    pub relay: Option<RelayHandle>,
}

/// What the worker needs. Cheap to clone.
#[derive(Clone)]
pub struct IssueContext {
    /// Signing and storing.
    pub cards: CardContext,
    /// The broker.
    pub bus: Bus,
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
    // One publisher (one channel) for the worker's whole life: splitting packs.
    let publisher = ctx.bus.publisher();
    loop {
        let Some(batch) = consumer
            .recv_batch(config.batch, config.linger, shutdown.cancelled())
            .await
        else {
            return Ok(());
        };
        process_batch(&ctx, &config, &pool, &publisher, batch)
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
    publisher: &bus::Publisher,
    batch: Vec<Delivery>,
) {
    // Each delivery carries one job or a pack of them (`IssueMessage`).
    let mut held: Vec<(Delivery, Vec<IssueJob>)> = Vec::with_capacity(batch.len());
    for d in batch {
        match serde_json::from_slice::<IssueMessage>(d.body()) {
            Ok(m) => held.push((d, m.into_jobs())),
            Err(_) => {
                let e = Error::BadJob;
                if let Err(err) = d
                    .dead_letter(
                        e.code(),
                        "issue job body is not {patient_id, doses_version} or {jobs: [...]}",
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
    let patients: Vec<String> = held
        .iter()
        .flat_map(|(_, jobs)| jobs.iter().map(|j| j.patient_id.clone()))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let started = std::time::Instant::now();
    let (results, batch_verdict) =
        match issue_for_patients(&ctx.cards, config, pool, &patients).await {
            Ok(results) => (results, None),
            // The batch's reads or its one write failed: the same answer for every patient.
            Err(e) => {
                warn!(
                    code = e.code(),
                    patients = patients.len(),
                    "issue batch failed"
                );
                (HashMap::new(), Some(Verdict::of_error(&e)))
            }
        };
    let elapsed = started.elapsed();
    let verdict_of = |pid: &str| -> Verdict {
        match (&batch_verdict, results.get(pid)) {
            (Some(v), _) => v.clone(),
            (None, Some(Ok(outcome))) => {
                debug!(patient_id = %pid, ?outcome, "issue job done");
                Verdict::Ack
            }
            (None, Some(Err(e))) => {
                warn!(patient_id = %pid, code = e.code(), error = %e, "issue failed");
                Verdict::of_error(e)
            }
            (None, None) => Verdict::Ack,
        }
    };
    let mut to_ack: Vec<Delivery> = Vec::new();
    for (d, jobs) in held {
        let verdicts: Vec<(IssueJob, Verdict)> = jobs
            .into_iter()
            .map(|j| {
                let v = verdict_of(&j.patient_id);
                (j, v)
            })
            .collect();
        if let Some(m) = &ctx.metrics {
            for _ in verdicts.iter().filter(|(_, v)| matches!(v, Verdict::Ack)) {
                m.observe_issue_latency(elapsed);
            }
        }
        if verdicts.iter().all(|(_, v)| matches!(v, Verdict::Ack)) {
            to_ack.push(d);
        } else if verdicts.iter().all(|(_, v)| matches!(v, Verdict::Retry)) {
            retry_later(d).await;
        } else if let [(_, Verdict::DeadLetter { code, reason })] = verdicts.as_slice() {
            if let Err(err) = d.dead_letter(code, reason).await {
                warn!(code = err.code(), "cannot dead-letter an issue job");
            }
        } else {
            // A pack with mixed answers: the patients not done go back to the queue as jobs
            // of their own (settled one by one next time), then the pack is acked.
            split_pack(ctx, publisher, d, &verdicts).await;
        }
    }
    if let Err(e) = Delivery::ack_all(to_ack).await {
        warn!(
            code = e.code(),
            "batch ack failed; the broker will redeliver"
        );
    }
}

/// Republishes the unfinished patients of a pack as single jobs (with confirms), then acks the
/// pack; if the republish fails the pack is returned to its queue whole (done patients are
/// no-ops the next time).
async fn split_pack(
    ctx: &IssueContext,
    publisher: &bus::Publisher,
    d: Delivery,
    verdicts: &[(IssueJob, Verdict)],
) {
    let queue = ctx.bus.topology().queue("issue");
    let singles: Vec<Outgoing> = verdicts
        .iter()
        .filter(|(_, v)| !matches!(v, Verdict::Ack))
        .map(|(job, _)| {
            Outgoing::to_queue(queue.clone(), serde_json::to_vec(job).unwrap_or_default())
                .content_type("application/json")
        })
        .collect();
    let settled = match publisher.publish_batch(&singles).await {
        Ok(()) => d.ack().await,
        Err(e) => {
            warn!(code = e.code(), "cannot split an issue pack; requeueing it");
            d.reject_requeue().await
        }
    };
    if let Err(e) = settled {
        warn!(
            code = e.code(),
            "cannot settle an issue pack; the broker will redeliver"
        );
    }
}

/// How a patient's jobs are settled.
#[derive(Debug, Clone)]
enum Verdict {
    Ack,
    /// Database or broker outage: retry queue, for as long as it lasts.
    Retry,
    /// A card that cannot be built from stored data: DLQ.
    DeadLetter {
        code: &'static str,
        reason: String,
    },
}

impl Verdict {
    fn of_error(e: &Error) -> Self {
        if e.is_retryable() {
            Verdict::Retry
        } else {
            Verdict::DeadLetter {
                code: e.code(),
                reason: e.to_string(),
            }
        }
    }
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

/// Issues (or revokes) the cards of one patient from the current snapshot.
pub async fn issue_for_patient(
    ctx: &CardContext,
    config: &IssueConfig,
    pool: &IssuerPool,
    patient_id: &str,
) -> Result<IssueOutcome> {
    issue_for_patients(ctx, config, pool, &[patient_id.to_owned()])
        .await?
        .remove(patient_id)
        .unwrap_or(Ok(IssueOutcome::UpToDate))
}

/// A card to sign and store.
struct Pending {
    patient_id: String,
    issuer_id: String,
    disease: String,
    doses_version: i64,
    bundle: serde_json::Value,
    claims: Claims,
}

/// Issues (or revokes) the cards of many patients from their current snapshots, with a fixed
/// number of database round trips whatever their number: one read transaction for every
/// snapshot and active card, one CRL lookup per key, one write transaction for every card
/// (`Store::store_credentials`). The outer error is the batch's (database down: every patient
/// retries); the inner ones are per patient (a card that cannot be built from stored data).
pub async fn issue_for_patients(
    ctx: &CardContext,
    config: &IssueConfig,
    pool: &IssuerPool,
    patient_ids: &[String],
) -> Result<HashMap<String, Result<IssueOutcome>>> {
    let mut results: HashMap<String, Result<IssueOutcome>> = HashMap::new();
    for pid in patient_ids {
        // Patients that do not exist (any more) have nothing to issue.
        results.insert(pid.clone(), Ok(IssueOutcome::UpToDate));
    }
    let states = ctx.store.issue_snapshots(patient_ids).await?;
    let mut pending: Vec<Pending> = Vec::new();
    for state in states {
        let pid = state.snapshot.patient.id.clone();
        match plan_patient(ctx, config, state).await {
            Ok(Planned::Cards(cards)) => pending.extend(cards),
            Ok(Planned::Done(outcome)) => {
                results.insert(pid, Ok(outcome));
            }
            Err(e) => {
                results.insert(pid, Err(e));
            }
        }
    }
    if pending.is_empty() {
        return Ok(results);
    }

    // Sign, one pooled issuer (and key) per issuer id.
    let mut cards: Vec<NewCredential> = Vec::with_capacity(pending.len());
    let mut by_issuer: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
    for p in pending {
        by_issuer.entry(p.issuer_id.clone()).or_default().push(p);
    }
    for (issuer_id, group) in by_issuer {
        let mut card_issuer = match pool.take(ctx.keys.as_ref(), &issuer_id) {
            Ok(i) => i,
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                for p in group {
                    results.insert(p.patient_id, Err(Error::KeyStore(e.code())));
                }
                continue;
            }
        };
        card_issuer.set_allow_insecure_iss(config.allow_insecure_iss);
        let kid = card_issuer.kid().to_owned();
        let mut group = group;
        if let Some(secret) = config.rid_secret.as_deref() {
            for p in &mut group {
                p.claims.rid = Some(shc::rid::derive(secret, &kid, &p.patient_id));
            }
            let rids: Vec<String> = group.iter().filter_map(|p| p.claims.rid.clone()).collect();
            let listed = match ctx.store.revoked_before_many(&issuer_id, &kid, &rids).await {
                Ok(l) => l,
                Err(e) => {
                    pool.put(card_issuer);
                    return Err(e.into());
                }
            };
            // A card issued in the same second as a revoked one of this patient would fall
            // under its `rid.t` CRL entry (revoked if nbf < t): start its validity at t instead.
            for p in &mut group {
                let t = p
                    .claims
                    .rid
                    .as_ref()
                    .and_then(|r| listed.get(r).copied().flatten());
                if let Some(t) = t.and_then(|t| u64::try_from(t).ok()) {
                    if p.claims.nbf.as_f64() < t as f64 {
                        p.claims.nbf = shc::NumericDate::from_secs(t);
                    }
                }
            }
        }
        for p in group {
            // No QR size check here: a card too large for one QR is still valid as a file or
            // link, and QR images are rendered on request.
            match card_issuer.sign_payload_of(&p.bundle, &p.claims) {
                Ok(jws) => cards.push(NewCredential {
                    issuer_id: p.issuer_id,
                    patient_id: p.patient_id,
                    disease: p.disease,
                    doses_version: p.doses_version,
                    format: CredentialFormat::Shc,
                    artefact: jws,
                    kid: kid.clone(),
                    nbf: p.claims.nbf.as_f64() as i64,
                    rid: p.claims.rid,
                    exp: None,
                    status: CredentialStatus::Active,
                }),
                Err(e) => {
                    results.insert(p.patient_id, Err(Error::Sign(e)));
                }
            }
        }
        pool.put(card_issuer);
    }
    // A patient whose card failed is retried or dead-lettered as a whole: store none of theirs.
    cards.retain(|c| !matches!(results.get(&c.patient_id), Some(Err(_))));
    let outcomes = ctx.store.store_credentials(&cards).await?;
    let mut stored_any = false;
    for (card, outcome) in cards.iter().zip(outcomes) {
        match outcome {
            Ok(StoreCredentialOutcome::Stored { credential_id, .. }) => {
                stored_any = true;
                let entry = results
                    .entry(card.patient_id.clone())
                    .or_insert(Ok(IssueOutcome::UpToDate));
                match entry {
                    Ok(IssueOutcome::Issued(ids)) => ids.push(credential_id),
                    Ok(other) => *other = IssueOutcome::Issued(vec![credential_id]),
                    Err(_) => {}
                }
            }
            // A newer job is queued, or the card exists: nothing to do for this one.
            Ok(
                StoreCredentialOutcome::Stale { .. } | StoreCredentialOutcome::AlreadyIssued { .. },
            ) => {}
            Err(e) => {
                results.insert(card.patient_id.clone(), Err(e.into()));
            }
        }
    }
    if let (true, Some(relay)) = (stored_any, &ctx.relay) {
        relay.wake();
    }
    Ok(results)
}

/// What one patient's snapshot asks for.
enum Planned {
    /// Cards to sign (one per disease group whose card is not current).
    Cards(Vec<Pending>),
    /// Nothing to sign; the outcome (revocations, or up to date).
    Done(IssueOutcome),
}

async fn plan_patient(
    ctx: &CardContext,
    config: &IssueConfig,
    state: store::IssueState,
) -> Result<Planned> {
    let snap = state.snapshot;
    let patient_id = snap.patient.id.clone();
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
    // Groups whose doses are gone: revoke their active card (rare: one transaction each, for
    // the CRL entry that goes with it).
    let mut revoked = Vec::new();
    let current: BTreeSet<&String> = groups.keys().collect();
    for c in &state.active {
        if c.issuer_id == issuer_id && !current.contains(&c.disease) {
            // Revoked as `rid.(nbf + 1)`: this card and earlier ones, not later cards.
            ctx.store.revoke_credential(&c.id).await?;
            revoked.push(c.id.clone());
        }
    }
    // Groups whose card is current already need nothing.
    groups.retain(|disease, _| {
        !state.active.iter().any(|c| {
            c.issuer_id == issuer_id
                && c.disease == *disease
                && c.format == CredentialFormat::Shc
                && c.doses_version == snap.patient.doses_version
        })
    });
    if groups.is_empty() {
        return Ok(Planned::Done(if revoked.is_empty() {
            IssueOutcome::UpToDate
        } else {
            IssueOutcome::Revoked(revoked)
        }));
    }
    let patient = to_model_patient(&snap.patient.identity)?;
    let mut cards = Vec::with_capacity(groups.len());
    for (disease, doses) in groups {
        let bundle =
            model::card_bundle(&patient, &doses, &config.card_options).map_err(Error::Card)?;
        cards.push(Pending {
            patient_id: patient_id.clone(),
            issuer_id: issuer_id.clone(),
            disease,
            doses_version: snap.patient.doses_version,
            bundle,
            claims: Claims::new(iss.clone()),
        });
    }
    Ok(Planned::Cards(cards))
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
