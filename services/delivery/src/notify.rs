//! Sending a link by SMS: one delivery job per (credential, link) — channel `sms:{link id}` —
//! attempted at once and retried on the SMS schedule by a task of this process. The phone number
//! is deliberately not persisted (it is PHI and the patient record already has its own contact
//! points), so an SMS still retrying when the process stops stays `pending` and is re-sent by
//! staff; every attempt is recorded like wallet attempts.

use std::time::Instant;

use chrono::Utc;
use store::Delivery;

use crate::error::{DeliveryError, Result};
use crate::sms::{message_text, E164};
use crate::state::DeliveryState;
use crate::worker::{record_attempt, SMS_CHANNEL_PREFIX};

/// Queues the SMS and starts sending it in the background; returns the delivery job.
pub async fn send_link_sms(
    state: &DeliveryState,
    credential_id: &str,
    link_id: &str,
    to: E164,
    viewer_link: String,
) -> Result<Delivery> {
    if state.inner.sms.is_none() {
        return Err(DeliveryError::SmsDisabled);
    }
    let job = state
        .inner
        .store
        .ensure_delivery(credential_id, &format!("{SMS_CHANNEL_PREFIX}{link_id}"))
        .await?;
    let state2 = state.clone();
    let job2 = job.clone();
    tokio::spawn(async move {
        if let Err(e) = run_sms(&state2, job2, &to, &message_text(&viewer_link)).await {
            tracing::warn!(error.code = e.code(), "SMS delivery stopped");
        }
    });
    Ok(job)
}

async fn run_sms(state: &DeliveryState, mut job: Delivery, to: &E164, text: &str) -> Result<()> {
    let Some(gateway) = state.inner.sms.clone() else {
        return Err(DeliveryError::SmsDisabled);
    };
    loop {
        let started = Instant::now();
        let result = gateway.send(to, text).await.map(|receipt| {
            serde_json::json!({ "gateway_sid": receipt.sid, "gateway_status": receipt.status })
        });
        let Some(updated) = record_attempt(
            state,
            &job,
            "sms",
            &state.inner.settings.sms_retry,
            result,
            started.elapsed(),
        )
        .await?
        else {
            return Ok(());
        };
        let Some(next) = updated
            .next_attempt_at
            .filter(|_| !crate::worker::is_settled(&updated))
        else {
            return Ok(());
        };
        // Waiting for the scheduled retry time (not a test wait): this task is the retry timer.
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        job = updated;
    }
}
