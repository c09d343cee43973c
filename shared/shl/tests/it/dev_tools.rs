//! The SHL validator's test data (shl-examples/dev-tools/) replayed end to end: the `P` link's
//! passcode + manifest exchange against the mock server's stored state, and the `U` link's
//! direct file. Every decrypted file is checked down to the ES256 signatures of its cards.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use shl::{
    decrypt, ContentType, EmbedPolicy, Manifest, ManifestFile, ManifestRequest, PasscodeHasher,
    PasscodeOutcome, PasscodePolicy, ShlLink, ShlPayload,
};

use crate::helpers::{read_bytes, read_json, read_text};

const P_LINK_STATE: &str =
    "dev-tools/mock-server-links/ERn18l4lL3_5yPXMSzx3ZejyMM_XIeWeseXa3DXsJD0.json";
const U_LINK_STATE: &str =
    "dev-tools/mock-server-links/jvb42XYZTjY2BTZ2mcL6nozbTFT8Vs5G2_I-_IuxCZo.json";
const MOCK_BASE: &str = "http://localhost:8090";

/// Checks a decrypted `.smart-health-card` file: every JWS verifies with the SHC spec issuer key
/// and inflates to a VC holding a FHIR Bundle.
fn assert_is_signed_card_file(plaintext: &[u8]) -> usize {
    let file: Value = serde_json::from_slice(plaintext).unwrap();
    let jwks = read_json("../shc-examples/spec-site/issuer-jwks.public.json");
    let jwss = file["verifiableCredential"].as_array().unwrap();
    assert!(!jwss.is_empty());
    for jws in jwss {
        let jws = jws.as_str().unwrap();
        let [h, p, s] = jws.split('.').collect::<Vec<_>>()[..] else {
            panic!("JWS must have three segments")
        };
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["zip"], "DEF");
        let kid = header["kid"].as_str().unwrap();
        assert_eq!(kid, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s");
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let vk = VerifyingKey::from_sec1_bytes(&point).unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        vk.verify(format!("{h}.{p}").as_bytes(), &sig).unwrap();

        let compressed = URL_SAFE_NO_PAD.decode(p).unwrap();
        let mut out = vec![0u8; 64 * 1024];
        let n = libdeflater::Decompressor::new()
            .deflate_decompress(&compressed, &mut out)
            .unwrap();
        let claims: Value = serde_json::from_slice(&out[..n]).unwrap();
        assert!(claims["iss"].as_str().unwrap().starts_with("https://"));
        assert_eq!(
            claims["vc"]["credentialSubject"]["fhirBundle"]["resourceType"],
            "Bundle"
        );
    }
    jwss.len()
}

/// N.72, N.74, N.75: every dev-tools link and payload parses with the expected values.
#[test]
fn dev_tools_links_and_payloads_parse() {
    let link = ShlLink::parse(&read_text("dev-tools/shlink-link.txt")).unwrap();
    let p = link.payload();
    assert_eq!(link.viewer(), None);
    assert_eq!(
        p.url(),
        format!("{MOCK_BASE}/ERn18l4lL3_5yPXMSzx3ZejyMM_XIeWeseXa3DXsJD0")
    );
    assert_eq!(p.flags().as_wire(), "P");
    assert_eq!(p.exp(), Some(1_704_096_000));
    assert_eq!(p.label(), Some("Sample Set 1"));
    assert_eq!(
        p.key().to_base64url(),
        "v7SjEf2oC4nbbkrhJJ1VAsnp4QaAmrzwIVQtxGM7AIc"
    );
    assert_eq!(p.version(), 1);

    let payload = ShlPayload::from_json(&read_bytes("dev-tools/shlink-payload.txt")).unwrap();
    assert_eq!(&payload, p);
    let with_viewer = ShlLink::parse(&read_text("dev-tools/shlink-link-with-viewer.txt")).unwrap();
    assert_eq!(with_viewer.viewer(), Some("https://demo.vaxx.link/viewer"));
    assert_eq!(with_viewer.payload(), p);

    let direct = ShlLink::parse(&read_text("dev-tools/shlink-link-direct.txt")).unwrap();
    let d = direct.payload();
    assert_eq!(d.flags().as_wire(), "U");
    assert!(d.flags().direct_file() && !d.flags().passcode());
    assert_eq!(
        d.key().to_base64url(),
        "lQPSuLGFjSkce1i63hckW3L9u-F94ti1gE_QvqbJc_g"
    );
    assert_eq!(d.exp(), Some(1_704_096_000));
    let direct_payload =
        ShlPayload::from_json(&read_bytes("dev-tools/shlink-payload-direct.txt")).unwrap();
    assert_eq!(&direct_payload, d);
}

