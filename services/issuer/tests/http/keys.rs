//! Rotation: new cards use the new key, old cards keep verifying while their key is published;
//! retire destroys the private key but keeps the public one; revoke removes it from the JWKS.

use store::Store;

use crate::helpers::{both, issue_card, patient, spawn, PUBLIC};

async fn rotation_retire_and_revoke(store: Store) {
    let app = spawn(store).await;
    let keys = app.keys.as_key_store();
    let pid = patient(&app.store, &app.issuer.id).await;
    let old_cred = issue_card(&app.store, keys.as_ref(), &app.issuer, &pid).await;
    let old_file = app.card_file("", &old_cred).await;
    let old_kid = keys.active_signer(&app.issuer.id).unwrap().kid().to_owned();

    let r = app
        .admin_post("/admin/issuers/default/keys/rotate", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let new_kid = r.json::<serde_json::Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    // The running key store signs with the new key at once.
    assert_eq!(keys.active_signer(&app.issuer.id).unwrap().kid(), new_kid);

    let jwks = app.get_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));

    // A new card for another patient uses the new key; both verify.
    let pid2 = patient(&app.store, &app.issuer.id).await;
    let new_cred = issue_card(&app.store, keys.as_ref(), &app.issuer, &pid2).await;
    assert_eq!(
        app.store
            .get_credential(&new_cred)
            .await
            .unwrap()
            .unwrap()
            .kid,
        new_kid
    );
    let new_file = app.card_file("", &new_cred).await;
    let verifier = app.verifier("", PUBLIC).await;
    assert!(verifier.verify_file(&old_file, None).is_valid());
    assert!(verifier.verify_file(&new_file, None).is_valid());

    // The active key cannot be retired; the old one can, and stays published.
    let r = app
        .admin_post(
            &format!("/admin/issuers/default/keys/{new_kid}/retire"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = app
        .admin_post(
            &format!("/admin/issuers/default/keys/{old_kid}/retire"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let key_file = app
        ._dir
        .path()
        .join("default")
        .join(format!("{old_kid}.jwk.json"));
    assert!(!key_file.exists(), "retired private key destroyed");
    let verifier = app.verifier("", PUBLIC).await;
    assert!(verifier.verify_file(&old_file, None).is_valid());

    // Revoke the old key: gone from the JWKS, its cards fail; the new one still verifies.
    let r = app
        .admin_post(
            &format!("/admin/issuers/default/keys/{old_kid}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let jwks = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], new_kid.as_str());
    let verifier = app.verifier("", PUBLIC).await;
    assert!(!verifier.verify_file(&old_file, None).is_valid());
    assert!(verifier.verify_file(&new_file, None).is_valid());

    // Revoking the active key rotates first, so the issuer keeps signing.
    let r = app
        .admin_post(
            &format!("/admin/issuers/default/keys/{new_kid}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let third = body["new_active_kid"].as_str().unwrap();
    assert_eq!(keys.active_signer(&app.issuer.id).unwrap().kid(), third);
    let listed: serde_json::Value = app
        .get_authed("/admin/issuers/default/keys")
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert!(statuses.contains(&(old_kid.as_str(), "revoked")));
    assert!(statuses.contains(&(new_kid.as_str(), "revoked")));
    assert!(statuses.contains(&(third, "active")));
    let audit = app.store.list_audit("signing_key", &old_kid).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["key.retire", "key.revoke"]);
}
both!(rotation_retire_and_revoke);
