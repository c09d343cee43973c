//! The ingest consumer: micro-batches from `{p}.ingest` (up to `batch` messages or `linger` after
//! the first), one idempotent `events` insert for the batch, parse + normalize (+ Patient fetch),
//! ONE `apply_events` transaction for every accepted message, then settlement: dead letters and
//! retries individually (each confirmed before its ack), everything else with one multiple-ack.
//!
//! Settlement rules:
//! - already finished (`message_id`/content hash seen and done), or a duplicate inside the batch:
//!   ack, nothing else (a rejected one that the broker *re*delivers is dead-lettered again, in
//!   case the first dead-letter did not complete);
//! - bad input (the model's reject codes, `patient-not-found`, …): `events` row `rejected` with
//!   the code, then DLQ with `x-vaxcred-error`/`x-vaxcred-reason` (reason is PHI-free);
//! - EHR unavailable or refusing our token: retry queues, then DLQ when the schedule is used up;
//! - database unavailable: retry queues, staying at the longest delay for as long as the outage
//!   lasts (an outage is not the message's fault), and the worker pauses before the next batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, Delivery};
use futures_util::StreamExt;
use model::{FetchedPatient, Outcome, Reject};
use platform::metrics::EventOutcome;
use platform::Metrics;
use sha2::{Digest, Sha256};
use store::{ApplyEvent, EventStatus, IncomingEvent, Recorded, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::config::IngestConfig;
use crate::convert;
use crate::error::{Error, Result};
use crate::fhir::FhirClient;
use crate::smart::SmartClient;

/// Pause before the next batch after the database failed, so an outage is not a hot loop.
const OUTAGE_PAUSE: Duration = Duration::from_millis(250);

struct SourceRuntime {
    issuer_id: String,
    fhir_base: Option<String>,
    client: Option<FhirClient>,
}

/// Everything the consumer needs. Cheap to clone.
#[derive(Clone)]
pub struct IngestContext {
    store: Store,
    bus: Bus,
    config: Arc<IngestConfig>,
    sources: Arc<HashMap<String, SourceRuntime>>,
    outbox: Arc<Notify>,
    metrics: Option<Metrics>,
}

impl IngestContext {
    /// Builds the context: one HTTP client (timeout `config.http_timeout`) and one token client
    /// per source with SMART credentials. `outbox` is notified after each commit that wrote
    /// outbox rows (the relay's wake-up, `issuer::relay::RelayHandle::notifier`).
    pub fn new(
        store: Store,
        bus: Bus,
        config: IngestConfig,
        outbox: Arc<Notify>,
        metrics: Option<Metrics>,
    ) -> Result<Self> {
        platform::tls::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::Config("cannot build the HTTP client"))?;
        let mut sources = HashMap::new();
        for s in &config.sources {
            let smart = match &s.smart {
                Some(c) => Some(Arc::new(SmartClient::new(http.clone(), c.clone())?)),
                None => None,
            };
            let client = s
                .fhir_base_url
                .as_deref()
                .map(|base| FhirClient::new(http.clone(), base, smart));
            sources.insert(
                s.name.clone(),
                SourceRuntime {
                    issuer_id: s.issuer_id.clone(),
                    fhir_base: s.fhir_base_url.clone(),
                    client,
                },
            );
        }
        Ok(IngestContext {
            store,
            bus,
            config: Arc::new(config),
            sources: Arc::new(sources),
            outbox,
            metrics,
        })
    }

    fn count(&self, outcome: EventOutcome) {
        if let Some(m) = &self.metrics {
            m.record_event(outcome);
        }
    }
}

/// Runs one ingest consumer until `shutdown`: the batch in hand is finished and settled, then the
/// consumer is dropped so prefetched, unsettled messages return to the queue. Run several for
/// more throughput (each has its own channel).
pub async fn run(ctx: IngestContext, shutdown: CancellationToken) -> Result<()> {
    let mut consumer = ctx.bus.consumer("ingest")?;
    loop {
        let Some(batch) = consumer
            .recv_batch(ctx.config.batch, ctx.config.linger, shutdown.cancelled())
            .await
        else {
            return Ok(());
        };
        let outage = process_batch(&ctx, batch)
            .instrument(info_span!(
                "ingest_batch",
                otel.kind = "CONSUMER",
                messaging.system = "rabbitmq",
                messaging.operation = "process"
            ))
            .await;
        if outage {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(OUTAGE_PAUSE) => {}
            }
        }
    }
}

