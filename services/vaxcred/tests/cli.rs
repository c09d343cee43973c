//! The CLI as a newcomer uses it: `keys generate` → `issue` → `verify`, with exit codes, on real
//! files in a temp dir. Also the conformance examples through `verify` (revoked → non-zero).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vaxcred(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaxcred"))
        .args(args)
        .output()
        .expect("run vaxcred")
}

fn conformance() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        dir.is_dir(),
        "conformance vectors missing at {}",
        dir.display()
    );
    dir
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vaxcred-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key_in(dir: &Path) -> (PathBuf, PathBuf) {
    let out = vaxcred(&["keys", "generate", "--out", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".private.jwk.json"))
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    (private, dir.join("jwks.json"))
}

#[test]
fn generate_issue_verify_round_trip() {
    let dir = tempdir("roundtrip");
    let (private, jwks) = key_in(&dir);
    // Stdout of `keys generate` names the files but never prints the private key.
    let fixture = conformance().join("shc-examples/fixture-covid-vaccines-bundle.json");
    let out_dir = dir.join("out");
    let out = vaxcred(&[
        "issue",
        fixture.to_str().unwrap(),
        "--key",
        private.to_str().unwrap(),
        "--iss",
        "https://issuer.example.org",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "card.smart-health-card",
        "card.jws",
        "card.qr.txt",
        "card.qr.svg",
        "card.qr.png",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_to_string(out_dir.join("card.qr.svg"))
        .unwrap()
        .starts_with("<svg"));
    for artefact in [
        "card.smart-health-card",
        "card.jws",
        "card.qr.txt",
        "card.qr.png",
    ] {
        let out = vaxcred(&[
            "verify",
            out_dir.join(artefact).to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{artefact}: {stdout}");
        assert!(stdout.starts_with("VALID"), "{artefact}: {stdout}");
        assert!(
            stdout.contains("Anyperson") && stdout.contains("CVX 229 on 2022-09-05"),
            "{stdout}"
        );
    }
    // Another issuer's keys: not valid, exit 1.
    let other = tempdir("other");
    let (_, other_jwks) = key_in(&other);
    let out = vaxcred(&[
        "verify",
        out_dir.join("card.jws").to_str().unwrap(),
        "--jwks",
        other_jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown-kid"));
    // A tampered JWS: one payload character changed.
    let jws = std::fs::read_to_string(out_dir.join("card.jws")).unwrap();
    let mut bytes = jws.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.join("tampered.jws"), &bytes).unwrap();
    let out = vaxcred(&[
        "verify",
        dir.join("tampered.jws").to_str().unwrap(),
        "--jwks",
        jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn issue_refuses_bad_input_with_a_reason() {
    let dir = tempdir("bad");
    let (private, _) = key_in(&dir);
    std::fs::write(
        dir.join("obs.json"),
        r#"{"resourceType":"Observation","status":"final"}"#,
    )
    .unwrap();
    let out = vaxcred(&[
        "issue",
        dir.join("obs.json").to_str().unwrap(),
        "--key",
        private.to_str().unwrap(),
        "--iss",
        "https://issuer.example.org",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("wrong-resource-type"));
    // An http `iss` breaks rule 2: refused.
    let fixture = conformance().join("shc-examples/fixture-covid-vaccines-bundle.json");
    let out = vaxcred(&[
        "issue",
        fixture.to_str().unwrap(),
        "--key",
        private.to_str().unwrap(),
        "--iss",
        "http://issuer.example.org",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

#[test]
fn verify_reports_revoked_example_with_its_crl() {
    let dir = conformance().join("shc-examples/spec-site");
    let out = vaxcred(&[
        "verify",
        dir.join("example-03-e-file.smart-health-card")
            .to_str()
            .unwrap(),
        "--jwks",
        dir.join("issuer-jwks.public.json").to_str().unwrap(),
        "--crl",
        dir.join("issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json")
            .to_str()
            .unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["report"]["cards"][0]["revoked"], true);
    // Example 00 (not revoked) with the CRL: valid.
    let out = vaxcred(&[
        "verify",
        dir.join("example-00-e-file.smart-health-card")
            .to_str()
            .unwrap(),
        "--jwks",
        dir.join("issuer-jwks.public.json").to_str().unwrap(),
        "--crl",
        dir.join("issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The chunked example 02, three QR texts given in scrambled order.
    let files: Vec<String> = [2, 0, 1]
        .iter()
        .map(|k| {
            dir.join(format!("example-02-f-qr-code-numeric-value-{k}.txt"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["verify"];
    args.extend(files.iter().map(String::as_str));
    let jwks = dir.join("issuer-jwks.public.json").display().to_string();
    let crl = dir
        .join("issuer-crl-3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json")
        .display()
        .to_string();
    args.extend(["--jwks", &jwks, "--crl", &crl]);
    let out = vaxcred(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("qr-chunking-deprecated"));
}
