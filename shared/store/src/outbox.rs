//! Transactional outbox, relay side: rows are written in the same transaction as the change that
//! caused them (`apply.rs`, `credentials.rs`); the relay claims a batch with a lease, publishes
//! with confirms, then marks them sent. A relay that dies leaves its lease to expire and the rows
//! are claimed again (at-least-once; consumers dedupe on the `outbox-{id}` message id).

use std::time::Duration;

use sqlx::QueryBuilder;

use crate::db::{dispatch, now, Store};
use crate::error::{Error, Result};
use crate::events::CHUNK;
use crate::types::OutboxMessage;

impl Store {
    /// Claim up to `limit` unsent rows, oldest first, for `lease`: other relays skip them until
    /// the lease ends. On PostgreSQL this uses `FOR UPDATE SKIP LOCKED`, so concurrent relays get
    /// disjoint rows without waiting on each other. Each claim increments `attempts`.
    pub async fn claim_outbox(&self, limit: u32, lease: Duration) -> Result<Vec<OutboxMessage>> {
        let at = now();
        let until =
            at + chrono::Duration::from_std(lease).map_err(|_| Error::Invalid("lease too long"))?;
        dispatch!(self, pool, pg => {
            let skip = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
            let sql = format!(
                "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (\
                 SELECT id FROM outbox WHERE sent_at IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY id LIMIT $3{skip}) \
                 RETURNING id, kind, payload, created_at, attempts"
            );
            let mut rows: Vec<OutboxMessage> = sqlx::query_as(&sql)
                .bind(until)
                .bind(at)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.sort_by_key(|m| m.id);
            Ok(rows)
        })
    }

    /// Mark rows sent (after the broker confirmed them). Returns how many changed.
    pub async fn mark_outbox_sent(&self, ids: &[i64]) -> Result<u64> {
        self.settle_outbox(ids, true).await
    }

    /// Give claimed rows back without marking them sent (publish failed or was returned
    /// unroutable), so the next claim picks them up at once. Returns how many changed.
    pub async fn release_outbox(&self, ids: &[i64]) -> Result<u64> {
        self.settle_outbox(ids, false).await
    }

    async fn settle_outbox(&self, ids: &[i64], sent: bool) -> Result<u64> {
        let at = now();
        let mut total = 0;
        for chunk in ids.chunks(CHUNK) {
            total += dispatch!(self, pool, _pg => {
                let mut qb = QueryBuilder::new("UPDATE outbox SET claimed_until = NULL");
                if sent {
                    qb.push(", sent_at = ");
                    qb.push_bind(at);
                }
                qb.push(" WHERE sent_at IS NULL AND id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(pool).await?.rows_affected()
            });
        }
        Ok(total)
    }

    /// Age of the oldest row not yet sent (the outbox lag metric); `None` when all are sent.
    pub async fn oldest_pending_outbox_age(&self) -> Result<Option<Duration>> {
        let oldest: Option<chrono::DateTime<chrono::Utc>> = dispatch!(self, pool, _pg => {
            sqlx::query_scalar(
                "SELECT created_at FROM outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(oldest.map(|at| (now() - at).to_std().unwrap_or_default()))
    }

    /// Rows not yet sent (claimed or not).
    pub async fn count_pending_outbox(&self) -> Result<i64> {
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(pool)
                .await?)
        })
    }
}
