//! `x5c` certificate chain checks (rule 23) against the official validator's vectors
//! (`../shared/conformance/shc-examples/dev-tools/`) and the spec's published example JWKS.
//!
//! Validity periods of the chains, read from the certificates (they explain the chosen dates):
//! - `valid_key_with_x5c.json` (3 certs: P-256 leaf, P-384 CA, P-521 root, all ecdsa-with-SHA256):
//!   2021-03-29 16:00:45 → 2031-03-27 16:00:45 UTC for each certificate.
//! - `valid_2_chain.public.json` (P-256 leaf, P-521 root, SHA-256): 2021-03-30 19:25:27 →
//!   2031-03-28 19:25:27 UTC. The same period holds for the negative vectors' certificates.
//! - `issuer-jwks.public.json` key `EBKOr72…` (leaf signed ecdsa-with-SHA384 by a P-384 CA, CA
//!   signed ecdsa-with-SHA512 by a P-521 root): leaf 2021-06-01 15:50:09 → 2022-06-01 15:50:09,
//!   CA → 2026-05-31 15:50:09, root → 2031-05-30 15:50:08 UTC. So the spec's example chain is
//!   expired today (spec-checklist §R), while the dev-tools "valid" chains are still valid until 2031.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a missing or malformed vector must fail loudly"
)]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use shc::x5c::check_x5c;
use shc::{Problem, ProblemKind, Severity};

const DEV_TOOLS_ISS: &str = "https://smarthealth.cards/examples/issuer";
const SPEC_ISS: &str = "https://spec.smarthealth.cards/examples/issuer";
/// 2022-05-31T00:00:00Z, the date the validator's tests check the x5c vectors at.
const MAY_31_2022: i64 = 1_653_955_200;
/// 2026-11-26T00:00:00Z: after the spec example's CA expired, before the dev-tools chains do.
const NOV_26_2026: i64 = 1_795_651_200;
/// 2032-01-01T00:00:00Z: after every chain here has expired.
const JAN_1_2032: i64 = 1_956_528_000;
/// 2021-01-01T00:00:00Z: before any certificate here was valid.
const JAN_1_2021: i64 = 1_609_459_200;

fn shc_examples() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance"
    ));
    assert!(
        dir.join("shc-examples/dev-tools").is_dir(),
        "conformance vectors not found at {}: they live in ../shared/conformance beside the \
         repository, and these tests cannot run without them",
        dir.display()
    );
    dir.join("shc-examples")
}

/// The one JWK of a dev-tools file, whether stored bare or as a one-key JWKS.
fn dev_tools_key(name: &str) -> Value {
    let path = shc_examples().join("dev-tools").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).unwrap();
    match value.get("keys") {
        Some(keys) => {
            let keys = keys.as_array().unwrap();
            assert_eq!(keys.len(), 1, "{name} should hold one key");
            keys[0].clone()
        }
        None => value,
    }
}

fn spec_example_key() -> Value {
    let text = std::fs::read_to_string(shc_examples().join("issuer-jwks.public.json")).unwrap();
    let jwks: Value = serde_json::from_str(&text).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "EBKOr72QQDcTBUuVzAzkfBTGew0ZA16GuWty64nS-sw")
        .expect("the spec example JWKS holds key EBKOr72…")
        .clone()
}

fn assert_clean(problems: &[Problem], what: &str) {
    assert!(
        problems.is_empty(),
        "{what}: unexpected problems {problems:#?}"
    );
}

/// Every problem is an `x5c` error, and at least one mentions `needle`.
fn assert_x5c_error(problems: &[Problem], needle: &str, what: &str) {
    assert!(
        !problems.is_empty(),
        "{what}: expected an x5c problem, got none"
    );
    for p in problems {
        assert_eq!(p.kind, ProblemKind::InvalidKeyX5c, "{what}: {p}");
        assert_eq!(p.severity, Severity::Error, "{what}: {p}");
        assert!(
            p.detail.contains("rule") || p.detail.contains("RFC 5280"),
            "{what}: {p}"
        );
    }
    assert!(
        problems.iter().any(|p| p.detail.contains(needle)),
        "{what}: no problem mentions {needle:?}: {problems:#?}"
    );
}

