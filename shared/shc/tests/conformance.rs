//! Conformance of the SHC core with the published examples (`../shared/conformance/shc-examples`):
//! decode + verify every example set, reproduce payloads byte for byte (rule 9), recompute `kid`
//! (rule 22) and `rid` (rule 28), revocation (rule 32), QR text and images (rules 34–37).
// Integration tests: helpers outside #[test] fns may panic on broken fixtures, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use shc::keys::{check_jwk, thumbprint, Jwks, LocalSigner};
use shc::{qr, CardIssuer, Claims, ProblemKind, TrustStore, Verifier};

const SETS: &[&str] = &[".", "spec-site", "hl7-ig"];

fn set_dir(set: &str) -> PathBuf {
    shc_examples().join(set)
}

/// The example issuer's keys and CRL: `spec-site/` publishes its own copy; `hl7-ig/` uses the same.
fn trust_for(set: &str, iss: &str) -> TrustStore {
    let base = if set == "spec-site" {
        set_dir("spec-site")
    } else {
        shc_examples()
    };
    let jwks = Jwks::parse(&read(&base.join("issuer-jwks.public.json"))).unwrap();
    let crl_name = "issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json";
    let crl_path = if set == "hl7-ig" {
        set_dir("spec-site").join(crl_name)
    } else {
        base.join(crl_name)
    };
    let mut trust = TrustStore::new();
    trust.add_issuer(iss, jwks);
    trust.add_crl(&json(&crl_path)).unwrap();
    trust
}

fn examples(set: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(set_dir(set))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-d-jws.txt"))
        .map(|n| n.trim_end_matches("-d-jws.txt").to_owned())
        .collect();
    names.sort();
    names
}

fn qr_texts(dir: &Path, prefix: &str, infix: &str) -> Vec<(PathBuf, String)> {
    (0..10)
        .map(|k| dir.join(format!("{prefix}-{infix}-{k}.txt")))
        .take_while(|p| p.exists())
        .map(|p| {
            let t = read(&p);
            (p, t)
        })
        .collect()
}

fn inflated_payload(jws: &str) -> Vec<u8> {
    let parsed = shc::jws::parse(jws).unwrap();
    shc::deflate::inflate_raw(&parsed.payload, 1 << 22).unwrap()
}

/// Rule 51: every artefact of every example set decodes and verifies with the issuer's JWKS, and
/// decodes to exactly the `-c-` payload. Example 03 is revoked in `spec-site/` and the top level
/// but not in `hl7-ig/` (its `nbf` is after the CRL entry's timestamp, rule 30).
#[test]
fn every_example_set_decodes_and_verifies() {
    let mut ran_files = Vec::new();
    for set in SETS {
        let dir = set_dir(set);
        for ex in examples(set) {
            let c = read(&dir.join(format!("{ex}-c-jws-payload-minified.json")));
            let payload: serde_json::Value = serde_json::from_str(&c).unwrap();
            let iss = payload["iss"].as_str().unwrap();
            let nbf = payload["nbf"].as_f64().unwrap();
            let verifier = Verifier::new(trust_for(set, iss)).at(nbf + 60.0);
            let revoked_expected = ex == "example-03" && *set != "hl7-ig";

            let check = |label: &str, v: &shc::Verification| {
                assert_eq!(v.cards.len(), 1, "{set}/{ex} {label}: {v:?}");
                let card = &v.cards[0];
                assert!(
                    card.signature_verified,
                    "{set}/{ex} {label}: {:?}",
                    card.problems
                );
                assert_eq!(card.revoked, revoked_expected, "{set}/{ex} {label}");
                let errors: Vec<_> = v
                    .all_problems()
                    .filter(|p| p.is_error())
                    .map(|p| p.kind)
                    .collect();
                if revoked_expected {
                    assert_eq!(errors, vec![ProblemKind::Revoked], "{set}/{ex} {label}");
                } else {
                    assert!(errors.is_empty(), "{set}/{ex} {label}: {errors:?}");
                    assert!(v.is_valid());
                }
                assert_eq!(
                    card.payload.as_ref().unwrap(),
                    &payload,
                    "{set}/{ex} {label}"
                );
            };

            let jws = read(&dir.join(format!("{ex}-d-jws.txt")));
            assert_eq!(
                inflated_payload(&jws),
                c.as_bytes(),
                "{set}/{ex}: inflated payload differs from -c-"
            );
            let mut v = shc::Verification::default();
            v.cards.push(verifier.verify_jws(&jws));
            check("jws", &v);
            ran_files.push(format!("{set}/{ex}-d-jws.txt"));

            let file_name = format!("{ex}-e-file.smart-health-card");
            check(
                "file",
                &verifier.verify_file(&read(&dir.join(&file_name)), Some(&file_name)),
            );
            ran_files.push(format!("{set}/{file_name}"));

            let texts = qr_texts(&dir, &ex, "f-qr-code-numeric-value");
            let mut refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
            // Chunks may be scanned in any order (rule 37): feed them reversed.
            refs.reverse();
            let v = verifier.verify_qr_texts(&refs);
            if refs.len() > 1 {
                assert!(v
                    .problems
                    .iter()
                    .any(|p| p.kind == ProblemKind::QrChunkingDeprecated && !p.is_error()));
            }
            check("qr text", &v);
            ran_files.extend(
                texts
                    .iter()
                    .map(|(p, _)| format!("{set}/{}", p.file_name().unwrap().to_string_lossy())),
            );

            let pngs: Vec<Vec<u8>> = (0..10)
                .map(|k| dir.join(format!("{ex}-g-qr-code-{k}.png")))
                .take_while(|p| p.exists())
                .map(|p| {
                    ran_files.push(format!(
                        "{set}/{}",
                        p.file_name().unwrap().to_string_lossy()
                    ));
                    read_bytes(&p)
                })
                .collect();
            if !pngs.is_empty() {
                let imgs: Vec<&[u8]> = pngs.iter().map(Vec::as_slice).collect();
                check("qr image", &verifier.verify_qr_images(&imgs));
            }
        }
    }
    ran("every_example_set_decodes_and_verifies", &ran_files);
}

