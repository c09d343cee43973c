//! The HL7 IG's SHL vectors (shl-examples/, top level): payloads, links, JWE files, manifest.
//! The QR PNGs there (`IPS_IG-bundle-01-shl.png`, `CARIN_INS_CD-shl.png`) are not decoded here:
//! QR belongs to the `shc` crate; their text is the `*-shl.txt` files parsed below.

use serde_json::Value;
use shl::{decrypt, ContentType, Error, FileStatus, Manifest, ShlKey, ShlLink, ShlPayload};

use crate::helpers::{read_bytes, read_json, read_text, HL7_KEY};

fn payload_of(value: &Value) -> ShlPayload {
    ShlPayload::from_json(serde_json::to_string(value).unwrap().as_bytes()).unwrap()
}

/// Q.88, Q.91: the spec text's JWE decrypts to the published card file byte for byte.
#[test]
fn spec_example_jwe_decrypts_to_the_published_card_file() {
    let payload = ShlPayload::from_json(&read_bytes("spec-example-payload.json")).unwrap();
    let jwe = read_text("spec-example-file-jwe.txt");
    let file = decrypt(payload.key(), &jwe).unwrap();
    let expected = read_bytes("../shc-examples/spec-site/example-00-e-file.smart-health-card");
    assert_eq!(file.plaintext, expected);
    assert_eq!(
        file.content_type.as_deref(),
        Some("application/smart-health-card")
    );
    assert_eq!(file.kid, None);
    assert!(!file.compressed);
}

/// Q.91, S: the IPS example has no `cty` and an extra `kid` (the key's oct-JWK thumbprint).
#[test]
fn ips_example_without_cty_and_with_kid_decrypts_exactly() {
    let payload = ShlPayload::from_json(&read_bytes("shl-payload-2.json")).unwrap();
    assert_eq!(payload.key().to_base64url(), HL7_KEY);
    let file = decrypt(payload.key(), &read_text("IPS_IG-bundle-01-enc.txt")).unwrap();
    let expected = read_bytes("IPS_IG-bundle-01.json");
    assert_eq!(file.plaintext.len(), 60_973);
    assert_eq!(file.plaintext, expected);
    assert_eq!(file.content_type, None);
    assert_eq!(
        file.kid.as_deref(),
        Some(payload.key().thumbprint().as_str())
    );
    assert_eq!(
        file.kid.as_deref(),
        Some("ufYGlu_C8IuzJ3HV-wQqsIv-pMm2uZm-vGy37r3hwts")
    );
    let bundle: Value = serde_json::from_slice(&file.plaintext).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
}

/// Q.88: the same file with a wrong key fails authentication, typed.
#[test]
fn wrong_key_is_a_typed_decryption_failure() {
    let jwe = read_text("spec-example-file-jwe.txt");
    let err = decrypt(&ShlKey::from_bytes([0; 32]), &jwe).unwrap_err();
    assert_eq!(err, Error::DecryptionFailed);
    assert_eq!(err.code(), "jwe-decryption-failed");
}

/// N.72, N.74: the spec's payload, `shlink:/` and viewer link agree; our encoder writes the same
/// members in the same order (plus the explicit `"v":1`).
#[test]
fn spec_example_payload_and_links() {
    let raw = read_text("spec-example-payload.json");
    let payload = ShlPayload::from_json(raw.as_bytes()).unwrap();
    assert_eq!(
        payload.url(),
        "https://ehr.example.org/qr/Y9xwkUdtmN9wwoJoN3ffJIhX2UGvCL1JnlPVNL3kDWM/m"
    );
    assert_eq!(payload.flags().as_wire(), "LP");
    assert!(payload.flags().long_term() && payload.flags().passcode());
    assert!(!payload.flags().direct_file());
    assert_eq!(payload.key().to_base64url(), HL7_KEY);
    assert_eq!(
        payload.label(),
        Some("Back-to-school immunizations for Oliver Brown")
    );
    assert_eq!(payload.exp(), None);
    assert_eq!(payload.version(), 1);

    let shlink = read_text("spec-example-shlink.txt");
    let bare = ShlLink::parse(&shlink).unwrap();
    assert_eq!(bare.viewer(), None);
    assert_eq!(bare.payload(), &payload);

    let viewer = read_text("spec-example-viewer-link.txt");
    let behind = ShlLink::parse(&viewer).unwrap();
    assert_eq!(behind.viewer(), Some("https://viewer.example.org"));
    assert_eq!(behind.payload(), &payload);

    let built = ShlPayload::builder(payload.url(), payload.key().clone())
        .long_term(true)
        .passcode(true)
        .label(payload.label().unwrap())
        .build()
        .unwrap();
    assert_eq!(built, payload);
    let expected_json = format!("{},\"v\":1}}", raw.strip_suffix('}').unwrap());
    assert_eq!(built.to_json(), expected_json);
    assert_eq!(
        built.to_viewer_link("https://viewer.example.org#").unwrap(),
        format!("https://viewer.example.org#{}", built.to_shlink())
    );
}

