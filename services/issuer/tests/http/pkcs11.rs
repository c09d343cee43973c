//! The PKCS#11 key store against SoftHSM2 (Debian `softhsm2`): keys generated on the token sign
//! cards that verify with the JWKS the server serves; rotation works there too.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use issuer::keys::ManagedKeys;
use issuer::pkcs11::{Pkcs11Config, Pkcs11KeyStore};

use crate::helpers::{issue_card, patient, spawn_with, TestDb, PUBLIC};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token in a temp dir. `SOFTHSM2_CONF` is process-wide, so this is the only
/// test in the binary that sets it.
fn softhsm_token(dir: &Path, label: &str, pin: &str) {
    assert!(
        Path::new(MODULE).is_file(),
        "SoftHSM2 is missing: apt-get install softhsm2 (.ci/run does)"
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            "12345678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn softhsm_keys_sign_cards_that_verify_with_the_served_jwks() {
    let dir = tempfile::tempdir().unwrap();
    softhsm_token(dir.path(), "vaxcred-test", "4321");
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let issuer = issuer::issuers::ensure_default_issuer(&store, PUBLIC, "Test General Hospital")
        .await
        .unwrap();
    let config = Pkcs11Config {
        module: Path::new(MODULE),
        token_label: "vaxcred-test",
        pin: "4321",
    };
    let hsm = Pkcs11KeyStore::open(&config, &store, std::slice::from_ref(&issuer))
        .await
        .unwrap();
    let app = spawn_with(store.clone(), Some(ManagedKeys::Pkcs11(Arc::new(hsm)))).await;
    let keys = app.keys.as_key_store();

    let jwks = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let k = &jwks["keys"][0];
    assert_eq!(
        k["kid"].as_str().unwrap(),
        shc::keys::thumbprint(k["x"].as_str().unwrap(), k["y"].as_str().unwrap())
    );
    let stored = store.list_signing_keys(&issuer.id).await.unwrap();
    assert_eq!(stored[0].key_store, "pkcs11");

    let pid = patient(&store, &issuer.id).await;
    let cred = issue_card(&store, keys.as_ref(), &issuer, &pid).await;
    let file = app.card_file("", &cred).await;
    let v = app.verifier("", PUBLIC).await.verify_file(&file, None);
    assert!(v.is_valid(), "{:?}", v.all_problems().collect::<Vec<_>>());

    // Rotation on the token: new key signs, the old card still verifies.
    let r = app
        .admin_post("/admin/issuers/default/keys/rotate", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let new_kid = r.json::<serde_json::Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(keys.active_signer(&issuer.id).unwrap().kid(), new_kid);
    let pid2 = patient(&store, &issuer.id).await;
    let cred2 = issue_card(&store, keys.as_ref(), &issuer, &pid2).await;
    let file2 = app.card_file("", &cred2).await;
    let verifier = app.verifier("", PUBLIC).await;
    assert!(verifier.verify_file(&file, None).is_valid());
    assert!(verifier.verify_file(&file2, None).is_valid());

    // A second open of the same token finds the same keys and the database's active one.
    let again = Pkcs11KeyStore::open(&config, &store, std::slice::from_ref(&issuer))
        .await
        .unwrap();
    use issuer::keystore::KeyStore as _;
    assert_eq!(again.active_signer(&issuer.id).unwrap().kid(), new_kid);
    assert_eq!(again.public_jwks(&issuer.id).unwrap().keys.len(), 2);
}
