//! The official validator's test data (`shc-examples/dev-tools/`): every positive vector is
//! accepted and every negative one rejected with the reason the conformance README gives, as a
//! typed [`ProblemKind`]. Expectations follow spec v1.4 where the 2023 validator only warned
//! (e.g. an expired card is rejected: rule 4 says verifiers SHALL).
// Integration tests: helpers outside #[test] fns may panic on broken fixtures, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::*;
use shc::check::{check_bundle, check_payload};
use shc::keys::{check_jwk, Jwks};
use shc::{ProblemKind as K, Severity, TrustStore, Verification, Verifier};

const SPEC_ISS: &str = "https://spec.smarthealth.cards/examples/issuer";

fn dev(name: &str) -> PathBuf {
    shc_examples().join("dev-tools").join(name)
}

fn spec_trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_issuer(
        SPEC_ISS,
        Jwks::parse(&read(
            &shc_examples().join("spec-site/issuer-jwks.public.json"),
        ))
        .unwrap(),
    );
    t.add_crl(&json(&shc_examples().join(
        "spec-site/issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json",
    )))
    .unwrap();
    t
}

fn verify(name: &str) -> Verification {
    verify_with(spec_trust(), name)
}

fn verify_with(trust: TrustStore, name: &str) -> Verification {
    Verifier::new(trust).verify_bytes(&read_bytes(&dev(name)), Some(name))
}

fn kinds(v: &Verification, severity: Severity) -> Vec<K> {
    v.all_problems()
        .filter(|p| p.severity == severity)
        .map(|p| p.kind)
        .collect()
}

#[track_caller]
fn assert_rejected(v: &Verification, name: &str, expected: &[K]) {
    assert!(!v.is_valid(), "{name} must be rejected: {v:#?}");
    let errors = kinds(v, Severity::Error);
    for k in expected {
        assert!(
            errors.contains(k),
            "{name}: expected {k:?} among errors {errors:?}"
        );
    }
}

#[track_caller]
fn assert_accepted(v: &Verification, name: &str) {
    assert!(
        v.is_valid(),
        "{name} must be accepted: {:#?}",
        v.all_problems().collect::<Vec<_>>()
    );
}

#[test]
fn positive_vectors_are_accepted() {
    let mut files = Vec::new();
    for name in [
        "test-example-00-e-file-multi-jws.smart-health-card",
        "test-example-00-fhirhealthcard.json",
        "test-example-00-fhirhealthcard-multi-jws.json",
        "test-example-00-fhirhealthcard-with-resource-link.json",
        "test-example-1195-byte-qrnumeric.txt",
        "test-example-00-g-qr-code-0-scaled-23.jpg",
        "test-example-00-g-qr-code-0-scaled-85.jpg",
        "test-example-00-g-qr-code-inflated-to-v22.png",
        "test-example-00-d-jws-bad-fhir-metadata.txt",
        "test-example-00-f-qr-code-numeric-value-0-wrong-multi-chunk.txt",
    ] {
        assert_accepted(&verify(name), name);
        files.push(name.to_owned());
    }
    // Valid content, wrong extension: a warning, not a rejection (rule 39 binds servers).
    let v = verify("test-example-00-e-file.wrong-extension");
    assert_accepted(&v, "wrong-extension");
    assert!(kinds(&v, Severity::Warning).contains(&K::InvalidFileExtension));
    // A QR forced to version 22: valid, with a warning that it is larger than needed.
    assert!(kinds(
        &verify("test-example-00-g-qr-code-inflated-to-v22.png"),
        Severity::Warning
    )
    .contains(&K::InvalidQrVersion));
    assert!(kinds(
        &verify("test-example-00-f-qr-code-numeric-value-0-wrong-multi-chunk.txt"),
        Severity::Warning
    )
    .contains(&K::InvalidNumericQrHeader));
    assert!(kinds(
        &verify("test-example-00-d-jws-bad-fhir-metadata.txt"),
        Severity::Warning
    )
    .contains(&K::FhirSchema));
    files.push("test-example-00-e-file.wrong-extension".into());
    ran("positive_vectors_are_accepted", &files);
}