/// N.75, S: `exp` as a string of milliseconds is normalised; `labelzzz` is ignored.
#[test]
fn hl7_payload_1_is_parsed_leniently() {
    let payload = ShlPayload::from_json(&read_bytes("shl-payload-1.json")).unwrap();
    assert_eq!(payload.exp(), Some(1_767_225_600));
    assert_eq!(payload.label(), None);
    assert_eq!(payload.version(), 1);
    assert_eq!(payload.flags().as_wire(), "LP");
    assert_eq!(payload.key().to_base64url(), HL7_KEY);
    // Re-encoded, it carries seconds as a JSON number.
    let reencoded: Value = serde_json::from_str(&payload.to_json()).unwrap();
    assert_eq!(reencoded["exp"], 1_767_225_600_u64);
}

/// N.72, N.74: the IPS and CARIN `U` links (behind viewer.tcpdev.org) and their details files.
#[test]
fn ips_and_carin_links_parse_to_their_published_payloads() {
    let viewer = "https://viewer.tcpdev.org/shlink.html";

    let ips = ShlLink::parse(&read_text("IPS_IG-bundle-01-shl.txt")).unwrap();
    assert_eq!(ips.viewer(), Some(viewer));
    let p2 = ShlPayload::from_json(&read_bytes("shl-payload-2.json")).unwrap();
    assert_eq!(ips.payload(), &p2);
    assert_eq!(p2.flags().as_wire(), "LU");
    assert_eq!(p2.label(), Some("Demo SHL for IPS_IG-bundle-01"));
    assert!(p2.url().ends_with("/ips/IPS_IG-bundle-01-enc.txt"));

    let details = read_json("IPS_IG-bundle-01-shl-details.json");
    assert_eq!(payload_of(&details["shlinkJsonPayload"]), p2);
    // The details file swaps the names: `shlink` is the bare one, `shlinkBare` has the viewer.
    let bare = ShlLink::parse(details["shlink"].as_str().unwrap()).unwrap();
    assert_eq!(bare.viewer(), None);
    assert_eq!(bare.payload(), &p2);
    let with_viewer = ShlLink::parse(details["shlinkBare"].as_str().unwrap()).unwrap();
    assert_eq!(with_viewer.viewer(), Some(viewer));
    assert_eq!(with_viewer.payload(), &p2);

    let carin = ShlLink::parse(&read_text("CARIN_INS_CD-bundle-01-shl.txt")).unwrap();
    assert_eq!(carin.viewer(), Some(viewer));
    let carin_details = payload_of(&read_json("CARIN_INS_CD-bundle-01-shl-details.json"));
    assert_eq!(carin.payload(), &carin_details);
    assert_eq!(carin_details.flags().as_wire(), "LU");
    assert_eq!(
        carin_details.label(),
        Some("Demo SHL for carin-insurance-example")
    );
}

/// O.82, S: the HL7 manifest example parses, round-trips, and its truncated `embedded` JWE is
/// a typed error, not a panic.
#[test]
fn hl7_manifest_example_parses_and_round_trips() {
    let raw = read_bytes("shl-manifest-1.json");
    let manifest = Manifest::parse(&raw).unwrap();
    assert_eq!(manifest.list, None);
    let [a, b, c] = manifest.files.as_slice() else {
        panic!("expected three files");
    };
    assert_eq!(a.content_type, ContentType::SmartHealthCard);
    assert!(a
        .location
        .as_deref()
        .unwrap()
        .starts_with("https://bucket.cloud.example.org/file1"));
    assert_eq!(a.embedded, None);
    assert_eq!(b.content_type, ContentType::SmartHealthCard);
    assert_eq!(b.location, None);
    assert_eq!(c.content_type, ContentType::FhirJson);
    assert_eq!(c.last_updated.as_deref(), Some("2025-03-09T15:29:46Z"));
    assert_eq!(c.status, Some(FileStatus::Finalized));
    assert_eq!(c.fhir_version.as_deref(), Some("4.0.1"));

    let original: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(serde_json::to_value(&manifest).unwrap(), original);

    let key = ShlKey::from_base64url(HL7_KEY).unwrap();
    let err = decrypt(&key, b.embedded.as_deref().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::MalformedJwe { .. }),
        "truncated JWE: {err:?}"
    );
}

/// O.82: a file with neither `location` nor `embedded` is refused; unknown types are kept.
#[test]
fn manifest_file_rules() {
    let err =
        Manifest::parse(br#"{"files":[{"contentType":"application/fhir+json"}]}"#).unwrap_err();
    assert_eq!(err.code(), "shl-invalid-manifest");
    let m = Manifest::parse(
        br#"{"files":[{"contentType":"text/x-new","embedded":"e","status":"later","x":1}],"y":2}"#,
    )
    .unwrap();
    let [f] = m.files.as_slice() else {
        panic!("one file")
    };
    assert_eq!(f.content_type, ContentType::Other("text/x-new".into()));
    assert_eq!(f.status, Some(FileStatus::Other("later".into())));
    assert!(Manifest::parse(br#"{"files":[]}"#)
        .unwrap()
        .files
        .is_empty());
    assert!(Manifest::parse(br#"{}"#).is_err());
}