/// The Vaccination IG's scenarios (integer `nbf`, deprecated extra `vc.type`s that a v1.4
/// verifier ignores, rule 5) verify as JWS, file, QR text and QR image.
#[test]
fn vci_ig_scenarios_verify() {
    let dir = shc_examples().join("vci-ig");
    let jwks = Jwks::parse(&read(&shc_examples().join("issuer-jwks.public.json"))).unwrap();
    let mut files = Vec::new();
    for n in 1..=3 {
        let p = format!("Scenario{n}Bundle");
        let c = read(&dir.join(format!("{p}-jws-payload-minified.json")));
        let payload: serde_json::Value = serde_json::from_str(&c).unwrap();
        let mut trust = TrustStore::new();
        trust.add_issuer(payload["iss"].as_str().unwrap(), jwks.clone());
        trust
            .add_crl(&json(&shc_examples().join(
                "issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json",
            )))
            .unwrap();
        let verifier = Verifier::new(trust).at(payload["nbf"].as_f64().unwrap() + 60.0);
        let jws = read(&dir.join(format!("{p}-jws.txt")));
        assert_eq!(inflated_payload(&jws), c.as_bytes());
        let card = verifier.verify_jws(&jws);
        assert!(card.is_valid(), "{p}: {:?}", card.problems);
        let name = format!("{p}-file.smart-health-card");
        assert!(verifier
            .verify_file(&read(&dir.join(&name)), Some(&name))
            .is_valid());
        let text = read(&dir.join(format!("{p}-qr-code-numeric-value-0.txt")));
        assert!(verifier.verify_qr_texts(&[&text]).is_valid());
        let png = read_bytes(&dir.join(format!("{p}-qr-code-0.png")));
        let v = verifier.verify_qr_images(&[&png]);
        assert!(v.is_valid(), "{p} png: {:?}", v.problems);
        files.extend([
            format!("vci-ig/{p}-jws.txt"),
            format!("vci-ig/{name}"),
            format!("vci-ig/{p}-qr-code-0.png"),
        ]);
    }
    ran("vci_ig_scenarios_verify", &files);
}

/// Rule 9: from each `-a-` bundle and the claims of its `-c-` payload, the library builds a payload
/// byte-identical to `-c-`; minimizing a minimized bundle changes nothing.
#[test]
fn payload_reproduced_byte_for_byte() {
    let mut files = Vec::new();
    for set in SETS {
        let dir = set_dir(set);
        for ex in examples(set) {
            let c = read(&dir.join(format!("{ex}-c-jws-payload-minified.json")));
            let bundle = json(&dir.join(format!("{ex}-a-fhirBundle.json")));
            let claims = Claims::from_payload(&serde_json::from_str(&c).unwrap()).unwrap();
            let built = shc::payload::payload_bytes(&claims, &bundle).unwrap();
            assert_eq!(String::from_utf8(built).unwrap(), c, "{set}/{ex}");
            // hl7-ig example 02 is an International Patient Summary published un-minimized.
            if !(*set == "hl7-ig" && ex == "example-02") {
                let mut again = bundle.clone();
                shc::minimize::minimize_bundle(&mut again).unwrap();
                assert_eq!(
                    again, bundle,
                    "{set}/{ex}: minimizing a minimized bundle changed it"
                );
            }
            files.push(format!("{set}/{ex}-a-fhirBundle.json"));
        }
    }
    ran("payload_reproduced_byte_for_byte", &files);
}