#[test]
fn jws_vectors_are_rejected_for_their_reason() {
    let cases: &[(&str, &[K])] = &[
        (
            "test-example-00-d-jws-invalid-signature.txt",
            &[K::SignatureInvalid],
        ),
        (
            "test-example-00-d-jws-der-signature.txt",
            &[K::SignatureFormat],
        ),
        (
            "test-example-00-d-jws-der-signature-r-neg.txt",
            &[K::SignatureFormat],
        ),
        (
            "test-example-00-d-jws-der-signature-s-neg.txt",
            &[K::SignatureFormat],
        ),
        (
            "test-example-00-d-jws-der-signature-rs-neg.txt",
            &[K::SignatureFormat],
        ),
        (
            "test-example-00-d-jws-no_jws_header_alg.txt",
            &[K::JwsHeader, K::SignatureInvalid],
        ),
        (
            "test-example-00-d-jws-no_jws_header_kid.txt",
            &[K::JwsHeader],
        ),
        (
            "test-example-00-d-jws-no_jws_header_zip.txt",
            &[K::JwsHeader, K::SignatureInvalid],
        ),
        (
            "test-example-00-d-jws-wrong_jws_header_kid.txt",
            &[K::UnknownKid],
        ),
        (
            "test-example-00-d-jws-no_deflate.txt",
            &[K::Inflation, K::JwsHeader],
        ),
        (
            "test-example-00-e-file-no_deflate.smart-health-card",
            &[K::Inflation, K::JwsHeader],
        ),
        (
            "test-example-00-e-file-invalid_deflate.smart-health-card",
            &[K::Inflation],
        ),
        (
            "test-example-00-d-jws-utf8_bom_prefix.txt",
            &[K::TrailingCharacters],
        ),
        (
            "test-example-00-d-jws-trailing_chars.txt",
            &[K::TrailingCharacters],
        ),
        (
            "test-example-00-e-file-trailing_chars.smart-health-card",
            &[K::TrailingCharacters],
        ),
        (
            "test-example-00-f-qr-code-numeric-value-0-trailing_chars.txt",
            &[K::TrailingCharacters],
        ),
        (
            "test-example-00-e-file-invalid_issuer_url.smart-health-card",
            &[K::IssuerUnknown],
        ),
        (
            "test-example-00-e-file-invalid_issuer_url_http.smart-health-card",
            &[K::InvalidIssuerUrl],
        ),
        (
            "test-example-00-e-file-issuer_url_with_trailing_slash.smart-health-card",
            &[K::InvalidIssuerUrl],
        ),
        (
            "test-example-00-e-file-multi-jws-issues.smart-health-card",
            &[K::JwsHeader, K::SignatureInvalid, K::TrailingCharacters],
        ),
    ];
    for (name, expected) in cases {
        assert_rejected(&verify(name), name, expected);
    }
    // Too long for one QR (and from the old issuer URL with no `nbf`): JWS_TOO_LONG is reported.
    for name in [
        "test-example-00-d-jws-jws_too_long.txt",
        "test-example-00-e-file-jws_too_long.smart-health-card",
    ] {
        let v = verify(name);
        assert!(v.has(K::JwsTooLong), "{name}");
        assert!(!v.is_valid());
    }
    // Signed by a key of another issuer (`issuer.jwks.public.not.smart.json`) but claiming the
    // spec issuer, whose JWKS lacks that `kid`.
    let mut t = spec_trust();
    t.add_issuer(
        "https://not.smart.example/issuer",
        Jwks::parse(&read(&dev("issuer.jwks.public.not.smart.json"))).unwrap(),
    );
    assert_rejected(
        &verify_with(t, "test-example-00-d-jws-issuer-kid-mismatch.txt"),
        "issuer-kid-mismatch",
        &[K::UnknownKid],
    );
    // Signed with the spec key but claiming another issuer, whose keys are unknown.
    assert_rejected(
        &verify("test-example-00-d-jws-issuer-not-valid-with-smart-key.txt"),
        "issuer-not-valid",
        &[K::IssuerUnknown],
    );
    // The issuer's JWKS is not JSON: it cannot be trusted, so the issuer's keys are unknown.
    assert!(Jwks::parse(&read(&dev("badjwks/.well-known/jwks.json"))).is_err());
    assert_rejected(
        &verify_with(
            TrustStore::new(),
            "test-example-00-e-file-bad_jwks.smart-health-card",
        ),
        "bad_jwks",
        &[K::IssuerUnknown],
    );
    ran(
        "jws_vectors_are_rejected_for_their_reason",
        &cases.iter().map(|c| c.0.to_owned()).collect::<Vec<_>>(),
    );
}

