//! `$health-cards-issue` for the spec's parameter combinations, tokens and scopes.

use issuer::http::auth::{mint_patient_token, PatientTokenClaims};
use serde_json::{json, Value};
use store::Store;

use crate::helpers::{both, issue_card, patient, spawn, TestApp, PATIENT_SECRET, PUBLIC};

fn params(list: &[(&str, &str, &str)]) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": list.iter().map(|(n, k, v)| json!({ "name": n, *k: v })).collect::<Vec<_>>(),
    })
}

fn patient_token(patient: &str, scope: &str) -> String {
    let exp = chrono::Utc::now().timestamp() + 600;
    mint_patient_token(
        PATIENT_SECRET,
        &PatientTokenClaims {
            patient: patient.to_owned(),
            scope: scope.to_owned(),
            exp,
        },
    )
    .unwrap()
}

async fn call(app: &TestApp, pid: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/fhir/Patient/{pid}/$health-cards-issue")))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    if status == 200 || status >= 400 {
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json"));
    }
    (status, r.json().await.unwrap())
}

fn vcs(v: &Value) -> Vec<String> {
    v["parameter"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["name"] == "verifiableCredential")
                .map(|p| p["valueString"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn parameter_combinations(store: Store) {
    let app = spawn(store).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let stored = app
        .store
        .get_credential(&cred)
        .await
        .unwrap()
        .unwrap()
        .artefact;
    let token = patient_token(&pid, "launch/patient patient/Immunization.read");
    let t = Some(token.as_str());
    let verifier = app.verifier("", PUBLIC).await;

    // credentialType alone, current and legacy forms.
    for ty in [
        "Immunization",
        "https://smarthealth.cards#immunization",
        "#immunization",
    ] {
        let (s, out) = call(
            &app,
            &pid,
            t,
            &params(&[("credentialType", "valueUri", ty)]),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(out["resourceType"], "Parameters");
        assert_eq!(vcs(&out), std::slice::from_ref(&stored), "{ty}");
    }
    // Several types: AND.
    let (_, out) = call(
        &app,
        &pid,
        t,
        &params(&[
            ("credentialType", "valueUri", "Immunization"),
            ("credentialType", "valueUri", "Patient"),
        ]),
    )
    .await;
    assert_eq!(vcs(&out).len(), 1);
    // No match: a Parameters without `parameter`.
    for body in [
        params(&[("credentialType", "valueUri", "Observation")]),
        params(&[("credentialType", "valueUri", "#laboratory")]),
        params(&[
            ("credentialType", "valueUri", "Immunization"),
            ("credentialType", "valueUri", "Observation"),
        ]),
        params(&[
            ("credentialType", "valueUri", "Immunization"),
            (
                "credentialValueSet",
                "valueUri",
                "https://terminology.smarthealth.cards/ValueSet/immunization-orthopoxvirus-all",
            ),
        ]),
        params(&[
            ("credentialType", "valueUri", "Immunization"),
            ("_since", "valueDateTime", "2999"),
        ]),
    ] {
        let (s, out) = call(&app, &pid, t, &body).await;
        assert_eq!(s, 200);
        assert_eq!(out, json!({ "resourceType": "Parameters" }), "{body}");
    }
    // Value set of the card's group, an unknown value set (ignored), and an old _since: match.
    let (_, out) = call(
        &app,
        &pid,
        t,
        &params(&[
            ("credentialType", "valueUri", "Immunization"),
            (
                "credentialValueSet",
                "valueUri",
                "https://terminology.smarthealth.cards/ValueSet/immunization-covid-all",
            ),
            (
                "credentialValueSet",
                "valueUri",
                "https://example.org/ValueSet/unknown",
            ),
            ("_since", "valueDateTime", "2021-03"),
        ]),
    )
    .await;
    assert_eq!(vcs(&out), std::slice::from_ref(&stored));
    // includeIdentityClaim: name only → a fresh card without birthDate, still verifying.
    let (_, out) = call(
        &app,
        &pid,
        t,
        &params(&[
            ("credentialType", "valueUri", "Immunization"),
            ("includeIdentityClaim", "valueString", "Patient.name"),
        ]),
    )
    .await;
    let jws = vcs(&out).pop().unwrap();
    assert_ne!(jws, stored);
    let report = verifier.verify_jws(&jws);
    assert!(report.is_valid(), "{:?}", report.problems);
    let contents = report.contents.unwrap();
    assert!(contents.patient_name.is_some());
    assert_eq!(contents.birth_date, None);
    assert_eq!(contents.immunizations.len(), 2);
    // The whole answer verifies as a FHIR Parameters too.
    let (_, out) = call(
        &app,
        &pid,
        t,
        &params(&[("credentialType", "valueUri", "Immunization")]),
    )
    .await;
    assert!(verifier.verify_fhir_parameters(&out.to_string()).is_valid());

    // Missing credentialType: 400 OperationOutcome.
    let (s, out) = call(&app, &pid, t, &params(&[])).await;
    assert_eq!(s, 400);
    assert_eq!(out["resourceType"], "OperationOutcome");
}
both!(parameter_combinations);

async fn tokens_and_scopes(store: Store) {
    let app = spawn(store).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let other = patient(&app.store, &app.issuer.id).await;
    issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let body = params(&[("credentialType", "valueUri", "Immunization")]);

    // No token / a bad token: 401.
    let (s, out) = call(&app, &pid, None, &body).await;
    assert_eq!(s, 401);
    assert_eq!(out["resourceType"], "OperationOutcome");
    let (s, _) = call(&app, &pid, Some("not-a-token"), &body).await;
    assert_eq!(s, 401);
    // A patient outside the token's scope: 403 OperationOutcome, no card.
    let token = patient_token(&pid, "patient/Immunization.read");
    let (s, out) = call(&app, &other, Some(&token), &body).await;
    assert_eq!(s, 403);
    assert_eq!(out["resourceType"], "OperationOutcome");
    assert_eq!(out["issue"][0]["code"], "forbidden");
    // Right patient, wrong resource scope: 403.
    let token = patient_token(&pid, "patient/Observation.read");
    let (s, _) = call(&app, &pid, Some(&token), &body).await;
    assert_eq!(s, 403);
    // An API token with a system scope reads any patient; an unknown patient is 404.
    let api = "api-token-for-tests-abcdefghijklmnopqrstuvwxyz";
    app.store
        .create_api_token(
            &store::NewApiToken {
                source_id: None,
                staff_id: None,
                scopes: "system/Immunization.read".to_owned(),
                expires_at: None,
            },
            api,
        )
        .await
        .unwrap();
    let (s, out) = call(&app, &pid, Some(api), &body).await;
    assert_eq!(s, 200);
    assert_eq!(vcs(&out).len(), 1);
    let (s, out) = call(&app, &other, Some(api), &body).await;
    assert_eq!(s, 200);
    assert_eq!(out, json!({ "resourceType": "Parameters" }));
    let (s, _) = call(&app, "pat_unknown", Some(api), &body).await;
    assert_eq!(s, 404);
    // An API token may not use the admin endpoints without the admin scope.
    let r = app
        .client
        .get(app.url("/admin/issuers"))
        .bearer_auth(api)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
both!(tokens_and_scopes);