/// N.72–N.74: building the validator's `U` link from its fields reproduces it byte for byte
/// (same member order, explicit `"v":1`).
#[test]
fn builder_reproduces_the_direct_link_exactly() {
    let expected = read_text("dev-tools/shlink-link-direct.txt");
    let parsed = ShlLink::parse(&expected).unwrap().into_payload();
    let built = ShlPayload::builder(parsed.url(), parsed.key().clone())
        .direct_file(true)
        .label("Sample Set 1")
        .exp(1_704_096_000)
        .build()
        .unwrap();
    assert_eq!(built.to_shlink(), expected.trim());
    // The mock server stored the same link text.
    let state = read_json(U_LINK_STATE);
    assert_eq!(state["link"].as_str().unwrap(), built.to_shlink());
}

/// The mock server's state for the `P` link, turned into what our hosting would store.
struct Server {
    hasher: PasscodeHasher,
    passcode_hash: String,
    policy: PasscodePolicy,
    failures: u32,
    file_paths: Vec<String>,
    jwes: Vec<String>,
}

impl Server {
    fn from_mock_state(state: &Value) -> Self {
        // Cheap Argon2 cost: this test is about the exchange, not the hash strength.
        let hasher = PasscodeHasher::with_cost(1024, 1, 1).unwrap();
        let passcode_hash = hasher.hash(state["passcode"].as_str().unwrap()).unwrap();
        let policy = PasscodePolicy::default();
        let remaining = u32::try_from(state["attempts"].as_u64().unwrap()).unwrap();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        Self {
            hasher,
            passcode_hash,
            policy,
            failures: policy.max_attempts - remaining,
            file_paths: strings(&state["filePaths"]),
            jwes: strings(&state["jweFiles"]),
        }
    }

    /// `POST <manifest url>`: (status, body).
    fn post_manifest(&mut self, body: &[u8]) -> (u16, String) {
        let Ok(request) = ManifestRequest::parse(body) else {
            return (400, String::new());
        };
        let outcome = self
            .policy
            .check(
                &self.hasher,
                &self.passcode_hash,
                self.failures,
                request.passcode.as_deref(),
            )
            .unwrap();
        match outcome {
            PasscodeOutcome::Disabled => (404, String::new()),
            PasscodeOutcome::Rejected {
                counts_as_failure, ..
            } => {
                if counts_as_failure {
                    self.failures += 1;
                }
                let body = serde_json::to_string(&outcome.error_body().unwrap()).unwrap();
                (401, body)
            }
            PasscodeOutcome::Accepted => {
                let policy = EmbedPolicy::default();
                let files = self
                    .file_paths
                    .iter()
                    .zip(&self.jwes)
                    .map(|(path, jwe)| {
                        policy
                            .file_entry(
                                ContentType::SmartHealthCard,
                                jwe.clone(),
                                request.embedded_length_max,
                                || Ok(format!("{MOCK_BASE}/shl/{path}")),
                            )
                            .unwrap()
                    })
                    .collect();
                (200, serde_json::to_string(&Manifest::new(files)).unwrap())
            }
        }
    }

    /// `GET <location>`: the JWE.
    fn get_file(&self, location: &str) -> Option<&str> {
        let path = location.strip_prefix(&format!("{MOCK_BASE}/shl/"))?;
        let i = self.file_paths.iter().position(|p| p == path)?;
        self.jwes.get(i).map(String::as_str)
    }
}

fn request(passcode: Option<&str>, embedded_length_max: Option<u64>) -> Vec<u8> {
    serde_json::to_vec(&ManifestRequest {
        recipient: "vaxcred test".into(),
        passcode: passcode.map(str::to_owned),
        embedded_length_max,
    })
    .unwrap()
}