#[test]
fn qr_vectors_are_rejected_for_their_reason() {
    let cases: &[(&str, &[K])] = &[
        (
            "test-example-00-f-qr-code-numeric-value-0-wrong_qr_header.txt",
            &[K::InvalidNumericQrHeader],
        ),
        (
            "test-example-00-f-qr-code-numeric-value-0-odd-count.txt",
            &[K::InvalidNumericQr],
        ),
        (
            "test-example-00-f-qr-code-numeric-value-0-number-too-big.txt",
            &[K::InvalidNumericQr],
        ),
        (
            "test-example-00-f-qr-code-numeric-value-0-index-out-of-range.txt",
            &[K::QrChunkingDeprecated, K::InvalidNumericQrHeader],
        ),
        (
            "test-example-00-g-qr-code-0-single_qr_segment.png",
            &[K::InvalidQrVersion, K::InvalidQr],
        ),
        (
            "test-example-00-g-qr-code-0-too_many_qr_segment.png",
            &[K::InvalidQr, K::InvalidNumericQr],
        ),
        (
            "test-example-00-g-qr-code-0-bad_qr_version.png",
            &[K::InvalidQrVersion],
        ),
        ("test-example-00-g-qr-code-0-corrupted.png", &[K::QrDecode]),
        ("test-invalid-jws-payload.png", &[K::JsonParse]),
    ];
    for (name, expected) in cases {
        assert_rejected(&verify(name), name, expected);
    }
    let verifier = Verifier::new(spec_trust());
    // Chunk 1 of a 3-chunk card next to an out-of-range `3/2` chunk.
    let a = read(&dev(
        "test-example-00-f-qr-code-numeric-value-0-index-out-of-range.txt",
    ));
    let b = read(&shc_examples().join("spec-site/example-02-f-qr-code-numeric-value-1.txt"));
    assert_rejected(
        &verifier.verify_qr_texts(&[&a, &b]),
        "index-out-of-range pair",
        &[K::InvalidNumericQrHeader],
    );
    // 17 needless, unbalanced chunks of a card that fits one QR.
    let texts: Vec<String> = (0..=16)
        .map(|k| {
            read(&dev(&format!(
                "test-example-00-f-qr-code-numeric-value-{k}-qr_chunk_too_small.txt"
            )))
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let v = verifier.verify_qr_texts(&refs);
    assert_rejected(&v, "17 chunks", &[K::QrChunkingDeprecated]);
    assert!(kinds(&v, Severity::Warning).contains(&K::UnbalancedQrChunks));
    // The same as two images.
    let imgs: Vec<Vec<u8>> = (0..=1)
        .map(|k| {
            read_bytes(&dev(&format!(
                "test-example-00-g-qr-code-{k}-qr_chunk_too_small.png"
            )))
        })
        .collect();
    let v = verifier.verify_qr_images(&[&imgs[0], &imgs[1]]);
    assert_rejected(&v, "2 chunk images", &[K::QrChunkingDeprecated]);
    // Two chunks over the 1191-character chunk limit.
    let texts: Vec<String> = (0..=1)
        .map(|k| {
            read(&dev(&format!(
                "test-example-02-f-qr-code-numeric-value-{k}-qr_chunk_too_big.txt"
            )))
        })
        .collect();
    let v = verifier.verify_qr_texts(&[&texts[0], &texts[1]]);
    assert!(
        kinds(&v, Severity::Error).contains(&K::InvalidNumericQr),
        "{v:#?}"
    );
    assert!(!v.is_valid());
    ran(
        "qr_vectors_are_rejected_for_their_reason",
        &cases.iter().map(|c| c.0.to_owned()).collect::<Vec<_>>(),
    );
}

fn payload_kinds(name: &str, severity: Severity) -> Vec<K> {
    let v = json(&dev(name));
    check_payload(&v, shc::payload::now_secs() as f64)
        .into_iter()
        .filter(|p| p.severity == severity)
        .map(|p| p.kind)
        .collect()
}

#[test]
fn payload_vectors() {
    let rejected: &[(&str, K)] = &[
        (
            "test-example-00-b-jws-payload-expanded-expired.json",
            K::Expired,
        ),
        (
            "test-example-00-b-jws-payload-expanded-pre-expired.json",
            K::Expired,
        ),
        (
            "test-example-00-b-jws-payload-expanded-nbf_milliseconds.json",
            K::NotYetValid,
        ),
        (
            "test-example-00-b-jws-payload-expanded-missing-shc-vc-type.json",
            K::Schema,
        ),
        (
            "test-example-00-b-jws-payload-expanded-missing-coding.json",
            K::FhirSchema,
        ),
    ];
    for (name, k) in rejected {
        assert!(
            payload_kinds(name, Severity::Error).contains(k),
            "{name}: {:?}",
            payload_kinds(name, Severity::Error)
        );
    }
    // Accepted: deprecated sub-types missing, extra or unknown types (rule 5: ignore them).
    for name in [
        "test-example-00-b-jws-payload-expanded-missing-imm-vc-type.json",
        "test-example-00-b-jws-payload-expanded-missing-covid-vc-type.json",
        "test-example-00-b-jws-payload-expanded-optional-vc-type.json",
        "test-example-00-b-jws-payload-expanded-unknown-vc-types.json",
        "test-example-covid-lab-jwspayload-missing-lab-vc-type.json",
    ] {
        assert!(
            payload_kinds(name, Severity::Error).is_empty(),
            "{name}: {:?}",
            payload_kinds(name, Severity::Error)
        );
    }
    // Warnings only: a future `nbf`, an `exp` in milliseconds.
    for (name, k) in [
        (
            "test-example-00-b-jws-payload-expanded-nbf_not_yet_valid.json",
            K::NotYetValid,
        ),
        (
            "test-example-00-b-jws-payload-expanded-exp_milliseconds.json",
            K::Expired,
        ),
    ] {
        assert!(payload_kinds(name, Severity::Error).is_empty(), "{name}");
        assert!(
            payload_kinds(name, Severity::Warning).contains(&k),
            "{name}"
        );
    }
    // Trailing characters after the JSON text.
    let text = read(&dev(
        "test-example-00-b-jws-payload-expanded-trailing_chars.json",
    ));
    let (_, problems) = shc::file::parse_json_strict(&text).unwrap();
    assert_eq!(problems[0].kind, K::TrailingCharacters);
}

fn bundle_kinds(name: &str, severity: Severity) -> Vec<K> {
    check_bundle(&json(&dev(name)))
        .into_iter()
        .filter(|p| p.severity == severity)
        .map(|p| p.kind)
        .collect()
}

#[test]
fn bundle_vectors() {
    let rejected: &[(&str, &[K])] = &[
        ("test-example-00-a-short-refs.json", &[K::Profile]),
        (
            "test-example-00-a-fhirBundle-bad_meta_wrong_security.json",
            &[K::FhirSchema],
        ),
        (
            "test-example-00-a-fhirBundle-status-not-completed.json",
            &[K::FhirSchema],
        ),
        (
            "test-example-00-a-fhirBundle-occurrence-issues.json",
            &[K::FhirSchema],
        ),
        (
            "test-example-00-a-fhirBundle-empty-values.json",
            &[K::FhirSchema],
        ),
        (
            "test-example-00-a-fhirBundle-profile-usa.json",
            &[K::Profile, K::FhirSchema],
        ),
    ];
    for (name, expected) in rejected {
        let errors = bundle_kinds(name, Severity::Error);
        for k in *expected {
            assert!(errors.contains(k), "{name}: {errors:?}");
        }
    }
    assert_eq!(
        bundle_kinds(
            "test-example-00-a-fhirBundle-status-not-completed.json",
            Severity::Error
        )
        .len(),
        2
    );
    assert_eq!(
        bundle_kinds(
            "test-example-00-a-fhirBundle-occurrence-issues.json",
            Severity::Error
        )
        .len(),
        2
    );
    // Warnings only: elements outside data minimization, meta beyond security.
    for name in [
        "test-example-00-a-non-dm-properties.json",
        "test-example-00-a-fhirBundle-bad_meta_extra_key.json",
        "test-example-00-a-fhirBundle-bad_meta_non_security.json",
    ] {
        assert!(
            bundle_kinds(name, Severity::Error).is_empty(),
            "{name}: {:?}",
            bundle_kinds(name, Severity::Error)
        );
        assert!(!bundle_kinds(name, Severity::Warning).is_empty(), "{name}");
    }
    let text = read(&dev("test-example-00-a-fhirBundle-trailing_chars.json"));
    assert_eq!(
        shc::file::parse_json_strict(&text).unwrap().1[0].kind,
        K::TrailingCharacters
    );
}

/// `badcrl/<case>`: a card signed with the test key, its issuer's JWKS with `crlVersion` and a
/// defective CRL → a revocation error each (rules 28–31).
#[test]
fn bad_crl_vectors() {
    let cases = [
        "duplicate-rid",
        "invalid-method",
        "non-base64url-rid",
        "too-long-rid",
        "version-mismatch",
    ];
    for case in cases {
        let dir = dev("badcrl").join(case);
        let jws = read(&dir.join(format!("jws-crl-{case}.txt")));
        let payload =
            shc::deflate::inflate_raw(&shc::jws::parse(&jws).unwrap().payload, 1 << 20).unwrap();
        let iss = serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["iss"]
            .as_str()
            .unwrap()
            .to_owned();
        let jwks = Jwks::parse(&read(&dir.join(".well-known/jwks.json"))).unwrap();
        let crl_dir = dir.join(".well-known/crl");
        let crl_file = std::fs::read_dir(&crl_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut trust = TrustStore::new();
        trust.add_issuer(iss, jwks);
        trust.add_crl(&json(&crl_file)).unwrap();
        let report = Verifier::new(trust).verify_jws(&jws);
        assert!(report.signature_verified, "{case}: {:?}", report.problems);
        assert!(report.has(K::Revocation), "{case}: {:?}", report.problems);
        assert!(!report.is_valid());
    }
    ran(
        "bad_crl_vectors",
        &cases
            .iter()
            .map(|c| format!("badcrl/{c}"))
            .collect::<Vec<_>>(),
    );
}

#[test]
fn key_vectors() {
    for name in ["valid_key.json", "valid_keys.json"] {
        for key in Jwks::parse(&read(&dev(name))).unwrap().keys {
            assert!(check_jwk(&key).is_empty(), "{name}: {:?}", check_jwk(&key));
        }
    }
    for name in [
        "wrong_kid_key.json",
        "wrong_curve_key.json",
        "wrong_use_key.json",
        "wrong_alg_key.json",
        "wrong_kty_key.json",
        "private_key.json",
    ] {
        let jwks = Jwks::parse(&read(&dev(name))).unwrap();
        let problems = check_jwk(&jwks.keys[0]);
        assert!(
            problems
                .iter()
                .any(|p| p.kind == K::InvalidKey && p.is_error()),
            "{name}: {problems:?}"
        );
    }
}

/// Rule 23 with PKI checks on: the spec's `x5c` key verifies its example 01 at a date inside the
/// chain's validity and is flagged once the chain has expired.
#[test]
fn x5c_checked_when_pki_is_on() {
    let dir = shc_examples().join("spec-site");
    let jws = read(&dir.join("example-01-d-jws.txt"));
    let in_2022 = Verifier::new(spec_trust())
        .with_x5c_pki()
        .at(1_653_955_200.0)
        .verify_jws(&jws);
    assert!(!in_2022.has(K::InvalidKeyX5c), "{:?}", in_2022.problems);
    let today = Verifier::new(spec_trust()).with_x5c_pki().verify_jws(&jws);
    assert!(today.has(K::InvalidKeyX5c) && !today.is_valid());
    // Off by default: directory-based trust does not depend on the chain.
    assert!(!Verifier::new(spec_trust())
        .verify_jws(&jws)
        .has(K::InvalidKeyX5c));
}
