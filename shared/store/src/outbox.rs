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

    /// PostgreSQL's relay round in ONE transaction: up to `limit` unsent rows of `kinds` (the
    /// ones this relay can publish) are marked sent
    /// and locked (`FOR UPDATE SKIP LOCKED`: concurrent relays take other rows), `publish` runs
    /// with them, and the transaction commits only if it succeeded; otherwise it rolls back and
    /// the rows are unsent again at once. A relay that dies mid-round releases its rows with its
    /// connection. One row write per row instead of two (claim, then mark), which was the
    /// largest single cost of the pipeline on PostgreSQL. Rows claimed by a lease-based relay
    /// (SQLite's [`Store::claim_outbox`]) are respected. `store-invalid-input` on SQLite, where
    /// holding the write lock while publishing would stall every writer: use the claim/mark pair.
    pub async fn relay_outbox_in_transaction<F, Fut, E>(
        &self,
        limit: u32,
        kinds: &[&str],
        publish: F,
    ) -> Result<std::result::Result<usize, E>>
    where
        F: FnOnce(Vec<OutboxMessage>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let crate::db::Backend::Postgres(pool) = &self.backend else {
            return Err(Error::Invalid("in-transaction relay is for PostgreSQL"));
        };
        let at = now();
        let mut tx = pool.begin().await?;
        let mut rows: Vec<OutboxMessage> = sqlx::query_as(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1 WHERE id IN (\
             SELECT id FROM outbox WHERE sent_at IS NULL AND kind = ANY($3) \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY id LIMIT $2 \
             FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, payload, created_at, attempts",
        )
        .bind(at)
        .bind(i64::from(limit))
        .bind(
            kinds
                .iter()
                .map(|k| (*k).to_owned())
                .collect::<Vec<String>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(Ok(0));
        }
        rows.sort_by_key(|m| m.id);
        let n = rows.len();
        match publish(rows).await {
            Ok(()) => {
                tx.commit().await?;
                Ok(Ok(n))
            }
            Err(e) => {
                tx.rollback().await?;
                Ok(Err(e))
            }
        }
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
