//! Prometheus metrics: one registry per process (per test, so tests run in parallel), the
//! metrics the operations spec names, and helpers for services to register their own. Label
//! values are fixed enums or static strings: never ids, never anything a patient typed.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::error::Error;

/// Outcome of one received event (the `outcome` label of `vaxcred_events_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOutcome {
    /// Stored and queued for issuing.
    Accepted,
    /// A card was issued for it.
    Issued,
    /// Held for a person to review.
    Held,
    /// Rejected with a reason (dead-lettered).
    Rejected,
    /// A transient fault; scheduled for retry.
    Retried,
    /// Already seen; changed nothing.
    Duplicate,
}

impl EventOutcome {
    /// Every outcome.
    pub const ALL: [Self; 6] = [
        Self::Accepted,
        Self::Issued,
        Self::Held,
        Self::Rejected,
        Self::Retried,
        Self::Duplicate,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Issued => "issued",
            Self::Held => "held",
            Self::Rejected => "rejected",
            Self::Retried => "retried",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Outcome of one delivery attempt (the `outcome` label of `vaxcred_delivery_attempts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// The receiver accepted it.
    Delivered,
    /// Failed transiently; another attempt is scheduled.
    Retry,
    /// Failed for good (permanent error or attempts exhausted).
    Failed,
}

impl DeliveryOutcome {
    /// Every outcome.
    pub const ALL: [Self; 3] = [Self::Delivered, Self::Retry, Self::Failed];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// Delivery channels whose series exist from the start.
pub const KNOWN_CHANNELS: [&str; 2] = ["wallet", "sms"];

/// Metric names, for dashboards and tests.
pub mod names {
    /// Counter, label `outcome`.
    pub const EVENTS_TOTAL: &str = "vaxcred_events_total";
    /// Histogram, seconds from event receipt to signed card.
    pub const ISSUE_LATENCY_SECONDS: &str = "vaxcred_issue_latency_seconds";
    /// Counter, labels `channel`, `outcome`.
    pub const DELIVERY_ATTEMPTS_TOTAL: &str = "vaxcred_delivery_attempts_total";
    /// Gauge, messages in the dead-letter queue.
    pub const DLQ_DEPTH: &str = "vaxcred_dlq_depth";
    /// Gauge, age in seconds of the oldest unsent outbox row (0 when empty).
    pub const OUTBOX_LAG_SECONDS: &str = "vaxcred_outbox_lag_seconds";
}

/// The registry and the shared metrics. Cheap to clone; clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    issue_latency: Histogram,
    delivery_attempts: IntCounterVec,
    dlq_depth: IntGauge,
    outbox_lag: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with the shared metrics registered.
    pub fn new() -> Result<Self, Error> {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(names::EVENTS_TOTAL, "Events received, by outcome."),
            &["outcome"],
        )?;
        let issue_latency = Histogram::with_opts(
            HistogramOpts::new(
                names::ISSUE_LATENCY_SECONDS,
                "Seconds from receiving an event to its signed card.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )?;
        let delivery_attempts = IntCounterVec::new(
            Opts::new(
                names::DELIVERY_ATTEMPTS_TOTAL,
                "Delivery attempts, by channel and outcome.",
            ),
            &["channel", "outcome"],
        )?;
        let dlq_depth = IntGauge::new(names::DLQ_DEPTH, "Messages in the dead-letter queue.")?;
        let outbox_lag = Gauge::new(
            names::OUTBOX_LAG_SECONDS,
            "Age in seconds of the oldest unsent outbox row (0 when none).",
        )?;
        // Every known series starts at zero so dashboards and alerts see it before the first
        // increment (a counter vector with no children is absent from the exposition).
        for outcome in EventOutcome::ALL {
            events.get_metric_with_label_values(&[outcome.as_str()])?;
        }
        for channel in KNOWN_CHANNELS {
            for outcome in DeliveryOutcome::ALL {
                delivery_attempts.get_metric_with_label_values(&[channel, outcome.as_str()])?;
            }
        }
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(issue_latency.clone()))?;
        registry.register(Box::new(delivery_attempts.clone()))?;
        registry.register(Box::new(dlq_depth.clone()))?;
        registry.register(Box::new(outbox_lag.clone()))?;
        Ok(Self {
            registry,
            events,
            issue_latency,
            delivery_attempts,
            dlq_depth,
            outbox_lag,
        })
    }

    /// The underlying registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a service's own collector and returns it (clone kept by the registry).
    pub fn register<C: Collector + Clone + 'static>(&self, collector: C) -> Result<C, Error> {
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    /// Creates and registers a counter vector (`name` should end in `_total`).
    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, Error> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    /// Creates and registers a histogram with the given bucket bounds.
    pub fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Result<Histogram, Error> {
        self.register(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets),
        )?)
    }

    /// Creates and registers a gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, Error> {
        self.register(Gauge::new(name, help)?)
    }

    /// Counts one event by outcome.
    pub fn record_event(&self, outcome: EventOutcome) {
        if let Ok(c) = self
            .events
            .get_metric_with_label_values(&[outcome.as_str()])
        {
            c.inc();
        }
    }

    /// Records the time from receiving an event to its signed card.
    pub fn observe_issue_latency(&self, elapsed: Duration) {
        self.issue_latency.observe(elapsed.as_secs_f64());
    }

    /// Counts one delivery attempt; `channel` is a fixed name such as `"sms"` or `"wallet"`.
    pub fn record_delivery_attempt(&self, channel: &'static str, outcome: DeliveryOutcome) {
        if let Ok(c) = self
            .delivery_attempts
            .get_metric_with_label_values(&[channel, outcome.as_str()])
        {
            c.inc();
        }
    }

    /// Sets the dead-letter queue depth (as last read from the broker).
    pub fn set_dlq_depth(&self, messages: i64) {
        self.dlq_depth.set(messages);
    }

    /// Sets the outbox lag: the age of the oldest unsent row, zero when none.
    pub fn set_outbox_lag(&self, age: Duration) {
        self.outbox_lag.set(age.as_secs_f64());
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> Result<String, Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| Error::Metrics(prometheus::Error::Msg(e.to_string())))
    }
}