fn count_containing(problems: &[Problem], needle: &str) -> usize {
    problems
        .iter()
        .filter(|p| p.detail.contains(needle))
        .count()
}

#[test]
fn dev_tools_valid_chains_pass_at_2022_05_31() {
    for name in ["valid_key_with_x5c.json", "valid_2_chain.public.json"] {
        let jwk = dev_tools_key(name);
        assert_clean(&check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022), name);
        // Without an `iss` there is no SAN to compare, and the rest still holds.
        assert_clean(&check_x5c(&jwk, None, MAY_31_2022), name);
        // The key itself conforms to rule 22 too.
        assert_clean(&shc::keys::check_jwk(&jwk), name);
    }
}

#[test]
fn dev_tools_valid_chains_are_still_valid_today_and_expire_in_2031() {
    for (name, certs) in [
        ("valid_key_with_x5c.json", 3),
        ("valid_2_chain.public.json", 2),
    ] {
        let jwk = dev_tools_key(name);
        // Contrary to the conformance README's "they have since expired": notAfter is in 2031.
        assert_clean(&check_x5c(&jwk, Some(DEV_TOOLS_ISS), NOV_26_2026), name);

        let later = check_x5c(&jwk, Some(DEV_TOOLS_ISS), JAN_1_2032);
        assert_x5c_error(&later, "expired", name);
        assert_eq!(
            count_containing(&later, "expired"),
            certs,
            "{name}: {later:#?}"
        );
        assert_eq!(
            later.len(),
            certs,
            "{name}: only expiry problems expected: {later:#?}"
        );

        let earlier = check_x5c(&jwk, Some(DEV_TOOLS_ISS), JAN_1_2021);
        assert_x5c_error(&earlier, "not yet valid", name);
        assert_eq!(earlier.len(), certs, "{name}: {earlier:#?}");
    }
}

#[test]
fn expiry_problem_names_the_certificate_and_date() {
    let jwk = dev_tools_key("valid_2_chain.public.json");
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), JAN_1_2032);
    assert!(
        problems.iter().any(|p| p
            .detail
            .starts_with("x5c[0] certificate expired (notAfter 2031-03-28)")),
        "{problems:#?}"
    );
}

#[test]
fn cert_mismatch_fails_on_the_leaf_key() {
    let jwk = dev_tools_key("cert_mismatch.public.json");
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "does not match the JWK", "cert_mismatch");
    assert_eq!(
        problems.len(),
        1,
        "only the leaf key is wrong: {problems:#?}"
    );
}

#[test]
fn dns_san_fails() {
    let jwk = dev_tools_key("invalid_DNS_SAN.public.json");
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(
        &problems,
        "SubjectAltName has no uniformResourceIdentifier",
        "DNS SAN",
    );
    assert_eq!(problems.len(), 1, "only the SAN is wrong: {problems:#?}");
}

#[test]
fn missing_san_fails() {
    let jwk = dev_tools_key("invalid_no_SAN.public.json");
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "has no SubjectAltName", "no SAN");
    assert_eq!(problems.len(), 1, "only the SAN is wrong: {problems:#?}");
}

#[test]
fn san_uri_must_equal_iss() {
    let jwk = dev_tools_key("valid_2_chain.public.json");
    // `iss` is compared as an exact string (spec-checklist §R.2): a trailing slash or another host
    // is another issuer.
    for iss in [
        "https://smarthealth.cards/examples/issuer/",
        "https://spec.smarthealth.cards/examples/issuer",
        "https://SMARTHEALTH.cards/examples/issuer",
    ] {
        let problems = check_x5c(&jwk, Some(iss), MAY_31_2022);
        assert_x5c_error(&problems, "does not match `iss`", iss);
    }
}

#[test]
fn invalid_chain_fails_on_the_chain() {
    let jwk = dev_tools_key("invalid_chain.public.json");
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "the chain is broken", "invalid_chain");
    // The leaf is not signed by the intermediate; everything else (key, SAN, dates) is fine.
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0]
        .detail
        .starts_with("x5c[0] is not signed by the key of x5c[1]"));
}

