//! The delivery worker: consumes `{p}.deliver` ([`store::DeliverMessage`]: one
//! [`store::DeliverJob`] or a pack of them, written to the outbox when credentials are stored),
//! creates one delivery job per registered wallet endpoint
//! of the patient (`channel = "wallet:{endpoint id}"`), and a poller attempts every due job:
//! POST the `.smart-health-card` file signed the Standard Webhooks way. Failures are retried on
//! the configured schedule with jitter by setting `next_attempt_at`, then marked failed; every
//! attempt is written to the audit trail (`delivery.attempt`, ids and codes only) and counted in
//! `vaxcred_delivery_attempts_total`.
//!
//! Messages are acked only after their jobs are stored; a bad payload goes to the DLQ; a
//! transient store error retries through the bus's delay queues.

use std::time::{Duration, Instant};

use chrono::Utc;
use platform::metrics::DeliveryOutcome;
use store::{
    AttemptOutcome, CredentialStatus, DeliverMessage, Delivery, DeliveryStatus, NewAuditEntry,
};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::backoff::RetrySchedule;
use crate::error::{DeliveryError, Result};
use crate::links::card_file;
use crate::state::DeliveryState;
use crate::webhook::{self, WebhookSecret};

/// Prefix of wallet delivery channels.
pub const WALLET_CHANNEL_PREFIX: &str = "wallet:";
/// Prefix of SMS delivery channels (`sms:{link id}`: one job per link sent).
pub const SMS_CHANNEL_PREFIX: &str = "sms:";
/// Longest `Retry-After` honoured; a peer asking for more gets the schedule's delay or this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);
/// Jobs attempted per poll.
const POLL_BATCH: u32 = 50;

/// Runs the `{p}.deliver` consumer and the retry poller until `shutdown` is cancelled.
pub async fn run_worker(
    state: DeliveryState,
    bus: bus::Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = bus.consumer("deliver")?;
    let consume = consume_loop(state.clone(), consumer, shutdown.clone());
    let poll = poll_loop(state, shutdown);
    let (a, b) = tokio::join!(consume, poll);
    a.and(b)
}

async fn consume_loop(
    state: DeliveryState,
    mut consumer: bus::Consumer,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            d = consumer.recv() => d,
        };
        let Some(delivery) = delivery else {
            return Ok(());
        };
        handle_message(&state, delivery).await;
    }
}

