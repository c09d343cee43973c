//! The outbox relay: claims unsent outbox rows (with a lease, `SKIP LOCKED` on PostgreSQL),
//! publishes them to their work queue in one confirmed batch, then marks them sent.
//!
//! Rows hold packs of jobs (`{"jobs": [...]}`: `Store::apply_events` writes one `issue` row per
//! batch, `Store::store_credentials` one `deliver` row; older rows hold one job each). Jobs are
//! repacked per kind, up to `JOBS_PER_PACK` per message (`message_id` `outbox-{first}-{last}`,
//! or `outbox-{id}` for a single job): the workers work in batches, and a broker hop per patient
//! and per card was most of the broker's work per event.
//!
//! At least once: a crash between the confirm and the mark leaves the rows to be claimed again
//! when their lease ends; the delivery worker dedupes on the message id and the issue worker is
//! idempotent (a second job for the same doses version finds the card issued).
//!
//! Writers (ingest, the issue worker) call [`RelayHandle::wake`] after a commit so rows go out
//! within a millisecond or so; a slow poll catches rows written by other processes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, Outgoing};
use store::{OutboxMessage, Store, JOBS_PER_PACK, OUTBOX_DELIVER, OUTBOX_ISSUE};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::Result;

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows per claim (and per confirmed publish batch).
    pub batch: u32,
    /// How long a claim keeps other relays away.
    pub lease: Duration,
    /// Poll interval when nobody wakes the relay (rows from other processes).
    pub idle_poll: Duration,
    /// Pause after a failure (broker or database down) before claiming again.
    pub error_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 500,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(200),
            error_backoff: Duration::from_millis(500),
        }
    }
}

/// Wakes the relay when outbox rows were committed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RelayHandle(Arc<Notify>);

impl RelayHandle {
    /// A new handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the relay new rows are waiting.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// The underlying notifier, for writers that do not depend on this crate (ingest).
    pub fn notifier(&self) -> Arc<Notify> {
        self.0.clone()
    }
}

/// The queue (short name) an outbox kind is published to.
pub fn queue_of(kind: &str) -> Option<&'static str> {
    match kind {
        OUTBOX_ISSUE => Some("issue"),
        OUTBOX_DELIVER => Some("deliver"),
        _ => None,
    }
}