/// How one message will be settled.
enum Plan {
    /// Ack (with the batch).
    Ack,
    /// Accepted into the batch transaction (index into the apply list).
    Apply(usize),
    /// Dead-letter with a code and PHI-free reason; `event_id` is marked rejected first.
    Reject {
        event_id: Option<String>,
        code: &'static str,
        reason: String,
    },
    /// Retry later.
    Retry {
        event_id: Option<String>,
        code: &'static str,
        /// Keep retrying at the longest delay instead of dead-lettering when the schedule ends.
        outage: bool,
    },
}

enum Step {
    Ready(ApplyEvent),
    Fetch { reference: String },
    Done(Plan),
}

/// Processes and settles one batch; returns true when the database was unavailable.
async fn process_batch(ctx: &IngestContext, batch: Vec<Delivery>) -> bool {
    let incoming: Vec<IncomingEvent> = batch
        .iter()
        .map(|d| IncomingEvent {
            message_id: d.message_id().map(str::to_owned),
            content_hash: hex::encode(Sha256::digest(d.body())),
            source: d.header_str("source"),
        })
        .collect();
    let recorded = match ctx.store.record_events(&incoming).await {
        Ok(r) => r,
        Err(e) => {
            warn!(
                code = e.code(),
                batch = batch.len(),
                "cannot record events; retrying the batch"
            );
            let plans = batch
                .iter()
                .map(|_| Plan::Retry {
                    event_id: None,
                    code: e.code(),
                    outage: true,
                })
                .collect();
            settle(ctx, batch, plans).await;
            return true;
        }
    };

    let received_micros = chrono::Utc::now().timestamp_micros();
    let mut steps: Vec<Step> = Vec::with_capacity(batch.len());
    let mut event_ids: Vec<Option<String>> = Vec::with_capacity(batch.len());
    for ((d, rec), inc) in batch.iter().zip(&recorded).zip(&incoming) {
        let (event_id, fresh) = match rec {
            Recorded::New { event_id } | Recorded::Unfinished { event_id, .. } => {
                (event_id.clone(), true)
            }
            Recorded::Finished { event_id, status } => {
                // A rejected event seen again as a redelivery, or as a retry-queue copy (its
                // rejection was committed but the reply was lost, so it was retried), may never
                // have reached the DLQ: dead-letter it (again). A fresh duplicate publish is acked.
                let again =
                    *status == EventStatus::Rejected && (d.redelivered() || d.attempt() > 0);
                let step = if again {
                    rejected_again(ctx, event_id).await
                } else {
                    ctx.count(EventOutcome::Duplicate);
                    Step::Done(Plan::Ack)
                };
                steps.push(step);
                event_ids.push(Some(event_id.clone()));
                continue;
            }
            Recorded::DuplicateInBatch { event_id, .. } => {
                ctx.count(EventOutcome::Duplicate);
                steps.push(Step::Done(Plan::Ack));
                event_ids.push(Some(event_id.clone()));
                continue;
            }
        };
        debug_assert!(fresh);
        steps.push(first_step(
            ctx,
            d.body(),
            inc.source.as_deref(),
            &event_id,
            None,
            received_micros,
        ));
        event_ids.push(Some(event_id));
    }

    // Patient fetches, concurrently.
    let fetches: Vec<(usize, String)> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Fetch { reference } => Some((i, reference.clone())),
            _ => None,
        })
        .collect();
    if !fetches.is_empty() {
        let results: Vec<(usize, Step)> = futures_util::stream::iter(fetches)
            .map(|(i, reference)| {
                let d = batch.get(i);
                let source = incoming.get(i).and_then(|inc| inc.source.clone());
                let event_id = event_ids.get(i).cloned().flatten().unwrap_or_default();
                async move {
                    let body = d.map(Delivery::body).unwrap_or_default();
                    let step = fetch_step(
                        ctx,
                        body,
                        source.as_deref(),
                        &event_id,
                        &reference,
                        received_micros,
                    )
                    .await;
                    (i, step)
                }
            })
            .buffer_unordered(ctx.config.fetch_concurrency.max(1))
            .collect()
            .await;
        for (i, step) in results {
            if let Some(slot) = steps.get_mut(i) {
                *slot = step;
            }
        }
    }

    // One transaction for everything accepted.
    let mut applies: Vec<ApplyEvent> = Vec::new();
    let mut plans: Vec<Plan> = Vec::with_capacity(steps.len());
    for step in steps {
        plans.push(match step {
            Step::Ready(a) => {
                applies.push(a);
                Plan::Apply(applies.len() - 1)
            }
            Step::Done(plan) => plan,
            // Not reachable: every fetch was resolved above.
            Step::Fetch { .. } => Plan::Retry {
                event_id: None,
                code: "ingest-internal",
                outage: false,
            },
        });
    }
    let mut outage = false;
    if !applies.is_empty() {
        let outcome = apply_with_retry(&ctx.store, &applies).await;
        match outcome {
            Ok(()) => {
                ctx.outbox.notify_one();
                for p in &mut plans {
                    if matches!(p, Plan::Apply(_)) {
                        ctx.count(EventOutcome::Accepted);
                        *p = Plan::Ack;
                    }
                }
            }
            Err(e) if e.is_retryable() => {
                outage = true;
                warn!(
                    code = e.code(),
                    events = applies.len(),
                    "cannot apply the batch; retrying"
                );
                for (p, id) in plans.iter_mut().zip(&event_ids) {
                    if matches!(p, Plan::Apply(_)) {
                        *p = Plan::Retry {
                            event_id: id.clone(),
                            code: e.code(),
                            outage: true,
                        };
                    }
                }
            }
            Err(_) => {
                // Something in the batch is refused by the database: find it one by one.
                for (p, id) in plans.iter_mut().zip(&event_ids) {
                    let Plan::Apply(i) = p else { continue };
                    let Some(a) = applies.get(*i) else { continue };
                    *p = match ctx.store.apply_event(a).await {
                        Ok(_) => {
                            ctx.outbox.notify_one();
                            ctx.count(EventOutcome::Accepted);
                            Plan::Ack
                        }
                        Err(e) if e.is_retryable() => Plan::Retry {
                            event_id: id.clone(),
                            code: e.code(),
                            outage: true,
                        },
                        Err(e) => Plan::Reject {
                            event_id: id.clone(),
                            code: e.code(),
                            reason: "the database refused the event's data".to_owned(),
                        },
                    };
                }
            }
        }
    }
    settle(ctx, batch, plans).await;
    outage
}

