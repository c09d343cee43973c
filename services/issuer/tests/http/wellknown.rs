//! JWKS, CRL and smart-configuration as verifiers see them; revocation end to end; the official
//! validator as an outside judge of the served JWKS.

use std::path::Path;
use std::process::Command;

use store::Store;

use crate::helpers::{both, issue_card, patient, spawn, PUBLIC};

async fn jwks_members_thumbprints_and_cors(store: Store) {
    let app = spawn(store).await;
    let r = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let jwks: serde_json::Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for k in keys {
        assert_eq!(k["kty"], "EC");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "ES256");
        assert_eq!(k["crv"], "P-256");
        assert!(k.get("d").is_none());
        let thumb = shc::keys::thumbprint(k["x"].as_str().unwrap(), k["y"].as_str().unwrap());
        assert_eq!(k["kid"], thumb.as_str());
        assert!(
            shc::keys::check_jwk(k).is_empty(),
            "{:?}",
            shc::keys::check_jwk(k)
        );
        // Revocation is on: every key announces a CRL from the start.
        assert_eq!(k["crlVersion"], 1);
        let kid = k["kid"].as_str().unwrap();
        let r = app
            .client
            .get(app.url(&format!("/.well-known/crl/{kid}.json")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let crl: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            crl,
            serde_json::json!({"kid": kid, "method": "rid", "ctr": 1, "rids": []})
        );
    }
    let conf = app.get_json("/.well-known/smart-configuration").await;
    assert!(conf["capabilities"]
        .as_array()
        .unwrap()
        .contains(&"health-cards".into()));
    let r = app
        .client
        .get(app.url("/.well-known/crl/unknownkid.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
both!(jwks_members_thumbprints_and_cors);

async fn revoked_card_fails_against_served_jwks_and_crl(store: Store) {
    let app = spawn(store).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let file = app.card_file("", &cred).await;
    let before = app.verifier("", PUBLIC).await.verify_file(&file, None);
    assert!(
        before.is_valid(),
        "{:?}",
        before.all_problems().collect::<Vec<_>>()
    );

    let r = app
        .admin_post(
            &format!("/admin/credentials/{cred}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let jwks = app.get_json("/.well-known/jwks.json").await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(jwks["keys"][0]["crlVersion"], 2, "crlVersion moved");
    let crl = app.get_json(&format!("/.well-known/crl/{kid}.json")).await;
    assert_eq!(crl["ctr"], 2);
    assert_eq!(crl["rids"].as_array().unwrap().len(), 1);

    let after = app.verifier("", PUBLIC).await.verify_file(&file, None);
    assert!(!after.is_valid());
    assert!(after.has(shc::ProblemKind::Revoked));
    assert!(after.cards[0].revoked);
    // A revoked card is not served any more.
    let r = app.get_authed(&format!("/credentials/{cred}")).await;
    assert_eq!(r.status(), 410);
    // The audit trail has the action, by token kind, with ids only.
    let audit = app.store.list_audit("credential", &cred).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "credential.revoke");
    assert_eq!(audit[0].actor, "admin-config-token");
}
both!(revoked_card_fails_against_served_jwks_and_crl);

fn peers() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers");
    assert!(
        dir.join("setup.sh").is_file(),
        "the validator is missing at {}",
        dir.display()
    );
    dir
}

/// The official validator (health-cards-dev-tools) judges a card we serve with the JWKS we
/// serve (imported through its own key checks). Allowed: 130 only — the validator tries to
/// download the CRL that `crlVersion` announces from the test `iss`, a name that exists only
/// inside these tests (our own verifier checks the served CRLs above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_validator_accepts_served_jwks_and_card() {
    let db = crate::helpers::TestDb::sqlite().await;
    let app = spawn(db.store.clone()).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let jwks = app.get_json("/.well-known/jwks.json").await;
    let file = app.card_file("", &cred).await;
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let card_path = dir.path().join("card.smart-health-card");
    std::fs::write(&card_path, &file).unwrap();

    let (ok, text) = tokio::task::spawn_blocking(move || {
        let setup = Command::new("bash")
            .arg(peers().join("setup.sh"))
            .output()
            .expect("run setup.sh (needs bash, node, npm)");
        assert!(
            setup.status.success(),
            "validator setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let tools = String::from_utf8(setup.stdout).unwrap().trim().to_owned();
        let out = Command::new("node")
            .arg(peers().join("shc-validate.js"))
            .args([
                "--type",
                "healthcard",
                "--path",
                card_path.to_str().unwrap(),
            ])
            .args(["--jwks", jwks_path.to_str().unwrap(), "--allow", "130"])
            .env("SHC_DEV_TOOLS", &tools)
            .output()
            .expect("run node");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && text.contains("RESULT: PASS"), text)
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
}
