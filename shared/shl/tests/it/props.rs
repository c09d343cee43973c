//! Property tests: payload and JWE round trips, IV uniqueness, tamper detection, and decoders
//! that never panic on arbitrary input.

use std::collections::HashSet;

use proptest::prelude::*;
use shl::payload::MS_THRESHOLD;
use shl::{
    decrypt, encrypt, EncryptOptions, Error, Manifest, ManifestRequest, ShlKey, ShlLink, ShlPayload,
};

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn payload_strategy() -> impl Strategy<Value = ShlPayload> {
    (
        "[a-zA-Z0-9:/._~%?=&-]{1,40}\\PC{0,20}",
        any::<[u8; 32]>(),
        proptest::option::of(0..MS_THRESHOLD),
        any::<(bool, bool, bool)>(),
        proptest::option::of("\\PC{0,80}"),
    )
        .prop_filter_map("valid payload", |(url, key, exp, (l, p, u), label)| {
            let mut b = ShlPayload::builder(url, ShlKey::from_bytes(key))
                .long_term(l)
                .passcode(p)
                .direct_file(u && !p);
            if let Some(e) = exp {
                b = b.exp(e);
            }
            if let Some(label) = label {
                b = b.label(label);
            }
            b.build().ok()
        })
}

/// Flips one base64url character, inserts one, or deletes one in segment `seg`.
fn tamper(jwe: &str, seg: usize, pos: usize, op: u8, shift: usize) -> String {
    let mut segments: Vec<Vec<u8>> = jwe.split('.').map(|s| s.as_bytes().to_vec()).collect();
    let s = &mut segments[seg];
    let op = if s.is_empty() { 1 } else { op % 3 };
    match op {
        0 => {
            let i = pos % s.len();
            let at = B64URL.iter().position(|&c| c == s[i]).unwrap();
            s[i] = B64URL[(at + 1 + shift % 63) % 64];
        }
        1 => {
            let i = pos % (s.len() + 1);
            s.insert(i, B64URL[shift % 64]);
        }
        _ => {
            s.remove(pos % s.len());
        }
    }
    let parts: Vec<String> = segments
        .into_iter()
        .map(|s| String::from_utf8(s).unwrap())
        .collect();
    parts.join(".")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// N.72, N.74: build → `shlink:/` (bare and behind a viewer) → parse gives the same payload.
    #[test]
    fn payload_round_trips_through_links(payload in payload_strategy()) {
        let bare = ShlLink::parse(&payload.to_shlink()).unwrap();
        prop_assert_eq!(bare.payload(), &payload);
        prop_assert_eq!(bare.viewer(), None);
        let link = payload.to_viewer_link("https://viewer.example.org/v").unwrap();
        let parsed = ShlLink::parse(&link).unwrap();
        prop_assert_eq!(parsed.payload(), &payload);
        prop_assert_eq!(parsed.viewer(), Some("https://viewer.example.org/v"));
        let flags = payload.flags().as_wire();
        let mut sorted: Vec<char> = flags.chars().collect();
        sorted.sort_unstable();
        prop_assert_eq!(sorted.into_iter().collect::<String>(), flags);
    }

    /// Q.88, Q.89: encrypt → decrypt returns the plaintext and header, with or without zip.
    #[test]
    fn jwe_round_trips(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        key in any::<[u8; 32]>(),
        zip in any::<bool>(),
        kid in any::<bool>(),
        cty in "[a-z]{1,12}/[a-z+.-]{1,24}",
    ) {
        let key = ShlKey::from_bytes(key);
        let jwe = encrypt(&key, &plaintext, &EncryptOptions::new(cty.clone()).compress(zip).kid(kid)).unwrap();
        prop_assert_eq!(jwe.split('.').nth(1), Some(""));
        let out = decrypt(&key, &jwe).unwrap();
        prop_assert_eq!(&out.plaintext, &plaintext);
        prop_assert_eq!(out.content_type, Some(cty));
        prop_assert_eq!(out.compressed, zip);
        prop_assert_eq!(out.kid.is_some(), kid);
    }

    /// Q.88: changing any character of any segment is detected, never a panic.
    #[test]
    fn tampering_any_segment_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        zip in any::<bool>(),
        seg in 0usize..5,
        pos in any::<usize>(),
        op in any::<u8>(),
        shift in any::<usize>(),
    ) {
        let key = ShlKey::from_bytes([42; 32]);
        let jwe = encrypt(&key, &plaintext, &EncryptOptions::new("application/smart-health-card").compress(zip)).unwrap();
        let bad = tamper(&jwe, seg, pos, op, shift);
        prop_assert_ne!(&bad, &jwe);
        prop_assert!(decrypt(&key, &bad).is_err());
    }

    /// No decoder panics on arbitrary text.
    #[test]
    fn decoders_never_panic_on_arbitrary_strings(s in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = ShlKey::from_bytes([1; 32]);
        let _ = ShlLink::parse(&s);
        let _ = ShlLink::parse(&format!("shlink:/{s}"));
        let _ = ShlLink::parse(&format!("https://v.example#shlink:/{s}"));
        let _ = decrypt(&key, &s);
        let _ = ShlPayload::from_json(&bytes);
        let _ = ShlPayload::from_json(s.as_bytes());
        let _ = Manifest::parse(&bytes);
        let _ = ManifestRequest::parse(&bytes);
        let _ = ShlKey::from_base64url(&s);
        let _ = shl::Flags::parse(&s);
    }

    /// No panic on JWE-shaped input: five base64url segments of any content, or a valid header
    /// with arbitrary iv/ciphertext/tag.
    #[test]
    fn decrypt_never_panics_on_jwe_shaped_input(
        segs in proptest::collection::vec("[A-Za-z0-9_-]{0,40}", 5),
        ct in "[A-Za-z0-9_-]{0,200}",
        zip in any::<bool>(),
    ) {
        let key = ShlKey::from_bytes([1; 32]);
        let _ = decrypt(&key, &segs.join("."));
        let header = if zip {
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiemlwIjoiREVGIn0"
        } else {
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"
        };
        let _ = decrypt(&key, &format!("{header}..{}.{ct}.{}", segs[0], segs[1]));
    }

    /// No panic on arbitrary JSON objects in a `shlink:/` payload.
    #[test]
    fn payload_parser_never_panics_on_json(value in arb_json()) {
        let json = serde_json::to_string(&value).unwrap();
        let _ = ShlPayload::from_json(json.as_bytes());
        let mut obj = serde_json::Map::new();
        obj.insert("url".into(), "https://x".into());
        obj.insert("key".into(), "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q".into());
        for field in ["exp", "flag", "label", "v"] {
            let mut o = obj.clone();
            o.insert(field.into(), value.clone());
            let _ = ShlPayload::from_object(&o);
        }
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Q.90: a fresh IV per encryption, even for the same key and plaintext.
#[test]
fn ivs_are_unique_across_encryptions() {
    let key = ShlKey::from_bytes([5; 32]);
    let options = EncryptOptions::new("application/smart-health-card");
    let mut ivs = HashSet::new();
    let mut ciphertexts = HashSet::new();
    for _ in 0..2000 {
        let jwe = encrypt(&key, b"same plaintext", &options).unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts[2].len(), 16, "96-bit IV");
        assert!(ivs.insert(parts[2].to_owned()), "IV reused");
        ciphertexts.insert(parts[3].to_owned());
    }
    assert_eq!(ciphertexts.len(), 2000);
}