/// Applies the batch, retrying lost races (concurrent consumers creating the same patient) a
/// few times at once; outages are returned to the caller.
async fn apply_with_retry(
    store: &Store,
    applies: &[ApplyEvent],
) -> std::result::Result<(), store::Error> {
    let mut attempt = 0;
    loop {
        match store.apply_events(applies).await {
            Ok(_) => return Ok(()),
            Err(e @ store::Error::Conflict { .. }) if attempt < 5 => {
                attempt += 1;
                debug!(code = e.code(), attempt, "apply lost a race; again");
            }
            Err(e) => return Err(e),
        }
    }
}

async fn rejected_again(ctx: &IngestContext, event_id: &str) -> Step {
    match ctx.store.get_event(event_id).await {
        Ok(Some(ev)) => {
            let code = ev.error_code.unwrap_or_default();
            Step::Done(Plan::Reject {
                event_id: None,
                code: known_code(&code),
                reason: "rejected earlier; dead-lettered again after a redelivery".to_owned(),
            })
        }
        _ => Step::Done(Plan::Ack),
    }
}

/// Maps a stored code back to a static one (codes are a closed set; unknown → generic).
fn known_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "too-large",
        "not-fhir-json",
        "wrong-resource-type",
        "bundle-type-unsupported",
        "no-immunization",
        "patient-missing",
        "patient-unresolved",
        "patient-mismatch",
        "patient-fetch-required",
        "multiple-patients",
        "patient-name-missing",
        "birth-date-missing",
        "birth-date-invalid",
        "status-not-done",
        "status-invalid",
        "vaccine-code-unknown",
        "vaccine-code-unspecific",
        "vaccine-code-conflict",
        "occurrence-missing",
        "occurrence-invalid",
        "no-doses",
        "disease-group-mixed",
        "value-set-invalid",
        "patient-not-found",
        "ehr-refused",
        "ehr-unavailable",
        "ehr-auth-failed",
        "patient-reference-foreign",
        "store-constraint",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("rejected")
}

fn issuer_and_base<'a>(ctx: &'a IngestContext, source: Option<&str>) -> (&'a str, Option<&'a str>) {
    match source.and_then(|s| ctx.sources.get(s)) {
        Some(s) => (s.issuer_id.as_str(), s.fhir_base.as_deref()),
        None => (ctx.config.default_issuer_id.as_str(), None),
    }
}

fn reject(event_id: &str, r: &Reject) -> Step {
    Step::Done(Plan::Reject {
        event_id: Some(event_id.to_owned()),
        code: r.code(),
        reason: r.to_string(),
    })
}

