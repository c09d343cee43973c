//! `init_telemetry` with an OTLP endpoint exports spans over HTTP: a loopback listener stands in
//! for the collector. Its own test binary because it installs the global subscriber.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use platform::Config;

#[test]
fn spans_reach_the_otlp_collector() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = Vec::new();
            // Read the head and the body the Content-Length announces.
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                .ok();
            let _ = tx.send(String::from_utf8_lossy(&got).to_string());
        }
    });

    let config =
        Config::from_env_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).unwrap();
    let guard = platform::telemetry::init_telemetry("otlp-test", &config.telemetry).unwrap();
    {
        let span = tracing::info_span!("otlp_probe_span", credential_id = "cred-1");
        let _e = span.enter();
        tracing::info!("inside");
    }
    // Dropping the guard flushes the batch exporter.
    drop(guard);

    let request = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(request.starts_with("POST /v1/traces "), "{request:.200}");
    assert!(
        request.contains("otlp_probe_span"),
        "span name not exported"
    );
    assert!(request.contains("otlp-test"), "service name not exported");

    let again = platform::telemetry::init_telemetry("otlp-test", &config.telemetry);
    assert_eq!(again.unwrap_err().code(), "telemetry-setup");
}
