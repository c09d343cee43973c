//! Consuming with manual ack: [`Consumer`] yields [`Delivery`]s and survives reconnects;
//! each delivery is settled exactly once by `ack`, `ack_multiple`, `reject_requeue`, `retry`
//! or `dead_letter`.
//!
//! Deliveries not settled when the connection drops are redelivered by the broker (with
//! `redelivered` set and, on quorum queues, `x-delivery-count` incremented), so handlers must be
//! idempotent: key the work on `message_id` and ack only after the outcome is committed.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::bus::{Session, Shared};
use crate::error::{BusError, Result};
use crate::headers::{self, XDeath};
use crate::publisher::{publish_with, Outgoing};

/// Longest `x-vaxcred-reason` we put on a message.
const MAX_REASON: usize = 512;

/// A stream of deliveries from one queue. Dropping it cancels the subscription; unsettled
/// deliveries then return to the queue.
pub struct Consumer {
    rx: mpsc::Receiver<Delivery>,
    queue: String,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue)
            .finish()
    }
}

impl Consumer {
    pub(crate) fn start(shared: Arc<Shared>, short: String, queue: String) -> Self {
        // The broker never has more than `prefetch` unacked deliveries out, so this buffer never
        // holds more than that either.
        let (tx, rx) = mpsc::channel(usize::from(shared.config.prefetch.max(1)));
        tokio::spawn(run(shared, short, queue.clone(), tx));
        Self { rx, queue }
    }

    /// The next delivery; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// The next micro-batch: waits for one delivery (`None` when `stop` completes first or the
    /// bus is closed), then takes more until there are `max` or `linger` has passed since the
    /// first. Only the wait for the first is interrupted by `stop`: a batch once started is the
    /// caller's to settle.
    pub async fn recv_batch(
        &mut self,
        max: usize,
        linger: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Vec<Delivery>> {
        let first = tokio::select! {
            () = stop => return None,
            d = self.recv() => d?,
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(Some(d)) => batch.push(d),
                _ => break,
            }
        }
        Some(batch)
    }

    /// Full name of the queue consumed.
    pub fn queue(&self) -> &str {
        &self.queue
    }
}

fn same_session(current: &Option<Arc<Session>>, generation: u64) -> bool {
    current.as_ref().is_some_and(|s| s.generation == generation)
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|closing| *closing).await;
}

async fn run(shared: Arc<Shared>, short: String, queue: String, tx: mpsc::Sender<Delivery>) {
    let mut sessions = shared.session.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let tag = format!(
        "{}-{:016x}",
        shared.config.connection_name,
        OsRng.next_u64()
    );
    let mut channel_seq: u64 = 0;
    loop {
        let session = loop {
            if *shutdown.borrow_and_update() || tx.is_closed() {
                return;
            }
            if let Some(session) = sessions.borrow_and_update().clone() {
                break session;
            }
            tokio::select! {
                _ = sessions.changed() => {}
                () = wait_shutdown(&mut shutdown) => return,
                () = tx.closed() => return,
            }
        };
        let generation = session.generation;
        let opened = async {
            let channel = session.connection.create_channel().await?;
            channel
                .basic_qos(shared.config.prefetch, BasicQosOptions::default())
                .await?;
            let stream = channel
                .basic_consume(
                    &queue,
                    &tag,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, stream))
        };
        let (channel, mut stream) =
            match tokio::time::timeout(shared.config.connect_timeout, opened).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    warn!(%queue, %error, "cannot start consumer; retrying");
                    pause(&shared, &mut shutdown).await;
                    continue;
                }
                Err(_) => {
                    warn!(%queue, "starting consumer timed out; retrying");
                    pause(&shared, &mut shutdown).await;
                    continue;
                }
            };
        channel_seq += 1;
        debug!(%queue, generation, "consumer started");
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok(delivery)) => {
                        let delivery = Delivery {
                            shared: shared.clone(),
                            channel: channel_seq,
                            short: short.clone(),
                            queue: queue.clone(),
                            inner: delivery,
                        };
                        tokio::select! {
                            sent = tx.send(delivery) => if sent.is_err() {
                                close_quietly(channel).await;
                                return;
                            },
                            () = wait_shutdown(&mut shutdown) => return,
                        }
                    }
                    Some(Err(error)) => {
                        warn!(%queue, %error, "consumer channel failed");
                        break;
                    }
                    None => {
                        warn!(%queue, "consumer cancelled");
                        break;
                    }
                },
                _ = sessions.changed() => {
                    if !same_session(&sessions.borrow_and_update(), generation) {
                        break;
                    }
                }
                () = wait_shutdown(&mut shutdown) => return,
                () = tx.closed() => {
                    close_quietly(channel).await;
                    return;
                }
            }
        }
        // The channel is gone (connection lost, or the broker closed just this channel, e.g. a
        // consumer timeout): start again on whatever session is current.
        pause(&shared, &mut shutdown).await;
    }
}

async fn pause(shared: &Shared, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(shared.config.reconnect_min) => {}
        () = wait_shutdown(shutdown) => {}
    }
}

