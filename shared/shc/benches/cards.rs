//! Cards issued and verified per second on one core, and where the issuing time goes.
//!
//! Issue: un-minimized bundle JSON in → minimized bundle → payload → DEFLATE → ES256 JWS → `shc:/`
//! text out, with one reused [`CardIssuer`] (as a worker does). Verify: JWS → inflate → parse →
//! checks → ES256 verify against a JWKS. Run: `cargo bench -p shc --bench cards` (release profile).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shc::keys::Jwks;
use shc::{qr, CardIssuer, Claims, JwsSigner, LocalSigner, TrustStore, Verifier};

fn main() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/shc-examples/fixture-covid-vaccines-bundle.json");
    let input =
        std::fs::read(&fixture).expect("conformance fixture (../shared/conformance) is needed");
    let signer = Arc::new(LocalSigner::generate());
    let claims = Claims::new("https://issuer.example.org");
    let mut issuer = CardIssuer::new(signer.clone());
    let n = 20_000;

    // Warm up, then measure the whole pipeline.
    for _ in 0..1000 {
        issuer.issue_json(&input, &claims).unwrap();
    }
    let start = Instant::now();
    let mut jws = String::new();
    for _ in 0..n {
        jws = issuer.issue_json(&input, &claims).unwrap().jws;
    }
    let issue = start.elapsed();
    println!(
        "issue:  {n} cards in {issue:.2?} = {:.0} cards/s on one core (JWS {} chars)",
        n as f64 / issue.as_secs_f64(),
        jws.len()
    );

    // Where the time goes: each stage timed alone over the same input.
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    let mut bundle = serde_json::Value::Null;
    for _ in 0..n {
        bundle = serde_json::from_slice(&input).unwrap();
    }
    let parse = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        let mut b = bundle.clone();
        shc::minimize::minimize_bundle(&mut b).unwrap();
    }
    let minimize = t.elapsed();
    shc::minimize::minimize_bundle(&mut bundle).unwrap();
    let t = Instant::now();
    let mut payload = Vec::new();
    for _ in 0..n {
        shc::payload::write_payload(&claims, &bundle, &mut payload).unwrap();
    }
    let serialize = t.elapsed();
    let mut compressor = shc::deflate::Compressor::new();
    let mut compressed = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        compressor.compress_into(&payload, &mut compressed).unwrap();
    }
    let deflate = t.elapsed();
    let input_b64 = format!("eyJ6aXAiOiJERUYi.{}", shc::b64::encode(&compressed));
    let t = Instant::now();
    for _ in 0..n {
        signer.sign_es256(input_b64.as_bytes()).unwrap();
    }
    let sign = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        let _ = qr::numeric_text(&jws).unwrap();
    }
    let numeric = t.elapsed();
    println!(
        "  per card (µs): parse {:.1}, minimize {:.1} (incl. clone), payload {:.1}, deflate {:.1} ({} → {} bytes), ES256 sign {:.1}, shc:/ text {:.1}",
        per(parse), per(minimize), per(serialize), per(deflate), payload.len(), compressed.len(), per(sign), per(numeric)
    );

    let mut trust = TrustStore::new();
    trust.add_issuer(
        claims.iss.clone(),
        Jwks::from_public(&[signer.public_jwk().clone()]),
    );
    let verifier = Verifier::new(trust);
    let m = 10_000;
    assert!(verifier.verify_jws(&jws).is_valid());
    let start = Instant::now();
    for _ in 0..m {
        assert!(verifier.verify_jws(&jws).signature_verified);
    }
    let verify = start.elapsed();
    println!(
        "verify: {m} cards in {verify:.2?} = {:.0} cards/s on one core",
        m as f64 / verify.as_secs_f64()
    );

    // A QR image, for scale: rendered on request and cached, never per card.
    let t = Instant::now();
    let k = 200;
    for _ in 0..k {
        let code = qr::matrix(&qr::numeric_text(&jws).unwrap()).unwrap();
        let _ = qr::to_svg(&code);
    }
    println!(
        "QR matrix + SVG: {:.2} ms each",
        t.elapsed().as_secs_f64() * 1e3 / k as f64
    );
}
