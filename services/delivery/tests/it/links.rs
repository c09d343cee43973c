//! SMART Health Link hosting per spec-checklist §N–Q: manifest with passcode, `location` files
//! valid ≤ 1 h, `embeddedLengthMax`, the lifetime passcode budget under 50 parallel wrong
//! guesses, 404 for expired links, `U` direct files, and re-encryption with the same key when
//! the credential is superseded.

use serde_json::Value;
use shl::{Manifest, ShlLink};

use crate::helpers::{new_version, seed, spawn_app, store_card, TestApp, TestDb, ADMIN_TOKEN};

async fn create(app: &TestApp, credential_id: &str, body: Value) -> ShlLink {
    let r = app
        .http
        .post(format!("{}/credentials/{credential_id}/shl", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let link = ShlLink::parse(created["viewer_link"].as_str().unwrap()).unwrap();
    assert_eq!(
        created["shlink"].as_str().unwrap(),
        link.payload().to_shlink()
    );
    link
}

async fn manifest(app: &TestApp, url: &str, body: Value) -> reqwest::Response {
    app.http.post(url).json(&body).send().await.unwrap()
}

fn decrypt_file(link: &ShlLink, jwe: &str) -> Value {
    let file = shl::decrypt(link.payload().key(), jwe).unwrap();
    assert_eq!(
        file.content_type.as_deref(),
        Some("application/smart-health-card")
    );
    serde_json::from_slice(&file.plaintext).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_location_and_embedding_follow_the_spec() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let link = create(
        &app,
        &s.credential_id,
        serde_json::json!({ "passcode": "1234", "label": "Vaccination record" }),
    )
    .await;
    let p = link.payload();
    assert!(p.flags().passcode());
    assert_eq!(p.label(), Some("Vaccination record"));
    assert!(p.url().len() <= 128);
    let id = p.url().rsplit('/').next().unwrap();
    assert_eq!(id.len(), 43, "256-bit manifest id");
    assert!(p.exp().unwrap() > chrono::Utc::now().timestamp() as u64);

    // Without embeddedLengthMax: a location, valid at most one hour.
    let r = manifest(
        &app,
        p.url(),
        serde_json::json!({ "recipient": "test", "passcode": "1234" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let m = Manifest::parse(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(m.files.len(), 1);
    let location = m.files[0].location.clone().unwrap();
    assert!(m.files[0].embedded.is_none());
    let exp: i64 = location
        .rsplit('/')
        .next()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(exp <= chrono::Utc::now().timestamp() + 3600);
    let r = app.http.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jose");
    let file = decrypt_file(&link, &r.text().await.unwrap());
    assert_eq!(
        file["verifiableCredential"][0].as_str().unwrap(),
        crate::helpers::example_jws()
    );
    // A forged location is refused.
    let forged = format!("{}x", &location[..location.len() - 1]);
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 404);

    // A large embeddedLengthMax embeds; a small one does not.
    let r = manifest(
        &app,
        p.url(),
        serde_json::json!({ "recipient": "t", "passcode": "1234", "embeddedLengthMax": 100_000 }),
    )
    .await;
    let m = Manifest::parse(&r.bytes().await.unwrap()).unwrap();
    let jwe = m.files[0].embedded.clone().unwrap();
    assert!(jwe.len() <= 100_000);
    decrypt_file(&link, &jwe);
    let r = manifest(
        &app,
        p.url(),
        serde_json::json!({ "recipient": "t", "passcode": "1234", "embeddedLengthMax": 50 }),
    )
    .await;
    let m = Manifest::parse(&r.bytes().await.unwrap()).unwrap();
    assert!(m.files[0].embedded.is_none() && m.files[0].location.is_some());

    // Missing passcode: 401, and no attempt spent (it is not a guess).
    for _ in 0..2 {
        let r = manifest(&app, p.url(), serde_json::json!({ "recipient": "t" })).await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            serde_json::json!({ "remainingAttempts": 10 })
        );
    }
    // Unknown link: 404.
    let r = manifest(
        &app,
        &format!("{}/shl/{}", app.base, "A".repeat(43)),
        serde_json::json!({ "recipient": "t" }),
    )
    .await;
    assert_eq!(r.status(), 404);
    // Malformed body: 400.
    let r = app
        .http
        .post(p.url())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_wrong_passcodes_spend_exactly_the_budget() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |s| s.shl_max_failures = 10).await;
    let link = create(
        &app,
        &s.credential_id,
        serde_json::json!({ "passcode": "right-one" }),
    )
    .await;
    let url = link.payload().url().to_owned();

    let mut tasks = Vec::new();
    for i in 0..50 {
        let (http, url) = (app.http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(&url)
                .json(&serde_json::json!({ "recipient": "attacker", "passcode": format!("guess-{i}") }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body)
        }));
    }
    let mut remaining = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (401, body) => remaining.push(body["remainingAttempts"].as_u64().unwrap()),
            (404, _) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..10).collect::<Vec<u64>>(),
        "exactly 10 counted failures, 9..0 left"
    );
    assert_eq!(refused, 40);

    // Disabled for good, even with the right passcode.
    let r = manifest(
        &app,
        &url,
        serde_json::json!({ "recipient": "owner", "passcode": "right-one" }),
    )
    .await;
    assert_eq!(r.status(), 404);
    let row = db
        .store
        .get_shl_link(url.rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.failures, row.active), (10, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_attempts_decrease_one_by_one() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |s| s.shl_max_failures = 3).await;
    let link = create(
        &app,
        &s.credential_id,
        serde_json::json!({ "passcode": "ok" }),
    )
    .await;
    let url = link.payload().url();
    for left in [2, 1] {
        let r = manifest(
            &app,
            url,
            serde_json::json!({ "recipient": "t", "passcode": "no" }),
        )
        .await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            serde_json::json!({ "remainingAttempts": left })
        );
    }
    // The right passcode still works (the count is not reset).
    let r = manifest(
        &app,
        url,
        serde_json::json!({ "recipient": "t", "passcode": "ok" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = manifest(
        &app,
        url,
        serde_json::json!({ "recipient": "t", "passcode": "no" }),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({ "remainingAttempts": 0 })
    );
    let r = manifest(
        &app,
        url,
        serde_json::json!({ "recipient": "t", "passcode": "ok" }),
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_deactivated_links_answer_404() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let key = shl::ShlKey::generate().unwrap();
    let id = shl::generate_manifest_id().unwrap();
    db.store
        .create_shl_link(&store::NewShlLink {
            id: id.clone(),
            credential_id: Some(s.credential_id.clone()),
            patient_id: Some(s.patient_id.clone()),
            key: key.to_base64url(),
            flags: String::new(),
            label: None,
            passcode_hash: None,
            max_failures: 10,
            expires_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        })
        .await
        .unwrap();
    let r = manifest(
        &app,
        &format!("{}/shl/{id}", app.base),
        serde_json::json!({ "recipient": "t" }),
    )
    .await;
    assert_eq!(r.status(), 404);

    let link = create(&app, &s.credential_id, serde_json::json!({})).await;
    let url = link.payload().url();
    assert!(link.payload().flags().is_empty());
    let r = manifest(&app, url, serde_json::json!({ "recipient": "t" })).await;
    assert_eq!(r.status(), 200, "no passcode needed without flag P");
    db.store
        .deactivate_shl_link(url.rsplit('/').next().unwrap())
        .await
        .unwrap();
    let r = manifest(&app, url, serde_json::json!({ "recipient": "t" })).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u_flag_links_serve_the_file_directly() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let link = create(
        &app,
        &s.credential_id,
        serde_json::json!({ "direct_file": true }),
    )
    .await;
    let p = link.payload();
    assert!(p.flags().direct_file());
    let r = app
        .http
        .get(format!("{}?recipient=Example%20Verifier", p.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jose");
    decrypt_file(&link, &r.text().await.unwrap());
    assert_eq!(
        app.http.get(p.url()).send().await.unwrap().status(),
        400,
        "recipient is required"
    );
    let r = manifest(&app, p.url(), serde_json::json!({ "recipient": "t" })).await;
    assert_eq!(r.status(), 404, "a U link has no manifest");

    // U + P is refused.
    let r = app
        .http
        .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "direct_file": true, "passcode": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_card_is_re_encrypted_with_the_same_key() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let link = create(&app, &s.credential_id, serde_json::json!({})).await;
    let body = serde_json::json!({ "recipient": "t", "embeddedLengthMax": 1_000_000 });
    let m1 = Manifest::parse(
        &manifest(&app, link.payload().url(), body.clone())
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let jwe1 = m1.files[0].embedded.clone().unwrap();
    let m1b = Manifest::parse(
        &manifest(&app, link.payload().url(), body.clone())
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m1b.files[0].embedded.as_ref(),
        Some(&jwe1),
        "encrypted once per credential"
    );

    new_version(&db.store, &s.issuer_id, 2).await;
    store_card(
        &db.store,
        &s.issuer_id,
        &s.patient_id,
        2,
        "header.newer-card.sig",
    )
    .await;

    let m2 = Manifest::parse(
        &manifest(&app, link.payload().url(), body)
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let jwe2 = m2.files[0].embedded.clone().unwrap();
    assert_ne!(jwe1, jwe2);
    let iv = |j: &str| j.split('.').nth(2).unwrap().to_owned();
    assert_ne!(iv(&jwe1), iv(&jwe2), "a fresh IV per encryption");
    assert_eq!(m2.files[0].status, Some(shl::FileStatus::CanChange));
    assert!(m2.files[0].last_updated.is_some());
    // The same key (from the original link) opens the new file.
    let file = decrypt_file(&link, &jwe2);
    assert_eq!(file["verifiableCredential"][0], "header.newer-card.sig");
    // No new link for a superseded card.
    let r = app
        .http
        .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}