/// O.79–O.84 (passcode, 401 body, manifest, locations), Q.88: the validator's exchange.
#[test]
fn passcode_and_manifest_exchange_replays_the_validator_data() {
    let link = ShlLink::parse(&read_text("dev-tools/shlink-link-with-viewer.txt")).unwrap();
    let state = read_json(P_LINK_STATE);
    assert_eq!(
        state["link"].as_str().unwrap().trim(),
        read_text("dev-tools/shlink-link-with-viewer.txt").trim()
    );
    assert!(link.payload().flags().passcode());
    let mut server = Server::from_mock_state(&state);

    // Wrong passcode (the validator's `12345`): 401 with the remaining count, 9 → 8.
    let (status, body) = server.post_manifest(&request(Some("12345"), None));
    assert_eq!((status, body.as_str()), (401, r#"{"remainingAttempts":8}"#));
    // No passcode at all: 401, not counted.
    let (status, body) = server.post_manifest(&request(None, None));
    assert_eq!((status, body.as_str()), (401, r#"{"remainingAttempts":8}"#));

    // Right passcode: the manifest the mock server returned, byte for byte.
    let (status, body) = server.post_manifest(&request(Some("1234"), None));
    assert_eq!(status, 200);
    assert_eq!(body, read_text("dev-tools/shlink-manifest.txt").trim());
    let manifest = Manifest::parse(body.as_bytes()).unwrap();
    let second = serde_json::to_string(manifest.files.get(1).unwrap()).unwrap();
    assert_eq!(
        second,
        read_text("dev-tools/shlink-manifest-file.txt").trim()
    );
    let one_file: ManifestFile =
        serde_json::from_slice(&read_bytes("dev-tools/shlink-manifest-file.txt")).unwrap();
    assert_eq!(manifest.files.get(1), Some(&one_file));

    // Receiver: fetch every location and decrypt with the link's key.
    let mut cards = 0;
    for file in &manifest.files {
        assert_eq!(file.content_type, ContentType::SmartHealthCard);
        let jwe = server.get_file(file.location.as_deref().unwrap()).unwrap();
        let decrypted = decrypt(link.payload().key(), jwe).unwrap();
        assert_eq!(decrypted.content_type, None);
        assert_eq!(decrypted.kid, Some(link.payload().key().thumbprint()));
        cards += assert_is_signed_card_file(&decrypted.plaintext);
    }
    assert_eq!(cards, 2);

    // Same exchange asking for embedded files: the JWEs come inline (O.83).
    let (status, body) = server.post_manifest(&request(Some("1234"), Some(4096)));
    assert_eq!(status, 200);
    let manifest = Manifest::parse(body.as_bytes()).unwrap();
    for file in &manifest.files {
        assert_eq!(file.location, None);
        let jwe = file.embedded.as_deref().unwrap();
        assert!(jwe.len() <= 4096);
        assert_is_signed_card_file(&decrypt(link.payload().key(), jwe).unwrap().plaintext);
    }
    // A bound below the files' size: locations again, never an oversize embed.
    let (_, body) = server.post_manifest(&request(Some("1234"), Some(1000)));
    let manifest = Manifest::parse(body.as_bytes()).unwrap();
    assert!(manifest
        .files
        .iter()
        .all(|f| f.embedded.is_none() && f.location.is_some()));

    // Burn the lifetime budget: 8 more wrong passcodes count down to 0, then the link is gone
    // (404) even for the right passcode (O.80, O.81).
    for remaining in (0..8).rev() {
        let (status, body) = server.post_manifest(&request(Some("0000"), None));
        assert_eq!(status, 401);
        assert_eq!(body, format!(r#"{{"remainingAttempts":{remaining}}}"#));
    }
    assert_eq!(server.post_manifest(&request(Some("1234"), None)).0, 404);
    assert_eq!(server.post_manifest(&request(Some("0000"), None)).0, 404);
    assert_eq!(server.failures, 10);
}

/// P.87, Q.88: the `U` link's single file, fetched directly (no manifest), decrypts to a card.
#[test]
fn direct_file_link_decrypts_its_file() {
    let link = ShlLink::parse(&read_text("dev-tools/shlink-link-direct.txt")).unwrap();
    let state = read_json(U_LINK_STATE);
    let payload = link.payload();
    assert!(payload.flags().direct_file());
    let path = state["filePaths"][0].as_str().unwrap();
    assert_eq!(payload.url(), format!("{MOCK_BASE}/shl/{path}"));
    let jwes = state["jweFiles"].as_array().unwrap();
    assert_eq!(jwes.len(), 1);
    let decrypted = decrypt(payload.key(), jwes[0].as_str().unwrap()).unwrap();
    assert_eq!(decrypted.kid, Some(payload.key().thumbprint()));
    assert_eq!(assert_is_signed_card_file(&decrypted.plaintext), 1);

    // The `P` link's key does not open the `U` link's file.
    let other = ShlLink::parse(&read_text("dev-tools/shlink-link.txt")).unwrap();
    assert!(decrypt(other.payload().key(), jwes[0].as_str().unwrap()).is_err());
}
