//! `vaxcred serve` as a hospital runs it: a child process with the default settings (SQLite in its
//! data dir, a file key generated on first start) against the local RabbitMQ in its own vhost.
//! `/health/ready` follows the broker connection (not ready while it is closed, ready again
//! after the reconnect), the issuer's JWKS is served, and SIGTERM ends the process cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A raw HTTP/1.1 GET: (status, body). No client library needed for a health probe.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool, child: &mut Child) {
    let start = Instant::now();
    while !check() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("vaxcred serve exited ({status}) while waiting for {what}");
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_readiness_follows_the_broker_and_sigterm_is_clean() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let vhost = format!("vxserve{}x{nanos}", std::process::id());
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let data = std::env::temp_dir().join(&vhost);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vaxcred"))
        .arg("serve")
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        )
        .env("VAXCRED_DATA_DIR", &data)
        .env("VAXCRED_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_for(
        "ready",
        || get(port, "/health/ready").is_some_and(|(s, _)| s == 200),
        &mut child,
    );
    assert_eq!(get(port, "/health/live").unwrap().0, 200);
    let (status, jwks) = get(port, "/.well-known/jwks.json").unwrap();
    assert_eq!(status, 200);
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        key["kid"],
        shc::keys::thumbprint(key["x"].as_str().unwrap(), key["y"].as_str().unwrap())
    );
    assert!(key.get("d").is_none());
    assert!(
        key["crlVersion"].is_u64(),
        "revocation is on: every key announces crlVersion"
    );
    let kid = key["kid"].as_str().unwrap();
    assert_eq!(
        get(port, &format!("/.well-known/crl/{kid}.json"))
            .unwrap()
            .0,
        200
    );
    let (_, smart) = get(port, "/.well-known/smart-configuration").unwrap();
    assert!(smart.contains("health-cards"), "{smart}");
    assert_eq!(
        get(port, "/shl/view").unwrap().0,
        200,
        "the SHL viewer is mounted"
    );
    // Gauges fed from outside the workers (issue 10): DLQ depth and outbox lag.
    wait_for(
        "DLQ depth gauge",
        || get(port, "/metrics").is_some_and(|(_, m)| m.contains("vaxcred_dlq_depth 0")),
        &mut child,
    );
    assert!(get(port, "/metrics")
        .unwrap()
        .1
        .contains("vaxcred_outbox_lag_seconds"));
    // The VCI-style outside audit passes against the default deployment (http allowed on loopback).
    let doctor = Command::new(env!("CARGO_BIN_EXE_vaxcred"))
        .args([
            "doctor",
            &format!("http://127.0.0.1:{port}"),
            "--allow-http",
        ])
        .output()
        .unwrap();
    assert!(
        doctor.status.success(),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
    // The key was generated on first start into the data dir, readable by the owner only.
    assert!(std::fs::read_dir(data.join("keys")).is_ok_and(|mut d| d.next().is_some()));

    // The defaults issue cards (a loopback `iss` is a development issuer): publish an EHR
    // message as a hospital would and wait for the issue latency histogram to count one card.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/shc-examples/fixture-covid-vaccines-bundle.json");
    let body = std::fs::read(&fixture).expect("conformance fixture");
    let url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let bus = bus::Bus::connect(bus::BusConfig {
            url,
            ..bus::BusConfig::default()
        })
        .await
        .unwrap();
        let exchange = bus.topology().ehr_exchange();
        bus.publisher()
            .publish(&bus::Outgoing::new(exchange, "fhir.Bundle", body).message_id("serve-test-1"))
            .await
            .unwrap();
        bus.close().await;
    });
    wait_for(
        "a card issued by the default serve",
        || {
            get(port, "/metrics")
                .is_some_and(|(_, m)| m.contains("vaxcred_issue_latency_seconds_count 1"))
        },
        &mut child,
    );

    rabbitmqctl(&[
        "close_all_connections",
        "--vhost",
        &vhost,
        "--limit",
        "100",
        "readiness test",
    ]);
    wait_for(
        "not ready",
        || get(port, "/health/ready").is_some_and(|(s, _)| s == 503),
        &mut child,
    );
    let (_, body) = get(port, "/health/ready").unwrap();
    assert!(body.contains("amqp"), "{body}");
    wait_for(
        "ready again",
        || get(port, "/health/ready").is_some_and(|(s, _)| s == 200),
        &mut child,
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "serve exited with {status} after SIGTERM");
    rabbitmqctl(&["delete_vhost", &vhost]);
    let _ = std::fs::remove_dir_all(&data);
}
