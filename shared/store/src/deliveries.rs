//! Delivery jobs (one per credential and channel) and their attempts: the worker records each
//! attempt's outcome, schedules the next try, and finds jobs that are due. Error columns hold
//! stable codes only (no phone numbers, no gateway bodies).

use chrono::{DateTime, Utc};

use crate::db::{dispatch, micros, new_id, now, BeginWrite, Store};
use crate::error::Result;
use crate::types::{AttemptOutcome, Delivery, DeliveryStatus, NewAuditEntry};

const DELIVERY_COLUMNS: &str = "id, credential_id, channel, status, attempts, next_attempt_at, \
     last_error, created_at, updated_at";

impl Store {
    /// The delivery job for (credential, channel), created `pending` and due now if missing.
    /// Idempotent, so a redelivered `deliver` message finds the same job.
    pub async fn ensure_delivery(&self, credential_id: &str, channel: &str) -> Result<Delivery> {
        let at = now();
        let id = new_id("dlv");
        let select = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE credential_id = $1 AND channel = $2"
        );
        dispatch!(self, pool, _pg => {
            sqlx::query(
                "INSERT INTO deliveries (id, credential_id, channel, status, next_attempt_at, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5, $5) \
                 ON CONFLICT (credential_id, channel) DO NOTHING",
            )
            .bind(&id)
            .bind(credential_id)
            .bind(channel)
            .bind(DeliveryStatus::Pending.as_str())
            .bind(at)
            .execute(pool)
            .await?;
            Ok(sqlx::query_as::<_, Delivery>(&select)
                .bind(credential_id)
                .bind(channel)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Record one attempt's outcome (attempts + 1). Only a `pending` job changes; returns the
    /// updated job, or `None` if it is unknown or already settled (a late duplicate attempt).
    pub async fn record_delivery_attempt(
        &self,
        delivery_id: &str,
        outcome: &AttemptOutcome,
    ) -> Result<Option<Delivery>> {
        self.record_delivery_attempt_audited(delivery_id, outcome, None)
            .await
    }

    /// [`Store::record_delivery_attempt`] and its audit entry in ONE transaction: whoever sees
    /// the job's new status also sees the attempt in its log, and a crash cannot keep one
    /// without the other. The entry is written even when the job was already settled (the
    /// attempt happened).
    pub async fn record_delivery_attempt_audited(
        &self,
        delivery_id: &str,
        outcome: &AttemptOutcome,
        audit: Option<&NewAuditEntry>,
    ) -> Result<Option<Delivery>> {
        let at = now();
        let (status, next, error): (DeliveryStatus, Option<DateTime<Utc>>, Option<&str>) =
            match outcome {
                AttemptOutcome::Succeeded => (DeliveryStatus::Succeeded, None, None),
                AttemptOutcome::Retry {
                    error_code,
                    next_attempt_at,
                } => (
                    DeliveryStatus::Pending,
                    Some(micros(*next_attempt_at)),
                    Some(error_code),
                ),
                AttemptOutcome::Failed { error_code } => {
                    (DeliveryStatus::Failed, None, Some(error_code))
                }
            };
        let sql = format!(
            "UPDATE deliveries SET status = $1, next_attempt_at = $2, \
             last_error = COALESCE($3, last_error), attempts = attempts + 1, updated_at = $4 \
             WHERE id = $5 AND status = 'pending' RETURNING {DELIVERY_COLUMNS}"
        );
        dispatch!(self, pool, _pg => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query_as::<_, Delivery>(&sql)
                .bind(status.as_str())
                .bind(next)
                .bind(error)
                .bind(at)
                .bind(delivery_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(entry) = audit {
                sqlx::query(
                    "INSERT INTO audit (at, actor, action, subject_kind, subject_id, details) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(at)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.subject_kind)
                .bind(&entry.subject_id)
                .bind(sqlx::types::Json(&entry.details))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(updated)
        })
    }

    /// Claims a due job for one attempt: moves its `next_attempt_at` from `seen_next` (as read
    /// by [`Store::due_deliveries`]) to `lease_until`, only if nobody changed it meanwhile. `true`
    /// means this caller owns the attempt; a worker that dies mid-attempt leaves the job due
    /// again at `lease_until`. Lets several replicas poll the same table without double sends.
    pub async fn claim_delivery(
        &self,
        delivery_id: &str,
        seen_next: Option<DateTime<Utc>>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1, updated_at = $2 \
                 WHERE id = $3 AND status = 'pending' AND next_attempt_at = $4",
            )
            .bind(micros(lease_until))
            .bind(at)
            .bind(delivery_id)
            .bind(seen_next)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Pending jobs due at `now`, soonest first.
    pub async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Delivery>(&sql)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?)
        })
    }

    /// Delivery jobs of a credential, by channel.
    pub async fn list_deliveries(&self, credential_id: &str) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE credential_id = $1 ORDER BY channel"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Delivery>(&sql).bind(credential_id).fetch_all(pool).await?)
        })
    }
}
