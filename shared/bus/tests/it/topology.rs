//! Topology: names, arguments (proved by the broker refusing inequivalent redeclarations),
//! idempotence, EHR routing, configuration checks.

use bus::lapin::options::QueueDeclareOptions;
use bus::lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use bus::{Bus, BusConfig, BusError, Outgoing};

use crate::helpers::{connect, random_name, teardown, test_config, wait_count};

fn args(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declares `queue` durable with `arguments` on a fresh channel; returns the broker reply code
/// of a refusal, `None` on success.
async fn redeclare(bus: &Bus, queue: &str, arguments: FieldTable) -> Option<u16> {
    let channel = bus.channel().await.unwrap();
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let result = channel.queue_declare(queue, options, arguments).await;
    let _ = channel.close(200, "test").await;
    match result {
        Ok(_) => None,
        Err(bus::lapin::Error::ProtocolError(e)) => Some(e.get_id()),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn work_queue_has_the_declared_quorum_arguments() {
    let prefix = random_name("topo");
    let bus = connect(&prefix).await;
    let t = bus.topology().clone();
    let ingest = t.queue("ingest");
    let good = || {
        vec![
            ("x-queue-type", text("quorum")),
            ("x-delivery-limit", AMQPValue::LongLongInt(5)),
            ("x-dead-letter-exchange", text(&t.dlx())),
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish")),
        ]
    };
    // The exact same arguments are accepted: the declaration is what we think it is.
    assert_eq!(redeclare(&bus, &ingest, args(&good())).await, None);

    // Each changed argument is refused with 406 PRECONDITION_FAILED, which proves the queue
    // carries that argument's declared value.
    for (name, other) in [
        ("x-queue-type", text("classic")),
        ("x-delivery-limit", AMQPValue::LongLongInt(6)),
        ("x-dead-letter-exchange", text("elsewhere")),
        ("x-dead-letter-strategy", text("at-most-once")),
        ("x-overflow", text("drop-head")),
    ] {
        let mut changed = good();
        for entry in &mut changed {
            if entry.0 == name {
                entry.1 = other.clone();
            }
        }
        assert_eq!(
            redeclare(&bus, &ingest, args(&changed)).await,
            Some(406),
            "argument {name}"
        );
    }

    // Retry queue: TTL and the way back.
    let retry = t.retry_queue("ingest", std::time::Duration::from_millis(200));
    assert_eq!(retry, format!("{prefix}.retry.ingest.200ms"));
    let retry_args = |ttl: i64| {
        args(&[
            ("x-queue-type", text("quorum")),
            ("x-message-ttl", AMQPValue::LongLongInt(ttl)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(&ingest)),
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish")),
        ])
    };
    assert_eq!(redeclare(&bus, &retry, retry_args(200)).await, None);
    assert_eq!(redeclare(&bus, &retry, retry_args(300)).await, Some(406));

    // Every queue exists and is empty.
    for short in ["ingest", "issue", "deliver"] {
        assert_eq!(bus.message_count(&t.queue(short)).await.unwrap(), 0);
        for delay in t.retry_delays() {
            assert_eq!(
                bus.message_count(&t.retry_queue(short, *delay))
                    .await
                    .unwrap(),
                0
            );
        }
    }
    assert_eq!(bus.message_count(&t.dlq()).await.unwrap(), 0);

    // Declaring again (a second instance, or after a reconnect) is idempotent.
    let second = connect(&prefix).await;
    second.close().await;

    teardown(bus).await;
    // Teardown removed everything.
    let probe = connect(&random_name("probe")).await;
    let err = probe.message_count(&ingest).await.unwrap_err();
    assert!(matches!(err, BusError::QueueNotFound(_)), "{err:?}");
    assert_eq!(err.code(), "bus-queue-not-found");
    teardown(probe).await;
}

#[tokio::test]
async fn ehr_exchange_routes_fhir_keys_to_ingest_only() {
    let prefix = random_name("ehr");
    let bus = connect(&prefix).await;
    let publisher = bus.publisher();
    let ehr = bus.topology().ehr_exchange();
    assert_eq!(ehr, format!("{prefix}.ehr"));
    publisher
        .publish(&Outgoing::new(&ehr, "fhir.Immunization", b"{}".to_vec()).message_id("m1"))
        .await
        .unwrap();
    wait_count(&bus, &bus.topology().queue("ingest"), 1).await;

    let err = publisher
        .publish(&Outgoing::new(&ehr, "hl7.v2", b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        bus.message_count(&bus.topology().queue("issue"))
            .await
            .unwrap(),
        0
    );
    teardown(bus).await;
}

#[tokio::test]
async fn existing_ehr_exchange_is_bound_not_declared() {
    let prefix = random_name("exist");
    // Missing exchange: start-up fails with a non-retryable topology error.
    let mut config = test_config(&prefix);
    config.ehr_exchange = bus::EhrExchange::Existing(format!("{prefix}.engine"));
    config.ehr_routing_keys = vec!["fhir.Immunization".into()];
    let err = Bus::connect(config.clone()).await.unwrap_err();
    assert_eq!(err.code(), "bus-topology");
    assert_eq!(err.reply_code(), Some(404));
    assert!(!err.is_retryable());

    // Once the engine's exchange exists we bind to it.
    let owner = connect(&prefix).await;
    let channel = owner.channel().await.unwrap();
    channel
        .exchange_declare(
            &format!("{prefix}.engine"),
            bus::lapin::ExchangeKind::Topic,
            bus::lapin::options::ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let bus = Bus::connect(config).await.unwrap();
    bus.publisher()
        .publish(&Outgoing::new(
            format!("{prefix}.engine"),
            "fhir.Immunization",
            b"{}".to_vec(),
        ))
        .await
        .unwrap();
    wait_count(&bus, &bus.topology().queue("ingest"), 1).await;
    channel
        .exchange_delete(&format!("{prefix}.engine"), Default::default())
        .await
        .unwrap();
    bus.close().await;
    teardown(owner).await;
}

#[tokio::test]
async fn invalid_configuration_is_refused_without_echoing_secrets() {
    let bad = [
        BusConfig {
            prefix: String::new(),
            ..BusConfig::default()
        },
        BusConfig {
            prefix: "has space".into(),
            ..BusConfig::default()
        },
        BusConfig {
            prefetch: 0,
            ..BusConfig::default()
        },
        BusConfig {
            url: "http://user:s3cr3t-pw@host/".into(),
            ..BusConfig::default()
        },
        BusConfig {
            retry_delays: vec![std::time::Duration::ZERO],
            ..BusConfig::default()
        },
    ];
    for config in bad {
        let err = Bus::connect(config).await.unwrap_err();
        assert_eq!(err.code(), "bus-config");
        assert!(!err.is_retryable());
        assert!(!err.to_string().contains("s3cr3t"));
    }
    let config = BusConfig {
        url: "amqp://guest:s3cr3t-pw@127.0.0.1:5672/%2f".into(),
        ..BusConfig::default()
    };
    assert!(!format!("{config:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn wrong_credentials_fail_fast_at_connect() {
    let mut config = test_config(&random_name("auth"));
    config.url = "amqp://guest:wrong-s3cr3t@127.0.0.1:5672/%2f".into();
    let err = Bus::connect(config).await.unwrap_err();
    assert_eq!(err.code(), "bus-connect");
    let chain = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(!chain.contains("wrong-s3cr3t"), "{chain}");
}
