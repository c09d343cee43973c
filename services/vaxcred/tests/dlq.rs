//! `vaxcred dlq list|replay` against the real broker: a dead-lettered message is listed with its
//! code and reason (never its body) and replayed back to its source queue.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::{Duration, Instant};

use bus::{Bus, BusConfig, Outgoing};

fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("vxdlq{}x{nanos}", std::process::id())
}

fn vaxcred(prefix: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vaxcred"))
        .args(args)
        .env("AMQP_PREFIX", prefix)
        .env("VAXCRED_DATA_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_replayed() {
    let prefix = prefix();
    let bus = Bus::connect(BusConfig {
        prefix: prefix.clone(),
        ..BusConfig::default()
    })
    .await
    .unwrap();
    let ingest = bus.topology().queue("ingest");
    let body = br#"{"resourceType":"Observation","name":"CANARY-PHI-Jane"}"#.to_vec();
    bus.publisher()
        .publish(&Outgoing::to_queue(ingest.clone(), body).message_id("msg-1"))
        .await
        .unwrap();
    let mut consumer = bus.consumer("ingest").unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    delivery
        .dead_letter("wrong-resource-type", "resource type is not Immunization")
        .await
        .unwrap();
    drop(consumer);

    let (code, text) = vaxcred(&prefix, &["dlq", "list"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("msg-1") && text.contains("wrong-resource-type"),
        "{text}"
    );
    assert!(text.contains(&ingest), "{text}");
    assert!(
        !text.contains("CANARY-PHI"),
        "the body must not be printed: {text}"
    );

    let (code, text) = vaxcred(&prefix, &["dlq", "replay", "--message-id", "msg-1"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("replayed 1"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus.message_count(&ingest).await.unwrap() != 1 {
        assert!(
            Instant::now() < deadline,
            "replayed message did not reach {ingest}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bus.message_count(&bus.topology().dlq()).await.unwrap(), 0);
    bus.delete_topology().await.unwrap();
    bus.close().await;
}
