//! Publishing with publisher confirms: one message or a batch whose confirms are awaited
//! together (~35 µs per message instead of ~0.5 ms one by one on this broker).
//!
//! Every publish is bounded by `publish_timeout` (waiting for a reconnect, sending, confirms):
//! a confirm lost with its connection would otherwise hang forever (lapin#409). Any error means
//! "not known to be stored": the caller republishes, consumers dedupe by `message_id`.

use std::fmt;
use std::sync::Arc;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::bus::Shared;
use crate::error::{BusError, Result};

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// A message to publish.
#[derive(Clone)]
pub struct Outgoing {
    /// Exchange (`""` = default exchange, which routes by queue name).
    pub exchange: String,
    /// Routing key (the queue name on the default exchange).
    pub routing_key: String,
    /// Body bytes.
    pub body: Vec<u8>,
    /// AMQP properties; delivery mode is forced to persistent on publish.
    pub properties: BasicProperties,
    /// Return the message (→ [`BusError::Unroutable`]) if no queue receives it. Default true.
    pub mandatory: bool,
}

impl fmt::Debug for Outgoing {
    // Bodies and header values may hold patient data: show routing and ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("body_len", &self.body.len())
            .field("message_id", &self.properties.message_id())
            .field("mandatory", &self.mandatory)
            .finish()
    }
}

impl Outgoing {
    /// A message for `exchange` with `routing_key`.
    pub fn new(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            body: body.into(),
            properties: BasicProperties::default(),
            mandatory: true,
        }
    }

    /// A message straight to queue `full_name` through the default exchange (e.g.
    /// `Outgoing::to_queue(bus.topology().queue("issue"), body)`).
    pub fn to_queue(full_name: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new("", full_name, body)
    }

    /// Sets the AMQP `message_id` (consumers use it for idempotency).
    #[must_use]
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.properties = self
            .properties
            .with_message_id(ShortString::from(id.into()));
        self
    }

    /// Sets the content type (e.g. `application/fhir+json`).
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.properties = self
            .properties
            .with_content_type(ShortString::from(content_type.into()));
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: AMQPValue) -> Self {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(ShortString::from(name), value);
        self.properties = self.properties.with_headers(headers);
        self
    }

    /// Adds a string header.
    #[must_use]
    pub fn header_str(self, name: &str, value: &str) -> Self {
        self.header(name, AMQPValue::LongString(LongString::from(value)))
    }

    /// Replaces all headers.
    #[must_use]
    pub fn headers(mut self, headers: FieldTable) -> Self {
        self.properties = self.properties.with_headers(headers);
        self
    }

    /// Sets `mandatory` (default true).
    #[must_use]
    pub fn mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }
}

/// A confirm-mode channel tied to one connection generation, opened lazily and replaced after
/// a reconnect or an error.
#[derive(Default)]
pub(crate) struct ChannelSlot(Mutex<Option<(u64, Channel)>>);

impl ChannelSlot {
    async fn get(&self, shared: &Shared, deadline: Instant) -> Result<Channel> {
        let session = shared.session_until(deadline).await?;
        let mut slot = self.0.lock().await;
        if let Some((generation, channel)) = slot.as_ref() {
            if *generation == session.generation && channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        let channel = session
            .connection
            .create_channel()
            .await
            .map_err(BusError::Channel)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(BusError::Channel)?;
        *slot = Some((session.generation, channel.clone()));
        Ok(channel)
    }

    async fn invalidate(&self) {
        if let Some((_, channel)) = self.0.lock().await.take() {
            // Confirms on a channel whose outcome is unknown must not be mixed with new ones.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    channel.close(200, "reset"),
                )
                .await;
            });
        }
    }
}

/// Publishes `items` and waits for all their confirms, within `publish_timeout`.
pub(crate) async fn publish_with(
    shared: &Shared,
    slot: &ChannelSlot,
    items: &[Outgoing],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let timeout = shared.config.publish_timeout;
    let deadline = Instant::now() + timeout;
    let outcome = tokio::time::timeout_at(deadline, async {
        let channel = slot.get(shared, deadline).await?;
        send_and_confirm(&channel, items).await
    })
    .await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        // The channel is healthy: these are per-message answers.
        Ok(Err(
            e @ (BusError::Nacked { .. }
            | BusError::Unroutable { .. }
            | BusError::NotReady
            | BusError::Closed),
        )) => Err(e),
        Ok(Err(e)) => {
            slot.invalidate().await;
            Err(e)
        }
        Err(_) => {
            slot.invalidate().await;
            Err(BusError::ConfirmTimeout(timeout))
        }
    }
}

async fn send_and_confirm(channel: &Channel, items: &[Outgoing]) -> Result<()> {
    let mut confirms = Vec::with_capacity(items.len());
    for item in items {
        let confirm = channel
            .basic_publish(
                &item.exchange,
                &item.routing_key,
                BasicPublishOptions {
                    mandatory: item.mandatory,
                    immediate: false,
                },
                &item.body,
                item.properties.clone().with_delivery_mode(PERSISTENT),
            )
            .await
            .map_err(BusError::Publish)?;
        confirms.push(confirm);
    }
    let mut nacked = 0usize;
    let mut unroutable: Option<&Outgoing> = None;
    for (confirm, item) in confirms.into_iter().zip(items) {
        match confirm.await.map_err(BusError::Publish)? {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            // With `mandatory`, an unroutable message is returned and then acked.
            Confirmation::Ack(Some(_)) => {
                unroutable.get_or_insert(item);
            }
            Confirmation::Nack(_) => nacked += 1,
        }
    }
    if nacked > 0 {
        return Err(BusError::Nacked { count: nacked });
    }
    if let Some(item) = unroutable {
        return Err(BusError::Unroutable {
            exchange: item.exchange.clone(),
            routing_key: item.routing_key.clone(),
        });
    }
    Ok(())
}

/// Publishes with confirms on its own channel. Cheap to create; one per task that publishes
/// concurrently is a good fit (calls on one publisher share its channel).
pub struct Publisher {
    shared: Arc<Shared>,
    slot: ChannelSlot,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            slot: ChannelSlot::default(),
        }
    }

    /// Publishes one message and waits for its confirm. Waits for a reconnect if needed, all
    /// within `publish_timeout`.
    pub async fn publish(&self, message: &Outgoing) -> Result<()> {
        publish_with(&self.shared, &self.slot, std::slice::from_ref(message)).await
    }

    /// Publishes all messages, then waits for all confirms together. `Ok` means every message
    /// is stored by the broker; on any error some may be stored: republish the whole batch
    /// (consumers dedupe by `message_id`).
    pub async fn publish_batch(&self, messages: &[Outgoing]) -> Result<()> {
        publish_with(&self.shared, &self.slot, messages).await
    }
}