async fn close_quietly(channel: lapin::Channel) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        channel.close(200, "consumer dropped"),
    )
    .await;
}

/// What [`Delivery::retry_or_dead_letter`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Sent to a retry queue; `attempt` is the new attempt number (1 for the first retry).
    Retried {
        /// Attempt number carried by the copy.
        attempt: u32,
        /// How long the copy waits.
        delay: Duration,
    },
    /// The schedule was exhausted: sent to the DLQ.
    DeadLettered,
}

/// One message received from a queue. Settle it exactly once (the methods take `self`); a
/// delivery dropped unsettled stays unacked until its channel closes, then is redelivered.
pub struct Delivery {
    shared: Arc<Shared>,
    /// Which channel of its consumer it came on (a consumer opens a new one after every lost
    /// connection or channel): delivery tags are only comparable within one.
    channel: u64,
    short: String,
    queue: String,
    inner: lapin::message::Delivery,
}

impl fmt::Debug for Delivery {
    // No body, no header values: they may hold patient data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("message_id", &self.message_id())
            .field("delivery_tag", &self.inner.delivery_tag)
            .field("redelivered", &self.inner.redelivered)
            .field("delivery_count", &self.delivery_count())
            .field("attempt", &self.attempt())
            .field("body_len", &self.inner.data.len())
            .finish()
    }
}

impl Delivery {
    /// Body bytes.
    pub fn body(&self) -> &[u8] {
        &self.inner.data
    }

    /// All AMQP properties.
    pub fn properties(&self) -> &BasicProperties {
        &self.inner.properties
    }

    /// Headers, if any.
    pub fn headers(&self) -> Option<&FieldTable> {
        self.inner.properties.headers().as_ref()
    }

    /// A string header.
    pub fn header_str(&self, name: &str) -> Option<String> {
        headers::get_string(self.headers(), name)
    }

    /// The AMQP `message_id`, used for idempotency.
    pub fn message_id(&self) -> Option<&str> {
        self.inner
            .properties
            .message_id()
            .as_ref()
            .map(ShortString::as_str)
    }

    /// The content type.
    pub fn content_type(&self) -> Option<&str> {
        self.inner
            .properties
            .content_type()
            .as_ref()
            .map(ShortString::as_str)
    }

    /// Full name of the queue this came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Routing key it was published with.
    pub fn routing_key(&self) -> &str {
        self.inner.routing_key.as_str()
    }

    /// Whether the broker delivered it before (to any consumer).
    pub fn redelivered(&self) -> bool {
        self.inner.redelivered
    }

