//! Bus configuration ([`BusConfig`]) and the names it derives ([`Topology`]).

use std::fmt;
use std::time::Duration;

use crate::error::{BusError, Result};

/// Default broker URL when `AMQP_URL` is unset: the local RabbitMQ, default vhost.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Default name prefix when `AMQP_PREFIX` is unset.
pub const DEFAULT_PREFIX: &str = "vaxcred";

/// Where the EHR side publishes FHIR events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EhrExchange {
    /// Declare `{prefix}.ehr` as a durable topic exchange.
    Declare,
    /// Bind to an exchange that someone else owns (an integration engine's); it must exist
    /// (checked with a passive declare) and is never deleted by us.
    Existing(String),
}

/// Everything the bus needs; [`BusConfig::default`] works against a local RabbitMQ.
#[derive(Clone)]
pub struct BusConfig {
    /// `amqp://user:pass@host:port/vhost`. May contain a password: never logged, redacted in
    /// `Debug`.
    pub url: String,
    /// Prefix of every exchange and queue name, so instances and tests share one broker.
    pub prefix: String,
    /// Short names of the work queues (`{prefix}.{name}`), default `ingest`, `issue`, `deliver`.
    pub queues: Vec<String>,
    /// The EHR exchange: declared by us or an existing one.
    pub ehr_exchange: EhrExchange,
    /// Short name of the queue bound to the EHR exchange (default `ingest`).
    pub ehr_queue: String,
    /// Binding keys from the EHR exchange to [`Self::ehr_queue`] (default `fhir.#`).
    pub ehr_routing_keys: Vec<String>,
    /// Unacked deliveries per consumer (`basic.qos`); also the consumer's buffer size.
    pub prefetch: u16,
    /// `x-delivery-limit` of the work queues: after this many redeliveries the broker
    /// dead-letters the message.
    pub delivery_limit: u32,
    /// Delays of the retry queues, shortest first; `Delivery::retry(i)` uses `retry_delays[i]`.
    pub retry_delays: Vec<Duration>,
    /// Shown in the RabbitMQ management UI (`connection_name` client property).
    pub connection_name: String,
    /// AMQP heartbeat; a dead peer is noticed after about two of them.
    pub heartbeat: Duration,
    /// Bound on opening a connection (TCP + AMQP handshake + topology).
    pub connect_timeout: Duration,
    /// Bound on one publish call: waiting for readiness, sending, and all confirms (lapin#409:
    /// a confirm can otherwise hang forever on a dead connection).
    pub publish_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt up to [`Self::reconnect_max`], ±20 %
    /// jitter.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            queues: vec!["ingest".into(), "issue".into(), "deliver".into()],
            ehr_exchange: EhrExchange::Declare,
            ehr_queue: "ingest".into(),
            ehr_routing_keys: vec!["fhir.#".into()],
            prefetch: 100,
            delivery_limit: 5,
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(600),
            ],
            connection_name: "vaxcred".into(),
            heartbeat: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(15),
        }
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("queues", &self.queues)
            .field("ehr_exchange", &self.ehr_exchange)
            .field("ehr_queue", &self.ehr_queue)
            .field("ehr_routing_keys", &self.ehr_routing_keys)
            .field("prefetch", &self.prefetch)
            .field("delivery_limit", &self.delivery_limit)
            .field("retry_delays", &self.retry_delays)
            .field("connection_name", &self.connection_name)
            .field("heartbeat", &self.heartbeat)
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .finish()
    }
}

impl BusConfig {
    /// Defaults overridden by `AMQP_URL` and `AMQP_PREFIX` when set.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(url) = std::env::var("AMQP_URL") {
            if !url.is_empty() {
                config.url = url;
            }
        }
        if let Ok(prefix) = std::env::var("AMQP_PREFIX") {
            if !prefix.is_empty() {
                config.prefix = prefix;
            }
        }
        config
    }

    /// Checks what the broker would otherwise reject later, less clearly.
    pub fn validate(&self) -> Result<()> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        };
        if !name_ok(&self.prefix) {
            return Err(BusError::Config(
                "prefix must be 1-100 chars of [A-Za-z0-9-_.:]",
            ));
        }
        if self.queues.is_empty() || !self.queues.iter().all(|q| name_ok(q)) {
            return Err(BusError::Config(
                "queues must be non-empty names of [A-Za-z0-9-_.:]",
            ));
        }
        if self.prefetch == 0 {
            return Err(BusError::Config("prefetch must be at least 1"));
        }
        if self.delivery_limit == 0 {
            return Err(BusError::Config("delivery_limit must be at least 1"));
        }
        if self
            .retry_delays
            .iter()
            .any(|d| d.is_zero() || d.as_millis() > u128::from(u32::MAX))
        {
            return Err(BusError::Config(
                "retry_delays must be between 1 ms and ~49 days",
            ));
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err(BusError::Config(
                "reconnect_min must be > 0 and <= reconnect_max",
            ));
        }
        if self.publish_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(BusError::Config("timeouts must be > 0"));
        }
        if self.url.parse::<lapin::uri::AMQPUri>().is_err() {
            return Err(BusError::Config("url is not a valid amqp:// URL"));
        }
        Ok(())
    }
}

