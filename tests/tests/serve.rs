//! `vaxcred serve` as a child process: SIGTERM while it is ingesting loses nothing — every event
//! is either processed or back in its queue, and a second `serve` on the same data finishes the
//! rest with exactly one card per patient.
//!
//! Needs the binary: `cargo build -p vaxcred` first (`.ci/run` does); the test fails loudly if
//! it is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test setup failures must fail the test"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use store::{CredentialStatus, EventStatus, Store};
use vaxcred_tests::fhir::{self, MRN};
use vaxcred_tests::{message, random_name, wait_until};

const ISS: &str = "https://issuer.test";

fn binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let bin = target.join("debug/vaxcred");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p vaxcred` first",
        bin.display()
    );
    bin
}

/// Kills the child if the test fails before it was stopped, so no `serve` outlives the test.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(prefix: &str, data: &std::path::Path, port: u16) -> Serve {
    Serve(
        Command::new(binary())
            .arg("serve")
            .env("AMQP_PREFIX", prefix)
            .env("VAXCRED_DATA_DIR", data)
            .env("VAXCRED_HTTP__BIND", format!("127.0.0.1:{port}"))
            // Cards need an https `iss` (SHC rule 2); the JWKS is published under the same base.
            .env("VAXCRED_HTTP__PUBLIC_BASE_URL", ISS)
            .env("VAXCRED_AMQP__RETRY_DELAYS_MS", "100,200,400")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn ready(port: u16) {
    // A plain HTTP/1.0 GET: what an orchestrator's probe does, without a TLS-capable client.
    wait_until("serve ready", || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        let request = b"GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if s.write_all(request).await.is_err() {
            return false;
        }
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response).await;
        response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
    })
    .await;
}

fn terminate(serve: &mut Serve) -> std::process::ExitStatus {
    let child = &mut serve.0;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing() {
    let prefix = random_name("serve");
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn(&prefix, data.path(), port);
    ready(port).await;

    let bus = bus::Bus::connect(bus::BusConfig {
        prefix: prefix.clone(),
        retry_delays: vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
        ],
        ..bus::BusConfig::default()
    })
    .await
    .unwrap();
    let patients = 200;
    let mut messages = Vec::new();
    for i in 0..patients {
        let mrn = format!("S-{i}");
        messages.push(message(
            bus.topology(),
            fhir::dose(&mrn, 1, 1, "A1001"),
            Some(&format!("s-{i}-1")),
            None,
        ));
        messages.push(message(
            bus.topology(),
            fhir::dose(&mrn, 2, 1, "B2002"),
            Some(&format!("s-{i}-2")),
            None,
        ));
    }
    let total = messages.len() as i64;
    let publisher = bus.publisher();
    for chunk in messages.chunks(100) {
        publisher.publish_batch(chunk).await.unwrap();
    }
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        data.path().join("vaxcred.sqlite3").display()
    );
    let store = Store::connect(Some(&db_url), data.path()).await.unwrap();
    wait_until("ingest under way", || async {
        store
            .count_events_by_status()
            .await
            .unwrap()
            .get(&EventStatus::Processed)
            .copied()
            .unwrap_or(0)
            >= 20
    })
    .await;

    let status = terminate(&mut child);
    assert!(status.success(), "serve exited with {status}");
    // Nothing lost: each event is processed, or back in the queue (possibly both, if an ack was
    // lost with the connection).
    let processed = store
        .count_events_by_status()
        .await
        .unwrap()
        .get(&EventStatus::Processed)
        .copied()
        .unwrap_or(0);
    let queued = i64::from(
        bus.message_count(&bus.topology().queue("ingest"))
            .await
            .unwrap(),
    );
    assert!(
        processed + queued >= total,
        "processed {processed} + queued {queued} < {total}"
    );

    // A second serve on the same data finishes the work exactly.
    let mut child = spawn(&prefix, data.path(), port);
    ready(port).await;
    wait_until("all events processed", || async {
        store
            .count_events_by_status()
            .await
            .unwrap()
            .get(&EventStatus::Processed)
            .copied()
            .unwrap_or(0)
            == total
    })
    .await;
    let issuer = store.get_issuer_by_iss(ISS).await.unwrap().unwrap();
    for i in 0..patients {
        wait_until("current card", || async {
            let p = store
                .find_patient_by_identifier(&issuer.id, MRN, &format!("S-{i}"))
                .await
                .unwrap();
            let Some(p) = p else { return false };
            let creds = store.list_credentials(&p.id).await.unwrap();
            let active: Vec<_> = creds
                .iter()
                .filter(|c| c.status == CredentialStatus::Active)
                .collect();
            active.len() == 1
                && active
                    .first()
                    .is_some_and(|c| c.doses_version == p.doses_version)
        })
        .await;
    }
    let status = terminate(&mut child);
    assert!(status.success(), "serve exited with {status}");
    bus.delete_topology().await.unwrap();
    bus.close().await;
    store.close().await;
}