    /// Earlier deliveries of this message from this queue (`x-delivery-count`, quorum queues;
    /// 0 on the first). The broker dead-letters once this exceeds `delivery_limit`.
    pub fn delivery_count(&self) -> u32 {
        headers::get_i64(self.headers(), headers::DELIVERY_COUNT)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// How many times it went through a retry queue (`x-vaxcred-attempt`, 0 if never).
    pub fn attempt(&self) -> u32 {
        headers::get_i64(self.headers(), headers::ATTEMPT)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// The newest `x-death` entry, if the broker dead-lettered it before (e.g. out of a retry
    /// queue, reason `expired`).
    pub fn x_death(&self) -> Option<XDeath> {
        headers::x_death(self.headers())
    }

    async fn settle<F>(&self, op: F) -> Result<()>
    where
        F: std::future::Future<Output = lapin::Result<()>>,
    {
        match tokio::time::timeout(self.shared.config.publish_timeout, op).await {
            Ok(result) => result.map_err(BusError::Settle),
            Err(_) => Err(BusError::Settle(lapin::Error::IOError(Arc::new(
                io::Error::new(io::ErrorKind::TimedOut, "settlement timed out"),
            )))),
        }
    }

    /// Publishes `copy` (retry or dead letter) with a confirm, then acks this delivery. When the
    /// copy cannot be published, the delivery is returned to its queue (`basic.reject`, requeue)
    /// before the error is returned: it must never stay unsettled, because a later multiple-ack
    /// of the same channel would acknowledge it without it having been handled.
    async fn publish_copy_then_ack(self, copy: Outgoing) -> Result<()> {
        if let Err(e) = publish_with(
            &self.shared,
            &self.shared.settle,
            std::slice::from_ref(&copy),
        )
        .await
        {
            // If this fails too the channel is gone, and with it every unsettled delivery.
            let _ = self
                .settle(
                    self.inner
                        .acker
                        .reject(BasicRejectOptions { requeue: true }),
                )
                .await;
            return Err(e);
        }
        self.ack().await
    }

    /// Acknowledges: the message is done and removed from the queue.
    pub async fn ack(self) -> Result<()> {
        self.settle(self.inner.acker.ack(BasicAckOptions::default()))
            .await
    }

    /// Acknowledges this delivery and every earlier unsettled one received by the same
    /// consumer on the same channel (one frame for a whole batch). Drop those earlier
    /// deliveries afterwards without settling them: settling one again would close the
    /// channel (`PRECONDITION_FAILED - unknown delivery tag`).
    pub async fn ack_multiple(self) -> Result<()> {
        self.settle(self.inner.acker.ack(BasicAckOptions { multiple: true }))
            .await
    }

    /// Acknowledges a whole batch of deliveries (any order) with one multiple-ack per channel, on
    /// the highest delivery tag of each. Every *other* delivery received earlier on those
    /// channels must already be settled; the settlement methods here never leave one unsettled
    /// (a failed retry or dead letter requeues). Deliveries of a channel that is gone cannot be
    /// acked any more: the broker redelivers them, and handlers are idempotent.
    pub async fn ack_all(deliveries: Vec<Delivery>) -> Result<()> {
        let mut last: std::collections::BTreeMap<u64, Delivery> = std::collections::BTreeMap::new();
        for d in deliveries {
            match last.get(&d.channel) {
                Some(kept) if kept.inner.delivery_tag >= d.inner.delivery_tag => {}
                _ => {
                    last.insert(d.channel, d);
                }
            }
        }
        let mut result = Ok(());
        for (_, d) in last {
            if let Err(e) = d.ack_multiple().await {
                result = Err(e);
            }
        }
        result
    }

    /// Returns the message to its queue for a transient failure (`basic.reject`, requeue).
    /// Counts against `x-delivery-limit`: after the limit the broker dead-letters it (reason
    /// `delivery_limit`).
    pub async fn reject_requeue(self) -> Result<()> {
        self.settle(
            self.inner
                .acker
                .reject(BasicRejectOptions { requeue: true }),
        )
        .await
    }

    /// Schedules a later attempt: publishes a copy (same properties and headers,
    /// `x-vaxcred-attempt` + 1) to the retry queue for `retry_delays[delay_index]` (clamped to
    /// the last delay), waits for its confirm, then acks this delivery. If the ack is lost the
    /// original is redelivered too: one duplicate, absorbed by idempotent handlers.
    pub async fn retry(self, delay_index: usize) -> Result<()> {
        let delays = self.shared.topology.retry_delays();
        let Some(delay) = delays.get(delay_index).or_else(|| delays.last()).copied() else {
            return Err(BusError::Config("no retry_delays configured"));
        };
        if !self.shared.topology.queues().contains(&self.short) {
            return Err(BusError::Config("retry is only available on work queues"));
        }
        let retry_queue = self.shared.topology.retry_queue(&self.short, delay);
        let attempt = self.attempt().saturating_add(1);
        let mut headers = headers::without(self.headers(), &[headers::DELIVERY_COUNT]);
        headers.insert(
            ShortString::from(headers::ATTEMPT),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        let copy = Outgoing {
            exchange: String::new(),
            routing_key: retry_queue,
            body: self.inner.data.clone(),
            properties: self.inner.properties.clone().with_headers(headers),
            mandatory: true,
        };
        self.publish_copy_then_ack(copy).await
    }

    /// Retries with the next delay of the schedule, or dead-letters with `code`/`reason` once
    /// `attempt()` has used every delay.
    pub async fn retry_or_dead_letter(self, code: &str, reason: &str) -> Result<Settled> {
        let attempt = self.attempt();
        let delays = self.shared.topology.retry_delays();
        let next = usize::try_from(attempt)
            .ok()
            .and_then(|i| delays.get(i).copied());
        match next {
            Some(delay) => {
                let index = usize::try_from(attempt).unwrap_or(usize::MAX);
                self.retry(index).await?;
                Ok(Settled::Retried {
                    attempt: attempt.saturating_add(1),
                    delay,
                })
            }
            None => {
                self.dead_letter(code, reason).await?;
                Ok(Settled::DeadLettered)
            }
        }
    }

    /// Rejects permanently: publishes a copy to the dead-letter exchange (→ `{p}.dlq`) with
    /// headers `x-vaxcred-error` = `code` (stable kebab-case), `x-vaxcred-reason` = `reason`
    /// (human text; **never patient data**) and `x-vaxcred-source-queue`, waits for the
    /// confirm, then acks.
    pub async fn dead_letter(self, code: &str, reason: &str) -> Result<()> {
        let mut headers = headers::without(self.headers(), &[headers::DELIVERY_COUNT]);
        headers.insert(
            ShortString::from(headers::ERROR),
            AMQPValue::LongString(LongString::from(headers::sanitize(code, 64))),
        );
        headers.insert(
            ShortString::from(headers::REASON),
            AMQPValue::LongString(LongString::from(headers::sanitize(reason, MAX_REASON))),
        );
        headers.insert(
            ShortString::from(headers::SOURCE_QUEUE),
            AMQPValue::LongString(LongString::from(self.queue.as_str())),
        );
        let copy = Outgoing {
            exchange: self.shared.topology.dlx(),
            routing_key: self.queue.clone(),
            body: self.inner.data.clone(),
            properties: self.inner.properties.clone().with_headers(headers),
            mandatory: true,
        };
        self.publish_copy_then_ack(copy).await
    }
}