#[test]
fn spec_example_key_chain_valid_in_2022_and_expired_since() {
    let jwk = spec_example_key();
    // Inside every certificate's validity (the leaf's ran 2021-06-01 → 2022-06-01).
    assert_clean(
        &check_x5c(&jwk, Some(SPEC_ISS), MAY_31_2022),
        "EBKOr72 in 2022",
    );
    // The certificates name the spec site as issuer, not the older smarthealth.cards address.
    assert_x5c_error(
        &check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022),
        "does not match `iss`",
        "EBKOr72 with the old iss",
    );
    // Today both the leaf and the intermediate CA (notAfter 2026-05-31) have expired; the root
    // (notAfter 2031-05-30) has not.
    let today = check_x5c(&jwk, Some(SPEC_ISS), NOV_26_2026);
    assert_x5c_error(&today, "expired", "EBKOr72 today");
    assert_eq!(today.len(), 2, "{today:#?}");
    assert_eq!(
        count_containing(&today, "x5c[0] certificate expired (notAfter 2022-06-01)"),
        1
    );
    assert_eq!(
        count_containing(&today, "x5c[1] certificate expired (notAfter 2026-05-31)"),
        1
    );
}

#[test]
fn keys_without_x5c_have_no_x5c_problems() {
    for name in [
        "valid_key.json",
        "wrong_kid_key.json",
        "wrong_curve_key.json",
    ] {
        assert_clean(
            &check_x5c(&dev_tools_key(name), Some(DEV_TOOLS_ISS), NOV_26_2026),
            name,
        );
    }
    let text = std::fs::read_to_string(shc_examples().join("issuer-jwks.public.json")).unwrap();
    let jwks: Value = serde_json::from_str(&text).unwrap();
    let plain = &jwks["keys"][0];
    assert!(plain.get("x5c").is_none());
    assert_clean(&check_x5c(plain, Some(SPEC_ISS), NOV_26_2026), "3Kfdg");
}

/// A copy of the valid 2-chain JWK with `x5c` replaced.
fn with_x5c(x5c: Value) -> Value {
    let mut jwk = dev_tools_key("valid_2_chain.public.json");
    jwk["x5c"] = x5c;
    jwk
}

fn x5c_strings(jwk: &Value) -> Vec<String> {
    jwk["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn malformed_x5c_shapes_are_reported() {
    let cases: [(Value, &str); 4] = [
        (Value::String("MIIB".into()), "must be an array"),
        (serde_json::json!([]), "is empty"),
        (serde_json::json!([42]), "x5c[0] is not a string"),
        (
            serde_json::json!(["not base64!"]),
            "x5c[0] is not valid standard base64",
        ),
    ];
    for (x5c, needle) in cases {
        let problems = check_x5c(&with_x5c(x5c), Some(DEV_TOOLS_ISS), MAY_31_2022);
        assert_x5c_error(&problems, needle, needle);
    }
}

#[test]
fn base64url_entries_are_rejected_as_such() {
    use base64::Engine as _;
    let valid = dev_tools_key("valid_2_chain.public.json");
    let url: Vec<Value> = x5c_strings(&valid)
        .iter()
        .map(|c| {
            let der = base64::engine::general_purpose::STANDARD.decode(c).unwrap();
            Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der))
        })
        .collect();
    let problems = check_x5c(
        &with_x5c(Value::Array(url)),
        Some(DEV_TOOLS_ISS),
        MAY_31_2022,
    );
    assert_x5c_error(&problems, "x5c[0] is base64url", "base64url x5c");
}

#[test]
fn missing_root_or_wrong_order_breaks_the_chain() {
    let certs = x5c_strings(&dev_tools_key("valid_key_with_x5c.json"));
    let mut jwk = dev_tools_key("valid_key_with_x5c.json");

    // Leaf + intermediate only: the intermediate is not self-signed.
    jwk["x5c"] = serde_json::json!([certs[0], certs[1]]);
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "is not self-signed", "no root");
    assert_eq!(problems.len(), 1, "{problems:#?}");

    // Leaf + root, skipping the intermediate: the leaf is not signed by the root.
    jwk["x5c"] = serde_json::json!([certs[0], certs[2]]);
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(
        &problems,
        "x5c[0] is not signed by the key of x5c[1]",
        "skipped CA",
    );

    // Root first: the leaf is no longer first, and nothing links.
    jwk["x5c"] = serde_json::json!([certs[2], certs[1], certs[0]]);
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "the chain is broken", "reversed");
    assert!(
        count_containing(&problems, "does not match the JWK") >= 1
            || count_containing(&problems, "not EC P-256") >= 1
    );

    // Leaf alone: not self-signed.
    jwk["x5c"] = serde_json::json!([certs[0]]);
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(&problems, "is not self-signed", "leaf alone");
}

