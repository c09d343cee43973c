//! Inspection and repair for tests and operators: queue depth, DLQ listing and replay
//! (`vaxcred dlq list|replay`), and removing a prefix's topology.

use std::fmt;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::Channel;

use crate::bus::Bus;
use crate::error::{BusError, Result};
use crate::headers::{self, XDeath};
use crate::publisher::{publish_with, ChannelSlot, Outgoing};
use crate::topology;

/// One message read from the DLQ.
#[derive(Clone)]
pub struct DeadLetter {
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// `x-vaxcred-error`: our stable code; `None` when the broker dead-lettered it (delivery
    /// limit) rather than a handler.
    pub error_code: Option<String>,
    /// `x-vaxcred-reason`.
    pub reason: Option<String>,
    /// `x-vaxcred-source-queue`, else the queue of the newest `x-death` entry.
    pub source_queue: Option<String>,
    /// Newest `x-death` entry (`reason` = `delivery_limit` for messages that kept failing).
    pub x_death: Option<XDeath>,
    /// All headers.
    pub headers: FieldTable,
    /// Body bytes (may hold patient data: show with care).
    pub body: Vec<u8>,
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("message_id", &self.message_id)
            .field("error_code", &self.error_code)
            .field("reason", &self.reason)
            .field("source_queue", &self.source_queue)
            .field("x_death", &self.x_death)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl DeadLetter {
    fn from_delivery(delivery: &lapin::message::Delivery) -> Self {
        let h = delivery.properties.headers().as_ref();
        let x_death = headers::x_death(h);
        Self {
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            error_code: headers::get_string(h, headers::ERROR),
            reason: headers::get_string(h, headers::REASON),
            source_queue: headers::get_string(h, headers::SOURCE_QUEUE)
                .or_else(|| x_death.as_ref().map(|d| d.queue.clone())),
            x_death,
            headers: h.cloned().unwrap_or_default(),
            body: delivery.data.clone(),
        }
    }
}

/// What [`Bus::dlq_replay`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Messages republished to their source queue and removed from the DLQ.
    pub replayed: usize,
    /// Messages left in the DLQ (filtered out, or no known source queue of this topology).
    pub skipped: usize,
}

/// Headers that describe a past failure; a replayed message starts clean.
const FAILURE_HEADERS: &[&str] = &[
    headers::ERROR,
    headers::REASON,
    headers::SOURCE_QUEUE,
    headers::ATTEMPT,
    headers::DELIVERY_COUNT,
    headers::X_DEATH,
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
];

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

async fn bounded<T>(op: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(ADMIN_TIMEOUT, op)
        .await
        .unwrap_or(Err(BusError::NotReady))
}

async fn close(channel: Channel) {
    let _ = tokio::time::timeout(Duration::from_secs(2), channel.close(200, "admin done")).await;
}

impl Bus {
    /// Messages ready in queue `full_name` (passive declare; unacked deliveries not counted).
    pub async fn message_count(&self, full_name: &str) -> Result<u32> {
        let channel = self.channel().await?;
        let result = bounded(async {
            let options = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            match channel
                .queue_declare(full_name, options, FieldTable::default())
                .await
            {
                Ok(queue) => Ok(queue.message_count()),
                Err(lapin::Error::ProtocolError(e)) if e.get_id() == 404 => {
                    Err(BusError::QueueNotFound(full_name.to_owned()))
                }
                Err(e) => Err(BusError::Channel(e)),
            }
        })
        .await;
        close(channel).await;
        result
    }

    /// Bodies of up to `limit` messages of queue `full_name`, without removing them (fetched
    /// unacked, returned to the queue when the channel closes; their redelivered flag is set).
    /// For operators' tools and tests.
    pub async fn peek(&self, full_name: &str, limit: usize) -> Result<Vec<Vec<u8>>> {
        let channel = self.channel().await?;
        let result = bounded(async {
            let mut out = Vec::new();
            while out.len() < limit {
                match channel
                    .basic_get(full_name, BasicGetOptions { no_ack: false })
                    .await
                    .map_err(BusError::Channel)?
                {
                    Some(message) => out.push(message.delivery.data),
                    None => break,
                }
            }
            Ok(out)
        })
        .await;
        close(channel).await;
        result
    }

    /// Reads up to `limit` DLQ messages without removing them (they are fetched unacked and
    /// returned when the channel closes).
    pub async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let dlq = self.topology().dlq();
        let channel = self.channel().await?;
        let result = bounded(async {
            let mut out = Vec::new();
            while out.len() < limit {
                match channel
                    .basic_get(&dlq, BasicGetOptions { no_ack: false })
                    .await
                    .map_err(BusError::Channel)?
                {
                    Some(message) => out.push(DeadLetter::from_delivery(&message.delivery)),
                    None => break,
                }
            }
            Ok(out)
        })
        .await;
        close(channel).await;
        result
    }

    /// Moves up to `limit` DLQ messages (only those with `message_id` when given) back to their
    /// source queue: republished with confirms and without failure headers, then acked. Messages
    /// whose source is not a work queue of this topology stay in the DLQ.
    pub async fn dlq_replay(&self, limit: usize, message_id: Option<&str>) -> Result<ReplayReport> {
        let dlq = self.topology().dlq();
        let channel = self.channel().await?;
        let slot = ChannelSlot::default();
        let result = bounded(async {
            let mut report = ReplayReport::default();
            while report.replayed + report.skipped < limit {
                let Some(message) = channel
                    .basic_get(&dlq, BasicGetOptions { no_ack: false })
                    .await
                    .map_err(BusError::Channel)?
                else {
                    break;
                };
                let delivery = message.delivery;
                let letter = DeadLetter::from_delivery(&delivery);
                let wanted = message_id.is_none_or(|id| letter.message_id.as_deref() == Some(id));
                let target = letter
                    .source_queue
                    .filter(|q| self.topology().short_name(q).is_some());
                let (true, Some(target)) = (wanted, target) else {
                    // Left unacked: back in the DLQ when the channel closes.
                    report.skipped += 1;
                    continue;
                };
                let mut props = delivery.properties.clone();
                let clean = headers::without(props.headers().as_ref(), FAILURE_HEADERS);
                props = props.with_headers(clean);
                let copy = Outgoing {
                    exchange: String::new(),
                    routing_key: target,
                    body: delivery.data.clone(),
                    properties: props,
                    mandatory: true,
                };
                publish_with(self.shared(), &slot, std::slice::from_ref(&copy)).await?;
                delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(BusError::Settle)?;
                report.replayed += 1;
            }
            Ok(report)
        })
        .await;
        close(channel).await;
        result
    }

    /// Deletes every queue and exchange of this topology (not an existing EHR exchange).
    /// Messages are lost: for tests and decommissioning.
    pub async fn delete_topology(&self) -> Result<()> {
        let channel = self.channel().await?;
        let result = bounded(topology::delete(&channel, self.topology())).await;
        close(channel).await;
        result
    }
}
