//! Declaring (idempotently) and deleting the exchanges, queues and bindings of a [`Topology`].
//!
//! Queue arguments are spelled out rather than left to broker defaults or policies, so that
//! RabbitMQ 3.10 and 4.x behave the same (4.0 changed the default delivery limit to 20).
//! See <https://www.rabbitmq.com/docs/quorum-queues#poison-message-handling> and
//! <https://www.rabbitmq.com/docs/quorum-queues#dead-lettering>.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::config::Topology;
use crate::error::{BusError, Result};

fn table(entries: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(k), v);
    }
    t
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn ms_arg(d: std::time::Duration) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Arguments of a work queue (`{p}.ingest`, ...).
pub(crate) fn work_queue_args(topology: &Topology) -> FieldTable {
    table(vec![
        ("x-queue-type", long_string("quorum")),
        (
            "x-delivery-limit",
            AMQPValue::LongLongInt(i64::from(topology.delivery_limit())),
        ),
        ("x-dead-letter-exchange", long_string(&topology.dlx())),
        // at-least-once dead-lettering keeps the message in the source queue until the DLQ has
        // confirmed it; it needs reject-publish overflow (drop-head would be at-most-once).
        ("x-dead-letter-strategy", long_string("at-least-once")),
        ("x-overflow", long_string("reject-publish")),
    ])
}

/// Arguments of a retry queue: messages wait `delay` then go back to `{p}.{short}`.
pub(crate) fn retry_queue_args(
    topology: &Topology,
    short: &str,
    delay: std::time::Duration,
) -> FieldTable {
    table(vec![
        ("x-queue-type", long_string("quorum")),
        ("x-message-ttl", ms_arg(delay)),
        // The default exchange routes by queue name, so no binding is needed to go back.
        ("x-dead-letter-exchange", long_string("")),
        (
            "x-dead-letter-routing-key",
            long_string(&topology.queue(short)),
        ),
        ("x-dead-letter-strategy", long_string("at-least-once")),
        ("x-overflow", long_string("reject-publish")),
    ])
}

/// Arguments of the dead-letter queue: no limit, no further dead-lettering.
pub(crate) fn dlq_args() -> FieldTable {
    table(vec![("x-queue-type", long_string("quorum"))])
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn topology_err(object: &str) -> impl FnOnce(lapin::Error) -> BusError + '_ {
    move |source| BusError::Topology {
        object: object.to_owned(),
        source,
    }
}

/// Declares everything; idempotent as long as the arguments have not changed. Dead-letter
/// targets are declared before the queues that point at them.
pub(crate) async fn declare(channel: &Channel, topology: &Topology) -> Result<()> {
    let dlx = topology.dlx();
    let dlq = topology.dlq();
    // Fanout: broker dead-letters keep their original routing key, which we want to ignore.
    channel
        .exchange_declare(
            &dlx,
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .map_err(topology_err(&dlx))?;
    channel
        .queue_declare(&dlq, durable_queue(), dlq_args())
        .await
        .map_err(topology_err(&dlq))?;
    channel
        .queue_bind(
            &dlq,
            &dlx,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(topology_err(&dlq))?;

    for short in topology.queues() {
        let name = topology.queue(short);
        channel
            .queue_declare(&name, durable_queue(), work_queue_args(topology))
            .await
            .map_err(topology_err(&name))?;
        for delay in topology.retry_delays() {
            let retry = topology.retry_queue(short, *delay);
            channel
                .queue_declare(
                    &retry,
                    durable_queue(),
                    retry_queue_args(topology, short, *delay),
                )
                .await
                .map_err(topology_err(&retry))?;
        }
    }

    let ehr = topology.ehr_exchange();
    let ehr_options = if topology.owns_ehr_exchange() {
        durable_exchange()
    } else {
        ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        }
    };
    channel
        .exchange_declare(
            &ehr,
            ExchangeKind::Topic,
            ehr_options,
            FieldTable::default(),
        )
        .await
        .map_err(topology_err(&ehr))?;
    if topology.queues().iter().any(|q| q == topology.ehr_queue()) {
        let target = topology.queue(topology.ehr_queue());
        for key in topology.ehr_routing_keys() {
            channel
                .queue_bind(
                    &target,
                    &ehr,
                    key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(topology_err(&target))?;
        }
    }
    Ok(())
}

/// Deletes every queue and exchange we declared (not an existing EHR exchange). For tests and
/// for decommissioning a prefix; messages in the queues are lost.
pub(crate) async fn delete(channel: &Channel, topology: &Topology) -> Result<()> {
    let mut queues = Vec::new();
    for short in topology.queues() {
        queues.push(topology.queue(short));
        for delay in topology.retry_delays() {
            queues.push(topology.retry_queue(short, *delay));
        }
    }
    queues.push(topology.dlq());
    for queue in &queues {
        channel
            .queue_delete(queue, QueueDeleteOptions::default())
            .await
            .map_err(topology_err(queue))?;
    }
    let mut exchanges = vec![topology.dlx()];
    if topology.owns_ehr_exchange() {
        exchanges.push(topology.ehr_exchange());
    }
    for exchange in &exchanges {
        channel
            .exchange_delete(exchange, ExchangeDeleteOptions::default())
            .await
            .map_err(topology_err(exchange))?;
    }
    Ok(())
}
