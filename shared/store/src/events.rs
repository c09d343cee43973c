//! Received messages: idempotent recording (by AMQP `message_id`, else content hash) and the
//! status transitions the consumer makes (rejected, retrying). Applying an event lives in
//! `apply.rs`, which marks it processed in the same transaction as its changes.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use crate::db::{builder, dispatch, new_id, now, BeginWrite, Dialect, Store};
use crate::error::Result;
use crate::types::{Event, EventStatus, IncomingEvent, Recorded};

/// Rows per multi-row statement: well under SQLite's 32 766 and PostgreSQL's 65 535 bind limits.
pub(crate) const CHUNK: usize = 500;

const EVENT_COLUMNS: &str =
    "id, message_id, content_hash, source, status, error_code, attempts, received_at, updated_at";

impl Store {
    /// Record a micro-batch of received messages in one transaction, idempotently. Returns one
    /// [`Recorded`] per input, same order: `New` and `Unfinished` need processing, `Finished`
    /// ones are acked as they are, `DuplicateInBatch` ones are settled like their first copy.
    pub async fn record_events(&self, batch: &[IncomingEvent]) -> Result<Vec<Recorded>> {
        let keys: Vec<String> = batch.iter().map(IncomingEvent::dedup_key).collect();
        // First occurrence of each key inside the batch.
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            first.entry(k.as_str()).or_insert(i);
        }
        let fresh: Vec<(usize, String)> = keys
            .iter()
            .enumerate()
            .filter(|(i, k)| first.get(k.as_str()) == Some(i))
            .map(|(i, _)| (i, new_id("evt")))
            .collect();
        let at = now();
        let existing: HashMap<String, (String, String)> = dispatch!(self, pool, _pg => {
            let mut tx = pool.begin_write().await?;
            for chunk in fresh.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO events (id, dedup_key, message_id, content_hash, source, status, received_at, updated_at) ",
                );
                qb.push_values(chunk, |mut b, (i, id)| {
                    let e = batch.get(*i);
                    b.push_bind(id)
                        .push_bind(keys.get(*i))
                        .push_bind(e.and_then(|e| e.message_id.as_deref()))
                        .push_bind(e.map(|e| e.content_hash.as_str()))
                        .push_bind(e.and_then(|e| e.source.as_deref()))
                        .push_bind(EventStatus::Received.as_str())
                        .push_bind(at)
                        .push_bind(at);
                });
                qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            let mut found = HashMap::new();
            for chunk in fresh.chunks(CHUNK) {
                let mut qb = builder(pool, "SELECT dedup_key, id, status FROM events WHERE ");
                let chunk_keys: Vec<&str> =
                    chunk.iter().filter_map(|(i, _)| keys.get(*i).map(String::as_str)).collect();
                Dialect::push_in(&mut qb, "dedup_key", &chunk_keys);
                let rows: Vec<(String, String, String)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                for (k, id, status) in rows {
                    found.insert(k, (id, status));
                }
            }
            tx.commit().await?;
            found
        });
        let ours: HashMap<usize, &String> = fresh.iter().map(|(i, id)| (*i, id)).collect();
        let mut out = Vec::with_capacity(batch.len());
        for (i, k) in keys.iter().enumerate() {
            let first_index = first.get(k.as_str()).copied().unwrap_or(i);
            let (id, status) = existing
                .get(k)
                .ok_or(crate::Error::NotFound("event just recorded"))?;
            if first_index != i {
                out.push(Recorded::DuplicateInBatch {
                    event_id: id.clone(),
                    first_index,
                });
            } else if ours.get(&i).is_some_and(|mine| *mine == id) {
                out.push(Recorded::New {
                    event_id: id.clone(),
                });
            } else {
                let status = EventStatus::parse(status).ok_or(crate::Error::Corrupt {
                    what: "events.status".into(),
                })?;
                out.push(if status.is_final() {
                    Recorded::Finished {
                        event_id: id.clone(),
                        status,
                    }
                } else {
                    Recorded::Unfinished {
                        event_id: id.clone(),
                        status,
                    }
                });
            }
        }
        Ok(out)
    }

    /// Mark an event rejected with a stable error code (bad input: it goes to the DLQ).
    pub async fn reject_event(&self, event_id: &str, error_code: &str) -> Result<()> {
        self.set_event_status(event_id, EventStatus::Rejected, Some(error_code), false)
            .await
    }

    /// Mark an event as failed transiently (counts attempts); it will be redelivered.
    pub async fn mark_event_retrying(&self, event_id: &str, error_code: &str) -> Result<()> {
        self.set_event_status(event_id, EventStatus::Retrying, Some(error_code), true)
            .await
    }

    async fn set_event_status(
        &self,
        event_id: &str,
        status: EventStatus,
        error_code: Option<&str>,
        count_attempt: bool,
    ) -> Result<()> {
        let at = now();
        let done = dispatch!(self, pool, _pg => {
            sqlx::query(
                "UPDATE events SET status = $1, error_code = $2, updated_at = $3, \
                 attempts = attempts + $4 WHERE id = $5",
            )
            .bind(status.as_str())
            .bind(error_code)
            .bind(at)
            .bind(i64::from(count_attempt))
            .bind(event_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(crate::Error::NotFound("event"));
        }
        Ok(())
    }

    /// One event by id.
    pub async fn get_event(&self, event_id: &str) -> Result<Option<Event>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Event>(&sql).bind(event_id).fetch_optional(pool).await?)
        })
    }

    /// Number of events per status (for health pages, metrics and tests).
    pub async fn count_events_by_status(&self) -> Result<HashMap<EventStatus, i64>> {
        let rows: Vec<(String, i64)> = dispatch!(self, pool, _pg => {
            sqlx::query_as("SELECT status, COUNT(*) FROM events GROUP BY status")
                .fetch_all(pool)
                .await?
        });
        let mut out = HashMap::new();
        for (s, n) in rows {
            let s = EventStatus::parse(&s).ok_or(crate::Error::Corrupt {
                what: "events.status".into(),
            })?;
            out.insert(s, n);
        }
        Ok(out)
    }
}
