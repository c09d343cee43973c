//! The official SMART Health Cards validator (`../shared/peers`, smart-on-fhir/health-cards-dev-tools)
//! as an outside judge of every artefact vaxcred emits: JWS, `.smart-health-card` file, `shc:/`
//! QR text, and the issuer JWKS. Our own verifier shares our blind spots; this one does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn peers() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers");
    assert!(
        dir.join("setup.sh").is_file(),
        "the validator is missing at {}",
        dir.display()
    );
    dir
}

/// Builds the validator (idempotent, ~1 min the first time) and returns its directory.
fn dev_tools() -> String {
    let out = Command::new("bash")
        .arg(peers().join("setup.sh"))
        .output()
        .expect("run setup.sh (needs bash, node, npm)");
    assert!(
        out.status.success(),
        "validator setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn validate(dev_tools: &str, kind: &str, path: &Path, jwks: &Path) -> (bool, String) {
    let out = Command::new("node")
        .arg(peers().join("shc-validate.js"))
        .args([
            "--type",
            kind,
            "--path",
            path.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ])
        .env("SHC_DEV_TOOLS", dev_tools)
        .output()
        .expect("run node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("RESULT: PASS"), text)
}

#[test]
fn official_validator_accepts_every_artefact() {
    let tools = dev_tools();
    let dir = std::env::temp_dir().join(format!("vaxcred-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_vaxcred");
    let out = Command::new(bin)
        .args(["keys", "generate", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".private.jwk.json"))
        .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/shc-examples/fixture-covid-vaccines-bundle.json");
    let out = Command::new(bin)
        .args([
            "issue",
            fixture.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args([
            "--iss",
            "https://vaxcred.example.org/issuer",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwks = dir.join("jwks.json");
    for (kind, file) in [
        ("jws", "card.jws"),
        ("healthcard", "card.smart-health-card"),
        ("qrnumeric", "card.qr.txt"),
    ] {
        let (pass, log) = validate(&tools, kind, &dir.join(file), &jwks);
        assert!(pass, "validator rejected our {file}:\n{log}");
        println!("official validator: {file} PASS");
    }
    // And it rejects a card whose signature we broke: the judge is awake.
    let jws = std::fs::read_to_string(dir.join("card.jws")).unwrap();
    let (head, sig) = jws.rsplit_once('.').unwrap();
    let flipped = format!(
        "{head}.{}{}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    std::fs::write(dir.join("bad.jws"), flipped).unwrap();
    let (pass, _) = validate(&tools, "jws", &dir.join("bad.jws"), &jwks);
    assert!(!pass, "the validator accepted a broken signature");
}