fn first_step(
    ctx: &IngestContext,
    body: &[u8],
    source: Option<&str>,
    event_id: &str,
    fetched: Option<&FetchedPatient>,
    received_micros: i64,
) -> Step {
    let parsed = match model::parse(body) {
        Ok(p) => p,
        Err(r) => return reject(event_id, &r),
    };
    match model::normalize(&parsed, fetched) {
        Err(r) => reject(event_id, &r),
        Ok(Outcome::PatientNeeded(needed)) => {
            if fetched.is_some() {
                // The fetched Patient did not satisfy the reference.
                return reject(event_id, &Reject::PatientMismatch);
            }
            Step::Fetch {
                reference: needed.reference,
            }
        }
        Ok(Outcome::Ready(n)) => {
            if let Some(r) = n.sole_reject() {
                return reject(event_id, r);
            }
            if n.events.is_empty() {
                return reject(event_id, &Reject::NoDoses);
            }
            let (issuer_id, base) = issuer_and_base(ctx, source);
            Step::Ready(convert::apply_event(
                event_id,
                issuer_id,
                source,
                base,
                &n,
                received_micros,
            ))
        }
    }
}

async fn fetch_step(
    ctx: &IngestContext,
    body: &[u8],
    source: Option<&str>,
    event_id: &str,
    reference: &str,
    received_micros: i64,
) -> Step {
    let client = source
        .and_then(|s| ctx.sources.get(s))
        .and_then(|s| s.client.as_ref());
    let Some(client) = client else {
        let e = Error::NoFhirEndpoint;
        return Step::Done(Plan::Reject {
            event_id: Some(event_id.to_owned()),
            code: e.code(),
            reason: e.to_string(),
        });
    };
    match client.fetch_patient(reference).await {
        Ok(bytes) => match FetchedPatient::parse(&bytes) {
            Ok(p) => first_step(ctx, body, source, event_id, Some(&p), received_micros),
            Err(_) => {
                let e = Error::EhrRefused { status: 200 };
                Step::Done(Plan::Reject {
                    event_id: Some(event_id.to_owned()),
                    code: e.code(),
                    reason: "the EHR's Patient response is not a FHIR Patient".to_owned(),
                })
            }
        },
        Err(e) if e.is_retryable() => Step::Done(Plan::Retry {
            event_id: Some(event_id.to_owned()),
            code: e.code(),
            outage: false,
        }),
        Err(e) => Step::Done(Plan::Reject {
            event_id: Some(event_id.to_owned()),
            code: e.code(),
            reason: e.to_string(),
        }),
    }
}

/// Settles every delivery of the batch by its plan: rejects (row, then DLQ), retries, then one
/// multiple-ack for the rest ([`Delivery::ack_all`]).
async fn settle(ctx: &IngestContext, batch: Vec<Delivery>, plans: Vec<Plan>) {
    let mut to_ack: Vec<Delivery> = Vec::new();
    // Once the database has failed in this batch, nothing more is asked of it: every status
    // write would wait out the busy timeout (SQLite) or the connect timeout first, one message
    // after the other, and hold the whole batch (and the pool) for minutes.
    let mut db_down = plans
        .iter()
        .any(|p| matches!(p, Plan::Retry { outage: true, .. }));
    for (d, plan) in batch.into_iter().zip(plans) {
        match plan {
            Plan::Ack | Plan::Apply(_) => to_ack.push(d),
            Plan::Reject {
                event_id,
                code,
                reason,
            } => {
                if let Some(id) = &event_id {
                    if db_down {
                        retry(d, "store-unavailable", true).await;
                        continue;
                    }
                    if let Err(e) = ctx.store.reject_event(id, code).await {
                        // Cannot record the outcome: try again later rather than lose the row.
                        warn!(event_id = %id, code = e.code(), "cannot mark the event rejected; retrying");
                        db_down = true;
                        retry(d, e.code(), true).await;
                        continue;
                    }
                }
                ctx.count(EventOutcome::Rejected);
                debug!(event_id = ?event_id, code, "event rejected");
                if let Err(e) = d.dead_letter(code, &reason).await {
                    warn!(
                        code = e.code(),
                        "cannot dead-letter; the broker will redeliver"
                    );
                }
            }
            Plan::Retry {
                event_id,
                code,
                outage,
            } => {
                if let (Some(id), false) = (&event_id, db_down) {
                    // Best effort: the status is for operators; the retry is what matters.
                    if ctx.store.mark_event_retrying(id, code).await.is_err() {
                        db_down = true;
                    }
                }
                ctx.count(EventOutcome::Retried);
                retry(d, code, outage).await;
            }
        }
    }
    if let Err(e) = Delivery::ack_all(to_ack).await {
        warn!(
            code = e.code(),
            "batch ack failed; the broker will redeliver"
        );
    }
}

async fn retry(d: Delivery, code: &'static str, outage: bool) {
    let result = if outage {
        let index = usize::try_from(d.attempt()).unwrap_or(usize::MAX);
        d.retry(index).await
    } else {
        d.retry_or_dead_letter(code, "transient failure persisted through every retry")
            .await
            .map(|_| ())
    };
    if let Err(e) = result {
        warn!(
            code = e.code(),
            "cannot schedule a retry; the broker will redeliver"
        );
    }
}