/// Names of every exchange and queue, derived from the prefix.
#[derive(Clone, Debug)]
pub struct Topology {
    prefix: String,
    queues: Vec<String>,
    ehr_exchange: EhrExchange,
    ehr_queue: String,
    ehr_routing_keys: Vec<String>,
    retry_delays: Vec<Duration>,
    delivery_limit: u32,
}

impl Topology {
    /// Names for `config`.
    pub fn new(config: &BusConfig) -> Self {
        Self {
            prefix: config.prefix.clone(),
            queues: config.queues.clone(),
            ehr_exchange: config.ehr_exchange.clone(),
            ehr_queue: config.ehr_queue.clone(),
            ehr_routing_keys: config.ehr_routing_keys.clone(),
            retry_delays: config.retry_delays.clone(),
            delivery_limit: config.delivery_limit,
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Short names of the work queues.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Full name of work queue `short` (`{p}.{short}`), e.g. `queue("ingest")`.
    pub fn queue(&self, short: &str) -> String {
        format!("{}.{short}", self.prefix)
    }

    /// Name of the exchange the EHR side publishes to.
    pub fn ehr_exchange(&self) -> String {
        match &self.ehr_exchange {
            EhrExchange::Declare => format!("{}.ehr", self.prefix),
            EhrExchange::Existing(name) => name.clone(),
        }
    }

    /// Whether the EHR exchange is ours to declare and delete.
    pub fn owns_ehr_exchange(&self) -> bool {
        self.ehr_exchange == EhrExchange::Declare
    }

    /// Short name of the queue bound to the EHR exchange.
    pub fn ehr_queue(&self) -> &str {
        &self.ehr_queue
    }

    /// Binding keys of the EHR exchange.
    pub fn ehr_routing_keys(&self) -> &[String] {
        &self.ehr_routing_keys
    }

    /// The dead-letter exchange (fanout) `{p}.dlx`.
    pub fn dlx(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The dead-letter queue `{p}.dlq`.
    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.prefix)
    }

    /// The retry schedule.
    pub fn retry_delays(&self) -> &[Duration] {
        &self.retry_delays
    }

    /// `x-delivery-limit` of the work queues.
    pub fn delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    /// Retry queue of work queue `short` for `delay`: `{p}.retry.{short}.{delay}` with the delay
    /// written `10s` when whole seconds, else `250ms`.
    pub fn retry_queue(&self, short: &str, delay: Duration) -> String {
        let ms = delay.as_millis();
        let label = if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        };
        format!("{}.retry.{short}.{label}", self.prefix)
    }

    /// Short name of a work queue given its full name, if it is one of ours.
    pub fn short_name<'a>(&self, full: &'a str) -> Option<&'a str> {
        let short = full.strip_prefix(self.prefix.as_str())?.strip_prefix('.')?;
        self.queues.iter().any(|q| q == short).then_some(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let config = BusConfig {
            prefix: "p1".into(),
            ..BusConfig::default()
        };
        let t = Topology::new(&config);
        assert_eq!(t.queue("ingest"), "p1.ingest");
        assert_eq!(t.ehr_exchange(), "p1.ehr");
        assert_eq!(t.dlx(), "p1.dlx");
        assert_eq!(t.dlq(), "p1.dlq");
        assert_eq!(
            t.retry_queue("issue", Duration::from_secs(600)),
            "p1.retry.issue.600s"
        );
        assert_eq!(
            t.retry_queue("issue", Duration::from_millis(1500)),
            "p1.retry.issue.1500ms"
        );
        assert_eq!(t.short_name("p1.deliver"), Some("deliver"));
        assert_eq!(t.short_name("p1.dlq"), None);
        assert_eq!(t.short_name("p2.deliver"), None);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn defaults_match_the_design() {
        let config = BusConfig::default();
        assert_eq!(config.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.prefix, "vaxcred");
        assert_eq!(config.delivery_limit, 5);
        assert_eq!(config.retry_delays.len(), 4);
    }
}