/// Runs the relay until `shutdown`; rows claimed but not yet published when it stops are
/// released for the next relay.
pub async fn run(
    store: Store,
    bus: Bus,
    handle: RelayHandle,
    config: RelayConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let publisher = bus.publisher();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match relay_once(&store, &bus, &publisher, &config, &shutdown).await {
            Ok(n) if n >= config.batch as usize => continue,
            Ok(0) => {
                tokio::select! {
                    () = handle.0.notified() => {}
                    () = tokio::time::sleep(config.idle_poll) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(code = e.code(), error = %e, "outbox relay failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(config.error_backoff) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }
}

/// Outbox kinds this relay publishes.
const KINDS: &[&str] = &[OUTBOX_ISSUE, OUTBOX_DELIVER];

/// One claim → publish → mark round; returns how many rows were claimed. On PostgreSQL the
/// round is one transaction (`Store::relay_outbox_in_transaction`); on SQLite rows are claimed
/// with a lease, published, then marked.
pub async fn relay_once(
    store: &Store,
    bus: &Bus,
    publisher: &bus::Publisher,
    config: &RelayConfig,
    shutdown: &CancellationToken,
) -> Result<usize> {
    if store.kind() == store::BackendKind::Postgres {
        let published: std::sync::Mutex<Vec<i64>> = std::sync::Mutex::new(Vec::new());
        let round = store
            .relay_outbox_in_transaction(config.batch, KINDS, |rows| {
                let published = &published;
                async move {
                    let (ids, messages) = messages_for(bus, &rows);
                    publisher.publish_batch(&messages).await?;
                    if let Ok(mut p) = published.lock() {
                        *p = ids;
                    }
                    Ok::<(), bus::BusError>(())
                }
            })
            .await;
        return match round {
            Ok(r) => Ok(r?),
            Err(e) => {
                let ids = published.into_inner().unwrap_or_default();
                if ids.is_empty() {
                    return Err(e.into());
                }
                // Published, then the commit failed (the database went away): mark the rows
                // as soon as it is back, instead of publishing them a second time.
                mark_sent(store, &ids, config, shutdown).await;
                Ok(ids.len())
            }
        };
    }
    let rows = store.claim_outbox(config.batch, config.lease).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (ids, messages) = messages_for(bus, &rows);
    if let Err(e) = publisher.publish_batch(&messages).await {
        // Best effort: if this fails too, the lease expires and the rows are claimed again.
        let _ = store.release_outbox(&ids).await;
        return Err(e.into());
    }
    mark_sent(store, &ids, config, shutdown).await;
    Ok(rows.len())
}

/// Marks published rows sent, trying again while the database is away rather than let them be
/// published a second time (consumers would absorb the copies, but each copy is a second
/// delivery job to look at). Gives up only at shutdown: the rows are then published again by
/// the next relay (at least once).
async fn mark_sent(store: &Store, ids: &[i64], config: &RelayConfig, shutdown: &CancellationToken) {
    loop {
        match store.mark_outbox_sent(ids).await {
            Ok(_) => break,
            Err(e) => {
                warn!(
                    code = e.code(),
                    rows = ids.len(),
                    "cannot mark outbox rows sent; retrying"
                );
                tokio::select! {
                    () = tokio::time::sleep(config.error_backoff) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
    debug!(rows = ids.len(), "outbox rows published");
}

/// The messages for claimed rows (and the ids they cover). Rows hold packs of jobs
/// (`{"jobs": [...]}`, as the store writes them) or single jobs (older rows); per kind, every
/// job is repacked, up to `JOBS_PER_PACK` per message, `message_id` `outbox-{first}-{last}`.
fn messages_for(bus: &Bus, rows: &[OutboxMessage]) -> (Vec<i64>, Vec<Outgoing>) {
    let mut ids = Vec::with_capacity(rows.len());
    let mut jobs: BTreeMap<&'static str, Vec<(i64, serde_json::Value)>> = BTreeMap::new();
    for row in rows {
        let Some(queue) = queue_of(&row.kind) else {
            // Written by a newer version: leave it claimed; its lease ends and a relay that
            // knows the kind publishes it.
            warn!(
                outbox_id = row.id,
                "outbox row of unknown kind left for another relay"
            );
            continue;
        };
        let list = jobs.entry(queue).or_default();
        match row
            .payload
            .get("jobs")
            .and_then(serde_json::Value::as_array)
        {
            Some(pack) => list.extend(pack.iter().map(|j| (row.id, j.clone()))),
            // A single job, or something that is not a job: the worker dead-letters it then.
            None => list.push((row.id, row.payload.clone())),
        }
        ids.push(row.id);
    }
    let mut messages = Vec::new();
    for (queue, list) in jobs {
        for pack in list.chunks(JOBS_PER_PACK) {
            let (Some((first, _)), Some((last, _))) = (pack.first(), pack.last()) else {
                continue;
            };
            let body = match pack {
                [(_, one)] => serde_json::to_vec(one),
                _ => {
                    let jobs: Vec<&serde_json::Value> = pack.iter().map(|(_, j)| j).collect();
                    serde_json::to_vec(&serde_json::json!({ "jobs": jobs }))
                }
            }
            .unwrap_or_default();
            let message_id = if first == last {
                format!("outbox-{first}")
            } else {
                format!("outbox-{first}-{last}")
            };
            messages.push(
                Outgoing::to_queue(bus.topology().queue(queue), body)
                    .message_id(message_id)
                    .content_type("application/json"),
            );
        }
    }
    (ids, messages)
}