/// Rules 10–16: the generator's un-minimized input becomes the `-a-` bundle. The generator drops
/// `meta` whole; vaxcred keeps `meta.security` (rule 11 allows it, rule 59 wants the IAL), so the
/// comparison removes it from vaxcred's output first.
#[test]
fn fixture_minimizes_to_example_bundle() {
    for (fixture, ex) in [
        ("fixture-covid-vaccines-bundle.json", "example-00"),
        ("fixture-revoked-bundle.json", "example-03"),
    ] {
        let mut bundle = json(&shc_examples().join(fixture));
        shc::minimize::minimize_bundle(&mut bundle).unwrap();
        let had_security = bundle["entry"][1]["resource"]["meta"]["security"].is_array();
        for e in bundle["entry"].as_array_mut().unwrap() {
            e["resource"].as_object_mut().unwrap().shift_remove("meta");
        }
        assert_eq!(
            bundle,
            json(&shc_examples().join(format!("{ex}-a-fhirBundle.json"))),
            "{fixture}"
        );
        assert!(
            had_security || fixture.contains("revoked"),
            "meta.security must survive minimization"
        );
    }
}

/// Rules 17–19: a card signed here from an example's bundle verifies with the published JWKS and
/// carries exactly the example's payload; the header is `{"zip":"DEF","alg":"ES256","kid":…}`.
#[test]
fn signing_with_example_key_round_trips() {
    let private = read(&shc_examples().join("issuer-jwks.private.TEST-ONLY.json"));
    let kid = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s";
    let signer = LocalSigner::from_json(&private, Some(kid)).unwrap();
    let mut issuer = CardIssuer::new(std::sync::Arc::new(signer));
    let c = read(&shc_examples().join("example-00-c-jws-payload-minified.json"));
    let claims = Claims::from_payload(&serde_json::from_str(&c).unwrap()).unwrap();
    let bundle = json(&shc_examples().join("example-00-a-fhirBundle.json"));
    let card = issuer.issue_minimized(&bundle, &claims).unwrap();
    assert_eq!(inflated_payload(&card.jws), c.as_bytes());
    let header = shc::jws::parse(&card.jws).unwrap().header;
    assert_eq!(
        serde_json::to_string(&header).unwrap(),
        format!(r#"{{"zip":"DEF","alg":"ES256","kid":"{kid}"}}"#)
    );
    assert_eq!(card.qr_text, qr::numeric_text(&card.jws).unwrap());
    let mut trust = TrustStore::new();
    trust.add_issuer(
        claims.iss.clone(),
        Jwks::parse(&read(&shc_examples().join("issuer-jwks.public.json"))).unwrap(),
    );
    trust
        .add_crl(&json(&shc_examples().join(
            "issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json",
        )))
        .unwrap();
    let report = Verifier::new(trust)
        .at(claims.nbf.as_f64() + 1.0)
        .verify_jws(&card.jws);
    assert!(report.is_valid(), "{:?}", report.problems);
}

/// Rule 35: the `-f-` text of every single-QR example is the numeric encoding of its `-d-` JWS;
/// chunked examples reassemble to the JWS in any order.
#[test]
fn qr_text_reproduced() {
    let mut files = Vec::new();
    for set in SETS {
        let dir = set_dir(set);
        for ex in examples(set) {
            let jws = read(&dir.join(format!("{ex}-d-jws.txt")));
            let texts = qr_texts(&dir, &ex, "f-qr-code-numeric-value");
            if texts.len() == 1 {
                assert_eq!(qr::numeric_text(&jws).unwrap(), texts[0].1, "{set}/{ex}");
            } else {
                let mut refs: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
                refs.rotate_left(1);
                assert_eq!(
                    qr::assemble(&refs).0.as_deref(),
                    Some(jws.as_str()),
                    "{set}/{ex}"
                );
            }
            files.extend(texts.iter().map(|(p, _)| p.display().to_string()));
        }
    }
    ran("qr_text_reproduced", &files);
}

/// Rules 34–36: every PNG QR image decodes to its numeric text; our own rendering of that text
/// decodes back to it and stays within version 22 at ECL L.
#[test]
fn qr_images_decode_to_their_text() {
    let mut files = Vec::new();
    let mut pairs = Vec::new();
    for set in [".", "spec-site"] {
        let dir = set_dir(set);
        for ex in examples(set) {
            for k in 0..10 {
                let png = dir.join(format!("{ex}-g-qr-code-{k}.png"));
                if !png.exists() {
                    break;
                }
                pairs.push((
                    png,
                    dir.join(format!("{ex}-f-qr-code-numeric-value-{k}.txt")),
                ));
            }
        }
    }
    for n in 1..=3 {
        let dir = shc_examples().join("vci-ig");
        pairs.push((
            dir.join(format!("Scenario{n}Bundle-qr-code-0.png")),
            dir.join(format!("Scenario{n}Bundle-qr-code-numeric-value-0.txt")),
        ));
    }
    for (png, txt) in pairs {
        let scans = qr::scan_image(&read_bytes(&png)).unwrap();
        assert_eq!(scans.len(), 1, "{}", png.display());
        let text = read(&txt);
        assert_eq!(
            scans[0].text.as_deref(),
            Some(text.as_str()),
            "{}",
            png.display()
        );
        assert!(
            scans[0].problems.iter().all(|p| !p.is_error()),
            "{}: {:?}",
            png.display(),
            scans[0].problems
        );
        if !text.starts_with("shc:/1/")
            && !text.starts_with("shc:/2/")
            && !text.starts_with("shc:/3/")
        {
            let code = qr::matrix(&text).unwrap();
            assert!(code.version().value() <= 22);
            let ours = qr::scan_image(&qr::to_png(&code, 4).unwrap()).unwrap();
            assert_eq!(ours[0].text.as_deref(), Some(text.as_str()));
            assert!(ours[0].problems.is_empty(), "{:?}", ours[0].problems);
            assert!(qr::to_svg(&code).starts_with("<svg"));
        }
        files.push(png.display().to_string());
    }
    ran("qr_images_decode_to_their_text", &files);
}

/// Rule 22: each published key's `kid` is its RFC 7638 thumbprint, and the keys conform.
#[test]
fn kid_recomputes() {
    for path in [
        shc_examples().join("issuer-jwks.public.json"),
        shc_examples().join("spec-site/issuer-jwks.public.json"),
    ] {
        let jwks = Jwks::parse(&read(&path)).unwrap();
        assert_eq!(jwks.keys.len(), 2);
        for key in &jwks.keys {
            let kid = thumbprint(key["x"].as_str().unwrap(), key["y"].as_str().unwrap());
            assert_eq!(key["kid"].as_str().unwrap(), kid);
            assert!(check_jwk(key).is_empty(), "{:?}", check_jwk(key));
        }
    }
    // The private set: the two signing keys import with the right kid; the ECDH key is skipped.
    let private = read(&shc_examples().join("issuer-jwks.private.TEST-ONLY.json"));
    for kid in [
        "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s",
        "EBKOr72QQDcTBUuVzAzkfBTGew0ZA16GuWty64nS-sw",
    ] {
        let signer = LocalSigner::from_json(&private, Some(kid)).unwrap();
        assert_eq!(shc::JwsSigner::kid(&signer), kid);
    }
}

/// Rule 28: every example `rid` recomputes from the published test secret, key 0's `kid` and the
/// generator's user id (`userid-NN`).
#[test]
fn rid_recomputes() {
    let secret = json(&shc_examples().join("issuer-rid-hmac-secret.TEST-ONLY.json"))["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s";
    let mut checked = Vec::new();
    for set in SETS {
        for ex in examples(set) {
            let c = json(&set_dir(set).join(format!("{ex}-c-jws-payload-minified.json")));
            if let Some(rid) = c["vc"]["rid"].as_str() {
                let n = ex.trim_start_matches("example-");
                assert_eq!(
                    shc::rid::derive(&secret, kid, &format!("userid-{n}")),
                    rid,
                    "{set}/{ex}"
                );
                checked.push(format!("{set}/{ex}"));
            }
        }
    }
    ran("rid_recomputes", &checked);
}

/// Rules 4, 32: example 03 is both revoked and, today, expired.
#[test]
fn example_03_is_revoked_and_expired_today() {
    let dir = set_dir("spec-site");
    let c = json(&dir.join("example-03-c-jws-payload-minified.json"));
    let v = Verifier::new(trust_for("spec-site", c["iss"].as_str().unwrap()));
    let report = v.verify_jws(&read(&dir.join("example-03-d-jws.txt")));
    assert!(report.revoked);
    assert!(report.has(ProblemKind::Expired));
    assert!(!report.is_valid());
    // Without the CRL the key's `crlVersion` cannot be honoured: that is an error, not a pass.
    let mut trust = TrustStore::new();
    trust.add_issuer(
        c["iss"].as_str().unwrap(),
        Jwks::parse(&read(&dir.join("issuer-jwks.public.json"))).unwrap(),
    );
    let r = Verifier::new(trust)
        .at(c["nbf"].as_f64().unwrap())
        .verify_jws(&read(&dir.join("example-00-d-jws.txt")));
    assert!(r.has(ProblemKind::Revocation) && !r.is_valid());
}
