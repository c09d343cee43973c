//! The SMART launch end to end against the mock EHR: the full launch, a wrong `state`, a wrong
//! PKCE verifier (code injected from another launch), an `iss` not on the allowlist, an expired
//! token refreshed, the EHR returning 503, v1 scope fallback, public clients, CSRF, no eligible dose.

use std::sync::atomic::Ordering;

use crate::helpers::{authorize, csrf_of, launch_to_doses, spawn, Browser, Options, RID_SECRET};
use crate::mock_ehr::{immunization, FHIR_USER, PATIENT_ID};

#[tokio::test]
async fn full_launch_shows_doses_and_issues_a_card_that_verifies() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;

    // What was asked of the EHR.
    let q = app.ehr.state.last_authorize.lock().unwrap().clone();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["aud"], app.ehr.state.fhir_base());
    assert_eq!(
        q["scope"],
        "launch openid fhirUser patient/Patient.rs patient/Immunization.rs"
    );
    assert_eq!(q["redirect_uri"], format!("{}/launch/callback", app.base));
    assert!(app.ehr.state.token_failures.lock().unwrap().is_empty());

    // The session cookie: opaque, HttpOnly, Secure, SameSite=Lax; no token in it.
    let set_cookie = browser.set_cookie_headers.first().unwrap().clone();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("at-"), "{set_cookie}");

    // The doses page: name, birth date, which doses go on the card and why not.
    let body = &doses.body;
    assert!(body.contains("Johnny Q. Anyperson"), "{body}");
    assert!(body.contains("1951-01-20"));
    assert_eq!(body.matches("✔ Yes").count(), 2, "{body}");
    assert!(body.contains("Recorded as not given"));
    assert!(body.contains("unspecified formulation"));
    assert!(body.contains("2 doses"));
    assert!(body.contains("<label") || !body.contains("<input type=\"text\""));

    // Issue: POST with CSRF → 303 to the card page → QR text that verifies.
    let csrf = csrf_of(body);
    let issued = browser
        .post(&format!("{}/launch/issue", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(issued.status, 303, "{}", issued.body);
    let card = browser.get(&format!("{}/launch/card", app.base)).await;
    assert_eq!(card.status, 200, "{}", card.body);
    assert!(card.body.contains("<svg"));
    let at = card.body.find("shc:/").unwrap();
    let qr_text: String = card.body[at..]
        .chars()
        .take_while(|c| {
            *c == 's' || *c == 'h' || *c == 'c' || *c == ':' || *c == '/' || c.is_ascii_digit()
        })
        .collect();
    let verification = app.verifier().verify_qr_texts(&[&qr_text]);
    assert!(
        verification.is_valid(),
        "{:?}",
        verification.all_problems().collect::<Vec<_>>()
    );
    // The sms form offers the mobile number from Patient.telecom.
    assert!(card.body.contains("+1 617 555 0199"));

    // The card is the patient's stored, active credential; its issuance is audited with the
    // clinician.
    let patient = app
        .db
        .store
        .find_patient_by_identifier(
            &app.issuer_id,
            &app.ehr.state.fhir_base(),
            &format!("Patient/{PATIENT_ID}"),
        )
        .await
        .unwrap()
        .expect("the launch applied the patient to the store");
    let creds = app.db.store.list_credentials(&patient.id).await.unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].status, store::CredentialStatus::Active);
    assert!(qr_text.len() > 100 && shc::qr::numeric_text(&creds[0].artefact).unwrap() == qr_text);
    // Signed like the issue worker's cards: with the patient's revocation id under this key, so
    // the CRL can revoke a card issued at the point of care too.
    assert_eq!(
        creds[0].rid.as_deref(),
        Some(shc::rid::derive(RID_SECRET, &creds[0].kid, &patient.id).as_str())
    );
    let audit = app
        .db
        .store
        .list_audit("credential", &creds[0].id)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, FHIR_USER);
    assert_eq!(audit[0].action, "credential.issue.launch");

    // A second click for the same doses returns the same card: nothing is issued twice.
    let csrf = csrf_of(&card.body);
    let again = browser
        .post(&format!("{}/launch/issue", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(
        app.db
            .store
            .list_credentials(&patient.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Download: the .smart-health-card file verifies too.
    let file = browser
        .post(&format!("{}/launch/download", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.content_type, "application/smart-health-card");
    assert!(app.verifier().verify_file(&file.body, None).is_valid());

    // Print: the issuer's one-page PDF.
    let print = browser
        .post(&format!("{}/launch/print", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(print.status, 200, "{}", print.body);
    assert_eq!(print.content_type, "application/pdf");
    assert!(print.body.starts_with("%PDF-"));
}

#[tokio::test]
async fn sms_sends_a_health_link_and_the_wallet_gets_the_card() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;
    let csrf = csrf_of(&doses.body);
    browser
        .post(&format!("{}/launch/issue", app.base), &[("csrf", &csrf)])
        .await;
    let card = browser.get(&format!("{}/launch/card", app.base)).await;
    let csrf = csrf_of(&card.body);
    let sms_url = format!("{}/launch/sms", app.base);

    // Unconfirmed number or a number that is not one: explained, nothing sent.
    let page = browser
        .post(&sms_url, &[("csrf", &csrf), ("phone", "+1 617 555 0199")])
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Please check what you typed"));
    let page = browser
        .post(
            &sms_url,
            &[("csrf", &csrf), ("phone", "12"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(page.status, 400);

    // The number as typed on the page (edited format), confirmed.
    let page = browser
        .post(
            &sms_url,
            &[
                ("csrf", &csrf),
                ("phone", "(617) 555-0199"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Text message sent"));
    app.receivers
        .wait_until("the SMS", |g| !g.sms.lock().unwrap().is_empty())
        .await;
    let sms = app.receivers.got.sms.lock().unwrap()[0].clone();
    assert_eq!(sms["To"], "+16175550199");
    assert!(
        sms["Body"].contains(&format!("{}/shl/view#shlink:/", app.base)),
        "{sms:?}"
    );
    assert_eq!(app.receivers.got.sms.lock().unwrap().len(), 1);

    // Wallet: registered, then the card is pushed, signed the Standard Webhooks way.
    let hook = format!("{}/hook", app.receivers.base);
    let page = browser
        .post(
            &format!("{}/launch/wallet", app.base),
            &[("csrf", &csrf), ("url", &hook)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page.body.find("whsec_").unwrap();
    let secret: String = page.body[at..].chars().take_while(|c| *c != '"').collect();
    app.receivers
        .wait_until("the wallet push", |g| !g.pushes.lock().unwrap().is_empty())
        .await;
    let (headers, body) = app.receivers.got.pushes.lock().unwrap()[0].clone();
    let ts: i64 = headers["webhook-timestamp"].parse().unwrap();
    delivery::webhook::WebhookSecret::parse(&secret)
        .unwrap()
        .verify(
            &headers["webhook-id"],
            ts,
            &body,
            &headers["webhook-signature"],
            ts,
            300,
        )
        .unwrap();
    assert!(app
        .verifier()
        .verify_file(std::str::from_utf8(&body).unwrap(), None)
        .is_valid());

    // A wallet URL the SSRF guard refuses is explained, not registered.
    let page = browser
        .post(
            &format!("{}/launch/wallet", app.base),
            &[("csrf", &csrf), ("url", "http://10.0.0.1/hook")],
        )
        .await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn wrong_state_is_refused_and_no_session_becomes_active() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    let callback = authorize(&app, &mut browser, &app.launch_url()).await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("could not be verified"), "{}", page.body);
    assert!(page.body.contains("launch-state-mismatch"));
    assert_eq!(app.ehr.state.code_grants.load(Ordering::SeqCst), 0);
    // The state is single-use: the real callback no longer works either.
    let again = browser.get(&callback).await;
    assert_eq!(again.status, 400);
    let doses = browser.get(&format!("{}/launch/patient", app.base)).await;
    assert_eq!(doses.status, 401);
    assert!(doses.body.contains("session has ended"));
}

#[tokio::test]
async fn a_code_from_another_launch_fails_the_pkce_check() {
    let app = spawn(Options::default()).await;
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    let victim_callback = authorize(&app, &mut victim, &app.launch_url()).await;
    let attacker_callback = authorize(&app, &mut attacker, &app.launch_url()).await;
    // The victim's browser receives the attacker's code with its own (valid) state.
    let code = url::Url::parse(&attacker_callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut url = url::Url::parse(&victim_callback).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    url.query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let page = victim.get(url.as_str()).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("refused the sign-in"));
    assert_eq!(
        app.ehr.state.token_failures.lock().unwrap().as_slice(),
        ["pkce verifier"]
    );
    assert_eq!(
        victim
            .get(&format!("{}/launch/patient", app.base))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn an_iss_not_on_the_allowlist_is_refused_before_any_request() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=x",
            app.base
        ))
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("not connected"));
    assert!(browser.cookie.is_none());
    // A prefix of an allowed base is not allowed either.
    let base = app.ehr.state.fhir_base();
    let prefix = &base[..base.len() - 1];
    let page = browser
        .get(&format!("{}/launch?iss={prefix}&launch=x", app.base))
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(app.ehr.state.discovery_hits.load(Ordering::SeqCst), 0);
    // Missing parameters are explained too.
    let page = browser.get(&format!("{}/launch", app.base)).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("incomplete"));
    // So are malformed forms.
    let page = browser
        .http
        .post(format!("{}/launch/issue", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .unwrap();
    assert!(page.status().is_client_error());
    assert!(page.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn an_expired_token_is_refreshed() {
    let app = spawn(Options::default()).await;
    // Tokens that are already expired when they arrive: the first read must refresh.
    app.ehr.state.expires_in.store(0, Ordering::SeqCst);
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;
    assert!(doses.body.contains("Anyperson"));
    assert!(app.ehr.state.refresh_grants.load(Ordering::SeqCst) >= 1);

    // A token the EHR revoked early (401 on read) is refreshed once and the read retried.
    app.ehr.state.expires_in.store(3600, Ordering::SeqCst);
    browser.get(&format!("{}/launch/patient", app.base)).await;
    let before = app.ehr.state.refresh_grants.load(Ordering::SeqCst);
    app.ehr.state.expire_access_tokens();
    let doses = browser.get(&format!("{}/launch/patient", app.base)).await;
    assert_eq!(doses.status, 200, "{}", doses.body);
    assert_eq!(
        app.ehr.state.refresh_grants.load(Ordering::SeqCst),
        before + 1
    );
    assert!(app.ehr.state.token_failures.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_ehr_returning_503_is_explained() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    launch_to_doses(&app, &mut browser).await;
    app.ehr.state.unavailable.store(true, Ordering::SeqCst);
    let page = browser.get(&format!("{}/launch/patient", app.base)).await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("The EHR is not answering"),
        "{}",
        page.body
    );
    assert!(page.content_type.starts_with("text/html"));
    // At launch time (discovery) as well.
    let mut other = Browser::new();
    let page = other.get(&app.launch_url()).await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("launch-ehr-unavailable"));
    // And it recovers.
    app.ehr.state.unavailable.store(false, Ordering::SeqCst);
    assert_eq!(
        browser
            .get(&format!("{}/launch/patient", app.base))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn v1_only_servers_get_v1_scopes_and_public_clients_work() {
    let app = spawn(Options {
        public_client: true,
        ..Options::default()
    })
    .await;
    app.ehr.state.v1_only.store(true, Ordering::SeqCst);
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;
    assert!(doses.body.contains("Anyperson"));
    let q = app.ehr.state.last_authorize.lock().unwrap().clone();
    assert_eq!(
        q["scope"],
        "launch openid fhirUser patient/Patient.read patient/Immunization.read"
    );
    // A public client publishes no JWKS.
    assert_eq!(
        browser
            .get(&format!("{}/launch/jwks.json", app.base))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn standalone_launch_asks_for_launch_patient() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    let callback = authorize(
        &app,
        &mut browser,
        &format!("{}/launch/standalone", app.base),
    )
    .await;
    let q = app.ehr.state.last_authorize.lock().unwrap().clone();
    assert!(q["scope"].starts_with("launch/patient "));
    assert!(!q.contains_key("launch"));
    assert_eq!(browser.get(&callback).await.status, 303);
    assert_eq!(
        browser
            .get(&format!("{}/launch/patient", app.base))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn(Options::default()).await;
    let mut browser = Browser::new();
    launch_to_doses(&app, &mut browser).await;
    for form in [vec![], vec![("csrf", "wrong")]] {
        let page = browser
            .post(&format!("{}/launch/issue", app.base), &form)
            .await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(page.body.contains("The form expired"));
    }
    assert!(app
        .db
        .store
        .list_audit("ehr-patient", PATIENT_ID)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_patient_without_eligible_doses_gets_an_explanation_not_a_button() {
    let app = spawn(Options::default()).await;
    *app.ehr.state.immunizations.lock().unwrap() = vec![
        immunization("x-1", "not-done", "207", "Moderna", "2021-01-01", None),
        immunization("x-2", "completed", "03", "MMR", "1990-01-01", None),
    ];
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;
    assert!(
        doses.body.contains("no card can be issued"),
        "{}",
        doses.body
    );
    assert!(!doses.body.contains("id=\"issue\""));
    assert!(doses.body.contains("Recorded as not given"));
    assert!(doses.body.contains("not one the card covers"));

    // No Immunization at all: the patient is still shown, with a plain notice.
    *app.ehr.state.immunizations.lock().unwrap() = vec![];
    let doses = browser.get(&format!("{}/launch/patient", app.base)).await;
    assert_eq!(doses.status, 200, "{}", doses.body);
    assert!(doses.body.contains("Anyperson"));
    assert!(doses.body.contains("no vaccination record"));
}

#[tokio::test]
async fn the_app_built_from_the_platform_config_launches_and_prints() {
    let app = spawn(Options {
        from_config: true,
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new();
    let doses = launch_to_doses(&app, &mut browser).await;
    // The generated client key signed an assertion the EHR checked against /launch/jwks.json.
    assert!(app.ehr.state.token_failures.lock().unwrap().is_empty());
    assert!(app
        .db
        .dir
        .path()
        .join("data/launch-client-key.jwk.json")
        .exists());
    let csrf = csrf_of(&doses.body);
    let issued = browser
        .post(&format!("{}/launch/issue", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(issued.status, 303);
    let print = browser
        .post(&format!("{}/launch/print", app.base), &[("csrf", &csrf)])
        .await;
    assert_eq!(print.content_type, "application/pdf");
    // No delivery given: SMS is explained as not available here.
    let sms = browser
        .post(
            &format!("{}/launch/sms", app.base),
            &[
                ("csrf", &csrf),
                ("phone", "+16175550199"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(sms.status, 501);
    assert!(sms.body.contains("Not available here"));
}

#[tokio::test]
async fn an_assertion_the_registered_jwks_does_not_verify_is_refused() {
    let app = spawn(Options::default()).await;
    *app.ehr.state.jwks_url.lock().unwrap() =
        Some(format!("{}/other-jwks.json", app.ehr.state.base));
    let mut browser = Browser::new();
    let callback = authorize(&app, &mut browser, &app.launch_url()).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("refused the sign-in"));
    assert_eq!(
        app.ehr.state.token_failures.lock().unwrap().as_slice(),
        ["assertion signature"]
    );
}
