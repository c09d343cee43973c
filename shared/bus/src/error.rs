//! The one error type of the bus crate, with stable codes for DLQ headers, metrics and logs.
//!
//! Messages carry queue/exchange names and broker reply codes only — never message bodies or
//! header values, which may hold patient data.

/// Everything that can go wrong talking to RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The configuration is unusable (bad URL, empty prefix, invalid retry schedule). The text
    /// names the field, never its value: the URL may contain a password.
    #[error("invalid bus configuration: {0}")]
    Config(&'static str),

    /// Opening the TCP/AMQP connection failed or timed out.
    #[error("cannot connect to the broker")]
    Connect(#[source] lapin::Error),

    /// Declaring an exchange, queue or binding failed (for example a queue already exists with
    /// other arguments: `PRECONDITION_FAILED`).
    #[error("cannot declare {object}")]
    Topology {
        /// Name of the exchange or queue.
        object: String,
        /// Broker or client error.
        #[source]
        source: lapin::Error,
    },

    /// Opening or using a channel failed (connection lost, channel closed by the broker).
    #[error("channel error")]
    Channel(#[source] lapin::Error),

    /// Sending a message or receiving its confirm failed (usually a lost connection).
    #[error("publish failed")]
    Publish(#[source] lapin::Error),

    /// The broker negatively confirmed messages (e.g. `x-overflow=reject-publish` on a full
    /// queue, or an internal error); nothing is known to be stored for them.
    #[error("broker refused {count} message(s)")]
    Nacked {
        /// How many messages of the batch were nacked.
        count: usize,
    },

    /// A `mandatory` message could not be routed to any queue (missing binding or queue).
    #[error("unroutable message to exchange '{exchange}' with routing key '{routing_key}'")]
    Unroutable {
        /// Exchange the message was published to (`""` is the default exchange).
        exchange: String,
        /// Routing key used.
        routing_key: String,
    },

    /// A publish or its confirms did not complete within the configured timeout. The outcome is
    /// unknown: republish (consumers dedupe by `message_id`).
    #[error("publish not confirmed within {0:?}")]
    ConfirmTimeout(std::time::Duration),

    /// The bus is not connected right now (reconnecting); try again later.
    #[error("not connected to the broker")]
    NotReady,

    /// The bus was closed with [`crate::Bus::close`].
    #[error("bus closed")]
    Closed,

    /// Acking, rejecting or nacking a delivery failed; the broker will redeliver the message
    /// (handlers are idempotent).
    #[error("cannot settle delivery")]
    Settle(#[source] lapin::Error),

    /// A queue looked up by name does not exist.
    #[error("queue '{0}' not found")]
    QueueNotFound(String),
}

impl BusError {
    /// Stable, low-cardinality code (kebab-case) for DLQ headers, metric labels and logs.
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Config(_) => "bus-config",
            BusError::Connect(_) => "bus-connect",
            BusError::Topology { .. } => "bus-topology",
            BusError::Channel(_) => "bus-channel",
            BusError::Publish(_) => "bus-publish",
            BusError::Nacked { .. } => "bus-nacked",
            BusError::Unroutable { .. } => "bus-unroutable",
            BusError::ConfirmTimeout(_) => "bus-confirm-timeout",
            BusError::NotReady => "bus-not-ready",
            BusError::Closed => "bus-closed",
            BusError::Settle(_) => "bus-settle",
            BusError::QueueNotFound(_) => "bus-queue-not-found",
        }
    }

    /// Whether trying again later can succeed without a change of code or configuration.
    ///
    /// Unroutable counts as retryable: the binding may come back (an operator fix), and the
    /// outbox keeps the row pending meanwhile.
    pub fn is_retryable(&self) -> bool {
        match self {
            BusError::Config(_) | BusError::Closed | BusError::QueueNotFound(_) => false,
            // A declaration refused by the broker (inequivalent arguments, access refused) will
            // be refused again; a declaration cut by a connection loss will not.
            BusError::Topology { source, .. } => !is_protocol_refusal(source),
            BusError::Connect(_)
            | BusError::Channel(_)
            | BusError::Publish(_)
            | BusError::Nacked { .. }
            | BusError::Unroutable { .. }
            | BusError::ConfirmTimeout(_)
            | BusError::NotReady
            | BusError::Settle(_) => true,
        }
    }

    /// The AMQP reply code the broker sent with this error, if any (404 not found, 406
    /// precondition failed, 403 access refused, 320 connection forced...).
    pub fn reply_code(&self) -> Option<u16> {
        let source = match self {
            BusError::Connect(e)
            | BusError::Channel(e)
            | BusError::Publish(e)
            | BusError::Settle(e)
            | BusError::Topology { source: e, .. } => e,
            _ => return None,
        };
        match source {
            lapin::Error::ProtocolError(amqp) => Some(amqp.get_id()),
            _ => None,
        }
    }
}

fn is_protocol_refusal(error: &lapin::Error) -> bool {
    matches!(error, lapin::Error::ProtocolError(amqp) if matches!(amqp.get_id(), 403..=406))
}

/// Result alias for this crate.
pub type Result<T, E = BusError> = std::result::Result<T, E>;