#[tracing::instrument(skip_all, fields(
    otel.kind = "CONSUMER",
    messaging.system = "rabbitmq",
    messaging.operation = "process",
    credential_id = tracing::field::Empty,
))]
async fn handle_message(state: &DeliveryState, delivery: bus::Delivery) {
    let jobs = match serde_json::from_slice::<DeliverMessage>(delivery.body()) {
        Ok(m) => m.into_jobs(),
        Err(_) => {
            if let Err(e) = delivery
                .dead_letter("bad-deliver-message", "body is not a deliver job")
                .await
            {
                tracing::warn!(error.code = e.code(), "dead-lettering failed");
            }
            return;
        }
    };
    if let [job] = jobs.as_slice() {
        tracing::Span::current().record("credential_id", job.credential_id.as_str());
    }
    // Enqueuing is idempotent: a pack that failed part-way is retried (or dead-lettered, then
    // replayed) whole.
    let mut outcome = Ok(0usize);
    for job in &jobs {
        match enqueue_wallet_jobs(state, &job.credential_id).await {
            Ok(n) => {
                if let Ok(total) = &mut outcome {
                    *total += n;
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let settled = match outcome {
        Ok(n) => {
            tracing::info!(cards = jobs.len(), jobs = n, "deliver message handled");
            delivery.ack().await
        }
        Err(e) if e.is_retryable() => delivery
            .retry_or_dead_letter(e.code(), "transient failure while queuing deliveries")
            .await
            .map(|_| ()),
        Err(e) => {
            delivery
                .dead_letter(e.code(), "permanent failure while queuing deliveries")
                .await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error.code = e.code(), "settling the message failed");
    }
}

/// Creates (idempotently) one wallet job per enabled endpoint of the credential's patient; they
/// are due at once. Returns how many jobs exist.
pub async fn enqueue_wallet_jobs(state: &DeliveryState, credential_id: &str) -> Result<usize> {
    let store = &state.inner.store;
    let Some(cred) = store.get_credential(credential_id).await? else {
        return Ok(0);
    };
    if cred.status != CredentialStatus::Active && cred.status != CredentialStatus::Superseded {
        return Ok(0);
    }
    let endpoints = store.list_wallet_endpoints(&cred.patient_id).await?;
    for ep in &endpoints {
        store
            .ensure_delivery(&cred.id, &format!("{WALLET_CHANNEL_PREFIX}{}", ep.id))
            .await?;
    }
    Ok(endpoints.len())
}

async fn poll_loop(state: DeliveryState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(state.inner.settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = process_due(&state).await {
            tracing::warn!(error.code = e.code(), "polling due deliveries failed");
        }
    }
}

/// Claims and attempts every due wallet job once (concurrently). Returns how many were
/// attempted.
pub async fn process_due(state: &DeliveryState) -> Result<usize> {
    let due = state
        .inner
        .store
        .due_deliveries(Utc::now(), POLL_BATCH)
        .await?;
    let wallet: Vec<Delivery> = due
        .into_iter()
        .filter(|d| d.channel.starts_with(WALLET_CHANNEL_PREFIX))
        .collect();
    // Claim each job before attempting it, so replicas polling the same table never push the
    // same job twice; a claim lasts past the longest possible attempt (every redirect hop timing
    // out), after which a job whose worker died is due again.
    let lease = state.inner.outbound.timeout().saturating_mul(5) + Duration::from_secs(5);
    let lease_until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
    let mut claimed = Vec::with_capacity(wallet.len());
    for d in wallet {
        if store_claim(state, &d, lease_until).await? {
            claimed.push(d);
        }
    }
    let n = claimed.len();
    let mut tasks = tokio::task::JoinSet::new();
    for d in claimed {
        let state = state.clone();
        tasks.spawn(async move { attempt_wallet(&state, &d).await });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!(error.code = e.code(), "recording a wallet attempt failed");
        }
    }
    Ok(n)
}

async fn store_claim(
    state: &DeliveryState,
    d: &Delivery,
    lease_until: chrono::DateTime<Utc>,
) -> Result<bool> {
    Ok(state
        .inner
        .store
        .claim_delivery(&d.id, d.next_attempt_at, lease_until)
        .await?)
}

/// One push attempt for a wallet job, recorded.
#[tracing::instrument(skip_all, fields(delivery_id = %job.id, credential_id = %job.credential_id))]
pub async fn attempt_wallet(state: &DeliveryState, job: &Delivery) -> Result<Option<Delivery>> {
    let started = Instant::now();
    let result = push_wallet(state, job).await;
    record_attempt(
        state,
        job,
        "wallet",
        &state.inner.settings.wallet_retry,
        result.map(|status| serde_json::json!({ "http_status": status })),
        started.elapsed(),
    )
    .await
}

/// Sends the push; `Ok(status)` for a 2xx answer.
async fn push_wallet(state: &DeliveryState, job: &Delivery) -> Result<u16> {
    let store = &state.inner.store;
    let endpoint_id = job
        .channel
        .strip_prefix(WALLET_CHANNEL_PREFIX)
        .unwrap_or_default();
    let endpoint = match store.get_wallet_endpoint(endpoint_id).await? {
        Some(ep) if ep.disabled_at.is_none() => ep,
        _ => {
            return Err(DeliveryError::UrlRefused {
                reason: "wallet endpoint gone",
            })
        }
    };
    let cred = store
        .get_credential(&job.credential_id)
        .await?
        .ok_or(DeliveryError::NotCurrent)?;
    if cred.status != CredentialStatus::Active {
        return Err(DeliveryError::NotCurrent);
    }
    let secret = WebhookSecret::parse(&endpoint.secret).map_err(|_| DeliveryError::UrlRefused {
        reason: "bad endpoint secret",
    })?;
    let url = Url::parse(&endpoint.url).map_err(|_| DeliveryError::UrlRefused {
        reason: "bad endpoint URL",
    })?;
    let body = card_file(&cred).into_bytes();
    let msg_id = webhook::message_id(&job.id);
    let ts = Utc::now().timestamp();
    let signature = secret.sign(&msg_id, ts, &body);
    let response = state
        .inner
        .outbound
        .send(url, |client, url| {
            client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/smart-health-card",
                )
                .header(webhook::HEADER_ID, &msg_id)
                .header(webhook::HEADER_TIMESTAMP, ts.to_string())
                .header(webhook::HEADER_SIGNATURE, &signature)
                .body(body.clone())
        })
        .await?;
    let status = response.status().as_u16();
    let error = (!response.status().is_success()).then(|| DeliveryError::from_response(&response));
    // Drain the (bounded-time) body so the connection can be reused; its content is ignored.
    let _ = tokio::time::timeout(state.inner.outbound.timeout(), response.bytes()).await;
    match error {
        None => Ok(status),
        Some(e) => Err(e),
    }
}

/// Stores one attempt's outcome (next try per `schedule`), audits it, counts it.
pub(crate) async fn record_attempt(
    state: &DeliveryState,
    job: &Delivery,
    metric_channel: &'static str,
    schedule: &RetrySchedule,
    result: Result<serde_json::Value>,
    elapsed: Duration,
) -> Result<Option<Delivery>> {
    let attempts_made = usize::try_from(job.attempts)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let (outcome, metric, mut details) = match result {
        Ok(details) => (
            AttemptOutcome::Succeeded,
            DeliveryOutcome::Delivered,
            details,
        ),
        Err(e) => {
            let code = e.code().to_owned();
            let details = serde_json::json!({ "error_code": code, "retryable": e.is_retryable() });
            let next = schedule
                .next_delay(attempts_made)
                .filter(|_| e.is_retryable())
                // Honour a peer's Retry-After when it asks for longer, up to MAX_RETRY_AFTER.
                .map(|d| d.max(e.retry_after().unwrap_or_default().min(MAX_RETRY_AFTER)));
            match next {
                Some(delay) => (
                    AttemptOutcome::Retry {
                        error_code: code,
                        next_attempt_at: Utc::now()
                            + chrono::Duration::from_std(delay)
                                .unwrap_or_else(|_| chrono::Duration::days(1)),
                    },
                    DeliveryOutcome::Retry,
                    details,
                ),
                None => (
                    AttemptOutcome::Failed { error_code: code },
                    DeliveryOutcome::Failed,
                    details,
                ),
            }
        }
    };
    if let Some(obj) = details.as_object_mut() {
        obj.insert("channel".into(), job.channel.clone().into());
        obj.insert("attempt".into(), attempts_made.into());
        obj.insert("outcome".into(), metric.as_str().into());
        obj.insert(
            "elapsed_ms".into(),
            u64::try_from(elapsed.as_millis())
                .unwrap_or(u64::MAX)
                .into(),
        );
    }
    let store = &state.inner.store;
    let entry = NewAuditEntry {
        actor: "delivery".to_owned(),
        action: "delivery.attempt".to_owned(),
        subject_kind: "delivery".to_owned(),
        subject_id: job.id.clone(),
        details,
    };
    let updated = store
        .record_delivery_attempt_audited(&job.id, &outcome, Some(&entry))
        .await?;
    if let Some(m) = state.inner.metrics.get() {
        m.record_delivery_attempt(metric_channel, metric);
    }
    tracing::info!(
        outcome = metric.as_str(),
        attempt = attempts_made,
        status = updated
            .as_ref()
            .map(|d| d.status.as_str())
            .unwrap_or("settled"),
        "delivery attempt"
    );
    Ok(updated)
}

/// Whether a job is finished.
pub fn is_settled(d: &Delivery) -> bool {
    d.status != DeliveryStatus::Pending
}