/// Q.88: alg/enc/zip/crit and the encrypted-key segment are enforced with typed errors.
#[test]
fn header_rules_are_enforced() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let key = ShlKey::from_bytes([3; 32]);
    let good = encrypt(&key, b"x", &EncryptOptions::new("a/b")).unwrap();
    let rest = good.split_once("..").unwrap().1;
    let with_header = |h: &str| format!("{}..{rest}", URL_SAFE_NO_PAD.encode(h.as_bytes()));
    for (header, err) in [
        (r#"{"alg":"A256KW","enc":"A256GCM"}"#, Error::UnsupportedAlg),
        (r#"{"enc":"A256GCM"}"#, Error::UnsupportedAlg),
        (r#"{"alg":"dir","enc":"A128GCM"}"#, Error::UnsupportedEnc),
        (
            r#"{"alg":"dir","enc":"A256GCM","zip":"GZIP"}"#,
            Error::UnsupportedZip,
        ),
        (
            r#"{"alg":"dir","enc":"A256GCM","crit":["exp"]}"#,
            Error::UnsupportedCrit,
        ),
        (r#"[1]"#, Error::InvalidJson { what: "jwe header" }),
        // A valid header that is not the one authenticated: AAD mismatch.
        (r#"{"alg":"dir","enc":"A256GCM"}"#, Error::DecryptionFailed),
    ] {
        assert_eq!(
            decrypt(&key, &with_header(header)).unwrap_err(),
            err,
            "{header}"
        );
    }
    let (h, rest) = good.split_once("..").unwrap();
    assert_eq!(
        decrypt(&key, &format!("{h}.AAAA.{rest}")).unwrap_err(),
        Error::EncryptedKeyNotEmpty
    );
    assert_eq!(
        decrypt(&key, "a.b.c").unwrap_err(),
        Error::MalformedJwe {
            reason: "expected 5 segments"
        }
    );
    // Errors never echo input.
    let err = decrypt(&key, "secret-token.x.y.z.w").unwrap_err();
    assert!(!err.to_string().contains("secret"));
}
