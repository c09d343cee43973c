//! `vaxcred doctor` against real servers on random ports: the issuer's own HTTP surface passes
//! every check; a server with the classic mistakes (no CORS, `kid` not a thumbprint, no
//! `use`/`alg`, unreachable CRL) fails each of them by name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

fn doctor(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vaxcred"))
        .args(["doctor", url, "--allow-http"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_our_issuer_and_names_each_classic_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::connect(None, dir.path()).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let issuer = issuer::issuers::ensure_default_issuer(&store, &base, "Doctor Test")
        .await
        .unwrap();
    let keys = issuer::keystore::FileKeyStore::open(
        &dir.path().join("keys"),
        &store,
        std::slice::from_ref(&issuer),
    )
    .await
    .unwrap();
    let state = issuer::http::HttpState::new(
        store.clone(),
        issuer::keys::ManagedKeys::File(Arc::new(keys)),
        issuer::http::HttpSettings {
            public_base_url: base.clone(),
            admin_tokens: vec![],
            patient_token_secret: None,
            revocation: true,
            allow_insecure_iss: true,
        },
    );
    let server =
        HttpServer::new(move || App::new().configure(issuer::http::configure(state.clone())))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
    tokio::spawn(server);
    let b = base.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || doctor(&b))
        .await
        .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    assert!(text.contains("CRL reachable and current"), "{text}");

    // A badly configured issuer: no CORS, a made-up kid, no use/alg, a CRL that is not there.
    let bad = serde_json::json!({"keys": [{
        "kty": "EC", "kid": "not-a-thumbprint", "crv": "P-256", "crlVersion": 1,
        "x": "11XvRWy1I2S0EyJlyf_bWfw_TQ5CJJNLw78bHXNxcgw",
        "y": "eZXwxvO1hvCY0KucrPfKo7yAyMT6Ajc3N7OkAB6VYy8",
    }]});
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bad_base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let body = bad.clone();
        App::new().route(
            "/.well-known/jwks.json",
            web::get().to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().json(body) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let url = bad_base.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || doctor(&url))
        .await
        .unwrap();
    assert!(!ok, "{text}");
    for failure in [
        "FAIL JWKS has Access-Control-Allow-Origin",
        "FAIL key not-a-thumbprint: kid is its RFC 7638 thumbprint",
        "FAIL key not-a-thumbprint: use and alg present",
        "FAIL key not-a-thumbprint: CRL reachable and current",
        "FAIL smart-configuration lists health-cards",
    ] {
        assert!(text.contains(failure), "{failure} missing: {text}");
    }
    let url = format!("{bad_base}/");
    let (ok, text) = tokio::task::spawn_blocking(move || doctor(&url))
        .await
        .unwrap();
    assert!(!ok);
    assert!(text.contains("FAIL iss has no trailing slash"), "{text}");
}