#[test]
fn trailing_bytes_and_truncation_are_reported() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let certs = x5c_strings(&dev_tools_key("valid_2_chain.public.json"));
    let leaf = engine.decode(&certs[0]).unwrap();

    let mut padded = leaf.clone();
    padded.extend_from_slice(&[0, 0]);
    let problems = check_x5c(
        &with_x5c(serde_json::json!([engine.encode(&padded), certs[1]])),
        Some(DEV_TOOLS_ISS),
        MAY_31_2022,
    );
    assert_x5c_error(
        &problems,
        "bytes after the DER certificate",
        "trailing bytes",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");

    let truncated = &leaf[..leaf.len() - 10];
    let problems = check_x5c(
        &with_x5c(serde_json::json!([engine.encode(truncated), certs[1]])),
        Some(DEV_TOOLS_ISS),
        MAY_31_2022,
    );
    assert_x5c_error(
        &problems,
        "x5c[0] is not a DER-encoded X.509 certificate",
        "truncated",
    );
}

#[test]
fn a_flipped_signature_bit_breaks_the_chain() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let certs = x5c_strings(&dev_tools_key("valid_key_with_x5c.json"));
    let mut ca = engine.decode(&certs[1]).unwrap();
    // The signature is the certificate's last element; its final byte is the low byte of `s`.
    let last = ca.len() - 1;
    ca[last] ^= 1;
    let mut jwk = dev_tools_key("valid_key_with_x5c.json");
    jwk["x5c"] = serde_json::json!([certs[0], engine.encode(&ca), certs[2]]);
    let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), MAY_31_2022);
    assert_x5c_error(
        &problems,
        "x5c[1] is not signed by the key of x5c[2]",
        "flipped bit",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
}

#[test]
fn problems_carry_no_certificate_contents() {
    let mut all = Vec::new();
    for name in [
        "cert_mismatch.public.json",
        "invalid_DNS_SAN.public.json",
        "invalid_no_SAN.public.json",
        "invalid_chain.public.json",
        "valid_key_with_x5c.json",
    ] {
        all.extend(check_x5c(
            &dev_tools_key(name),
            Some("https://elsewhere.example/iss"),
            JAN_1_2032,
        ));
    }
    assert!(!all.is_empty());
    for p in &all {
        for secret in [
            "SMART Health Card",
            "smarthealth.cards",
            "elsewhere.example",
            "MII",
        ] {
            assert!(!p.detail.contains(secret), "problem echoes {secret:?}: {p}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes as certificates never panic and are always reported.
    #[test]
    fn arbitrary_entries_never_panic(
        entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 1..4),
        at in any::<i64>(),
    ) {
        use base64::Engine as _;
        let x5c: Vec<Value> = entries
            .iter()
            .map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
            .collect();
        let problems = check_x5c(&with_x5c(Value::Array(x5c)), Some(DEV_TOOLS_ISS), at);
        prop_assert!(problems.iter().any(Problem::is_error));
        prop_assert!(problems.iter().all(|p| p.kind == ProblemKind::InvalidKeyX5c));
    }

    /// A real certificate with a few bytes changed (so the parser goes deep) never panics.
    #[test]
    fn mutated_certificates_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        which in 0usize..3,
        at in any::<i64>(),
    ) {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut certs = x5c_strings(&dev_tools_key("valid_key_with_x5c.json"));
        let mut der = engine.decode(&certs[which]).unwrap();
        for (index, byte) in &edits {
            let i = index.index(der.len());
            der[i] = *byte;
        }
        certs[which] = engine.encode(&der);
        let mut jwk = dev_tools_key("valid_key_with_x5c.json");
        jwk["x5c"] = serde_json::json!(certs);
        let problems = check_x5c(&jwk, Some(DEV_TOOLS_ISS), at);
        prop_assert!(problems.iter().all(|p| p.kind == ProblemKind::InvalidKeyX5c));
    }
}
