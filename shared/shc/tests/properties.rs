//! Property tests: any bundle the generator makes → issue → verify gives back the same bundle
//! (rules 9, 17–19, 35), and the decoders never panic on arbitrary or mutated input (the fuzz
//! target of the SHC core: QR text, JWS, file, payload, images).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use serde_json::{json, Value};
use shc::keys::Jwks;
use shc::{qr, CardIssuer, Claims, JwsSigner as _, LocalSigner, TrustStore, Verifier};

const ISS: &str = "https://issuer.example.org/vaxcred";

fn signer() -> &'static LocalSigner {
    static KEY: OnceLock<LocalSigner> = OnceLock::new();
    KEY.get_or_init(LocalSigner::generate)
}

fn verifier() -> Verifier {
    let mut trust = TrustStore::new();
    trust.add_issuer(ISS, Jwks::from_public(&[signer().public_jwk().clone()]));
    Verifier::new(trust)
}

fn name_part() -> impl Strategy<Value = String> {
    // Letters from several scripts, apostrophes, hyphens, quotes and backslashes: escaping matters.
    proptest::string::string_regex("[A-Za-zÀ-ÿ'\\-\" \\\\一-龥]{1,20}").unwrap()
}

fn date() -> impl Strategy<Value = String> {
    (1900u32..2030, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

fn immunization() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["207", "208", "210", "212", "213", "229", "300", "521"]),
        date(),
        proptest::option::of("[A-Z0-9]{4,12}"),
        proptest::option::of(name_part()),
        any::<bool>(),
    )
        .prop_map(|(code, date, lot, performer, subpotent)| {
            let mut r = serde_json::Map::new();
            r.insert("resourceType".into(), json!("Immunization"));
            r.insert("status".into(), json!("completed"));
            r.insert(
                "vaccineCode".into(),
                json!({"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":code}]}),
            );
            r.insert("patient".into(), json!({"reference":"resource:0"}));
            r.insert("occurrenceDateTime".into(), json!(date));
            if let Some(p) = performer {
                r.insert("performer".into(), json!([{"actor":{"display":p}}]));
            }
            if let Some(l) = lot {
                r.insert("lotNumber".into(), json!(l));
            }
            if subpotent {
                r.insert("isSubpotent".into(), json!(true));
            }
            Value::Object(r)
        })
}

fn bundle() -> impl Strategy<Value = Value> {
    (name_part(), prop::collection::vec(name_part(), 1..3), date(), prop::collection::vec(immunization(), 1..6)).prop_map(
        |(family, given, birth, imms)| {
            let mut entries = vec![json!({"fullUrl":"resource:0","resource":{"resourceType":"Patient","name":[{"family":family,"given":given}],"birthDate":birth}})];
            for (i, imm) in imms.into_iter().enumerate() {
                entries.push(json!({"fullUrl": format!("resource:{}", i + 1), "resource": imm}));
            }
            json!({"resourceType":"Bundle","type":"collection","entry":entries})
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn issue_then_verify_gives_back_the_bundle(bundle in bundle(), rid in proptest::option::of("[A-Za-z0-9_-]{11}")) {
        let mut issuer = CardIssuer::new(Arc::new(signer().clone()));
        let mut claims = Claims::new(ISS);
        claims.rid = rid;
        let jws = issuer.sign_payload_of(&bundle, &claims).unwrap();
        let report = verifier().verify_jws(&jws);
        prop_assert!(report.signature_verified, "{:?}", report.problems);
        let payload = report.payload.unwrap();
        prop_assert_eq!(&payload["vc"]["credentialSubject"]["fhirBundle"], &bundle);
        prop_assert_eq!(payload["vc"]["rid"].as_str(), claims.rid.as_deref());
        let parsed = shc::jws::parse(&jws).unwrap();
        prop_assert_eq!(parsed.kid(), Some(signer().kid()));
        // Minimizing the generated (already minimal) bundle changes nothing.
        let mut again = bundle.clone();
        shc::minimize::minimize_bundle(&mut again).unwrap();
        prop_assert_eq!(&again, &bundle);
        // Whatever fits one QR round-trips through the numeric text; what does not is refused.
        match issuer.issue_minimized(&bundle, &claims) {
            Ok(card) => {
                let (back, problems) = qr::assemble(&[&card.qr_text]);
                prop_assert!(problems.is_empty());
                let back = back.unwrap();
                prop_assert!(verifier().verify_jws(&back).signature_verified);
            }
            Err(shc::Error::TooLargeForQr { jws_len, .. }) => prop_assert!(jws_len > shc::MAX_SINGLE_QR_JWS),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

fn sample_jws() -> &'static (String, String) {
    static CARD: OnceLock<(String, String)> = OnceLock::new();
    CARD.get_or_init(|| {
        let mut issuer = CardIssuer::new(Arc::new(signer().clone()));
        let bundle = json!({"resourceType":"Bundle","type":"collection","entry":[
            {"fullUrl":"resource:0","resource":{"resourceType":"Patient","name":[{"family":"Doe","given":["Jo"]}],"birthDate":"1970"}},
            {"fullUrl":"resource:1","resource":{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"207"}]},"patient":{"reference":"resource:0"},"occurrenceDateTime":"2021-01-01"}}]});
        let card = issuer.issue_minimized(&bundle, &Claims::new(ISS)).unwrap();
        (card.jws, card.qr_text)
    })
}

// Fuzz: the decoders over arbitrary bytes and over mutations of valid artefacts. They may reject,
// never panic. Case counts are printed by `cargo test -- --nocapture` through proptest's config.
proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let v = verifier();
        let _ = v.verify_bytes(&bytes, Some("x.smart-health-card"));
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = v.verify_jws(text);
            let _ = v.verify_file(text, None);
            let _ = v.verify_qr_texts(&[text]);
            let _ = qr::decode_text(text);
            let _ = shc::file::HealthCardFile::parse(text);
            let _ = shc::jws::parse(text);
        }
        let _ = shc::deflate::inflate_raw(&bytes, 1 << 16);
    }

    #[test]
    fn decoders_never_panic_on_mutated_artefacts(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (jws, text) = sample_jws();
        let v = verifier();
        for artefact in [jws.as_bytes(), text.as_bytes(), shc::file::HealthCardFile::single(jws.as_str()).to_json().into_bytes().leak()] {
            let mut m = artefact.to_vec();
            let i = pos.index(m.len());
            m[i] = byte;
            let _ = v.verify_bytes(&m, None);
            let truncated = &artefact[..cut.index(artefact.len())];
            let _ = v.verify_bytes(truncated, None);
        }
    }

    #[test]
    fn payload_checks_never_panic_on_arbitrary_json(value in arb_json()) {
        let _ = shc::check::check_payload(&value, 1.7e9);
        let _ = shc::check::check_bundle(&value);
        let wrapped = json!({"iss": ISS, "nbf": 1, "vc": {"type": [shc::HEALTH_CARD_TYPE], "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": value}}});
        let _ = shc::check::check_payload(&wrapped, 1.7e9);
        let mut b = json!({"resourceType":"Bundle","entry":[{"resource": value}]});
        let _ = shc::minimize::minimize_bundle(&mut b);
    }

    #[test]
    fn images_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(bytes);
        let _ = qr::scan_image(&png);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z:/0-9 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "resourceType",
                        "entry",
                        "resource",
                        "fullUrl",
                        "reference",
                        "coding",
                        "meta",
                        "security",
                        "text",
                        "display",
                        "system",
                        "code",
                        "status",
                        "occurrenceDateTime",
                        "patient",
                        "id"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
