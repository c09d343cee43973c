//! Several issuers per deployment: each with its own `iss`, keys, JWKS and CRLs under
//! `/issuers/{slug}`; admin endpoints need an admin token and are audited.

use store::Store;

use crate::helpers::{both, issue_card, patient, spawn, PUBLIC};

async fn second_issuer_has_its_own_keys_and_jwks(store: Store) {
    let app = spawn(store).await;
    // Without a token: 401; bad slug or iss: 400.
    let r = app
        .client
        .post(app.url("/admin/issuers"))
        .json(&serde_json::json!({"slug": "north", "display_name": "North Clinic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .admin_post(
            "/admin/issuers",
            serde_json::json!({"slug": "No Good", "display_name": "x"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .admin_post(
            "/admin/issuers",
            serde_json::json!({"slug": "north", "display_name": "North", "iss": "https://elsewhere.example/"}),
        )
        .await;
    assert_eq!(r.status(), 400);

    let r = app
        .admin_post(
            "/admin/issuers",
            serde_json::json!({"slug": "north", "display_name": "North Clinic"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let north: serde_json::Value = r.json().await.unwrap();
    let north_iss = format!("{PUBLIC}/issuers/north");
    assert_eq!(north["iss"], north_iss.as_str());
    let r = app
        .admin_post(
            "/admin/issuers/north/sources",
            serde_json::json!({"name": "north-ehr"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let source = app
        .store
        .get_source_by_name("north-ehr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source.issuer_id, north["id"].as_str().unwrap());

    let root = app.get_json("/.well-known/jwks.json").await;
    let sub = app.get_json("/issuers/north/.well-known/jwks.json").await;
    assert_eq!(sub["keys"].as_array().unwrap().len(), 1);
    assert_ne!(root["keys"][0]["kid"], sub["keys"][0]["kid"]);
    let conf = app
        .get_json("/issuers/north/.well-known/smart-configuration")
        .await;
    assert_eq!(conf["capabilities"][0], "health-cards");
    let r = app
        .client
        .get(app.url("/issuers/nobody/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A card of a north patient is signed by north's key and verifies under north's iss only.
    let north_issuer = app
        .store
        .get_issuer_by_slug("north")
        .await
        .unwrap()
        .unwrap();
    let pid = patient(&app.store, &north_issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &north_issuer,
        &pid,
    )
    .await;
    let file = app.card_file("/issuers/north", &cred).await;
    let v = app
        .verifier("/issuers/north", &north_iss)
        .await
        .verify_file(&file, None);
    assert!(v.is_valid(), "{:?}", v.all_problems().collect::<Vec<_>>());
    assert!(!app
        .verifier("", PUBLIC)
        .await
        .verify_file(&file, None)
        .is_valid());
    // The root issuer does not serve north's cards.
    let r = app.get_authed(&format!("/credentials/{cred}")).await;
    assert_eq!(r.status(), 404);
    // Revocation under north moves north's CRL only.
    let r = app
        .admin_post(
            &format!("/admin/credentials/{cred}/revoke"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let sub = app.get_json("/issuers/north/.well-known/jwks.json").await;
    assert_eq!(sub["keys"][0]["crlVersion"], 2);
    let root = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(root["keys"][0]["crlVersion"], 1);
    let v = app
        .verifier("/issuers/north", &north_iss)
        .await
        .verify_file(&file, None);
    assert!(v.has(shc::ProblemKind::Revoked));

    let listed: serde_json::Value = app.get_authed("/admin/issuers").await.json().await.unwrap();
    let slugs: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["default", "north"]);
    let audit = app
        .store
        .list_audit("issuer", north["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "issuer.create");
}
both!(second_issuer_has_its_own_keys_and_jwks);

#[test]
fn startup_refuses_an_iss_that_cannot_verify() {
    use issuer::http::check_iss;
    let err = check_iss("http://vax.example.org", "http://vax.example.org", false).unwrap_err();
    assert!(err.contains("https"), "{err}");
    let err = check_iss("https://vax.example.org/", "https://vax.example.org", false).unwrap_err();
    assert!(err.contains("'/'"), "{err}");
    let err = check_iss(
        "https://vax.example.org/x",
        "https://vax.example.org",
        false,
    )
    .unwrap_err();
    assert!(err.contains("/.well-known/jwks.json"), "{err}");
}
