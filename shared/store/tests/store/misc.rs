//! Deliveries, review cases, staff, API tokens, audit.

use chrono::{Duration, Utc};
use store::{
    AttemptOutcome, CredentialFormat, CredentialStatus, DeliveryStatus, DoseStatus, NewApiToken,
    NewAuditEntry, NewCredential, NewReviewCase, NewStaff, ReviewKind, ReviewStatus, Store,
    StoreCredentialOutcome,
};

use crate::helpers::{both, change, dose, issuer, new_event};

async fn a_credential(store: &Store) -> String {
    let iss = issuer(store, "a").await;
    let e = new_event(store, "d1").await;
    let pid = match store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("i1", 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap()
    {
        store::ApplyOutcome::Applied { patient_id, .. } => patient_id,
        o => panic!("{o:?}"),
    };
    let c = NewCredential {
        issuer_id: iss,
        patient_id: pid,
        disease: "covid-19".to_owned(),
        doses_version: 1,
        format: CredentialFormat::Shc,
        artefact: "jws".to_owned(),
        kid: "k".to_owned(),
        rid: None,
        nbf: 1,
        exp: None,
        status: CredentialStatus::Active,
    };
    match store.store_credential(&c).await.unwrap() {
        StoreCredentialOutcome::Stored { credential_id, .. } => credential_id,
        o => panic!("{o:?}"),
    }
}

async fn deliveries_attempts(store: Store) {
    let cred = a_credential(&store).await;
    let d = store.ensure_delivery(&cred, "wallet").await.unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(
        store.ensure_delivery(&cred, "wallet").await.unwrap().id,
        d.id,
        "idempotent"
    );
    let sms = store.ensure_delivery(&cred, "sms").await.unwrap();

    let now = Utc::now();
    assert_eq!(
        store
            .due_deliveries(now + Duration::seconds(1), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let later = now + Duration::seconds(30);
    let d2 = store
        .record_delivery_attempt(
            &d.id,
            &AttemptOutcome::Retry {
                error_code: "http-500".to_owned(),
                next_attempt_at: later,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d2.status, d2.attempts, d2.last_error.as_deref()),
        (DeliveryStatus::Pending, 1, Some("http-500"))
    );
    let due: Vec<String> = store
        .due_deliveries(now + Duration::seconds(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, vec![sms.id.clone()]);
    assert_eq!(store.due_deliveries(later, 10).await.unwrap().len(), 2);

    let d3 = store
        .record_delivery_attempt(&d.id, &AttemptOutcome::Succeeded)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d3.status, d3.attempts, d3.next_attempt_at),
        (DeliveryStatus::Succeeded, 2, None)
    );
    assert!(
        store
            .record_delivery_attempt(&d.id, &AttemptOutcome::Succeeded)
            .await
            .unwrap()
            .is_none(),
        "settled"
    );
    // The attempt and its audit entry go in together.
    let entry = store::NewAuditEntry {
        actor: "delivery".to_owned(),
        action: "delivery.attempt".to_owned(),
        subject_kind: "delivery".to_owned(),
        subject_id: sms.id.clone(),
        details: serde_json::json!({ "error_code": "sms-invalid-number" }),
    };
    let f = store
        .record_delivery_attempt_audited(
            &sms.id,
            &AttemptOutcome::Failed {
                error_code: "sms-invalid-number".to_owned(),
            },
            Some(&entry),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, DeliveryStatus::Failed);
    let log = store.list_audit("delivery", &sms.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].details["error_code"], "sms-invalid-number");
    let all = store.list_deliveries(&cred).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.channel.as_str()).collect::<Vec<_>>(),
        vec!["sms", "wallet"]
    );
    assert!(store.due_deliveries(later, 10).await.unwrap().is_empty());
}
both!(deliveries_attempts);

async fn review_staff_tokens_audit(store: Store) {
    let case = store
        .open_review_case(&NewReviewCase {
            kind: ReviewKind::FixableReject,
            issuer_id: None,
            patient_id: None,
            event_id: Some("evt_1".to_owned()),
            credential_id: None,
            details: serde_json::json!({"code": "fhir-missing-date"}),
        })
        .await
        .unwrap();
    assert_eq!(
        store.list_open_review_cases(10).await.unwrap(),
        vec![case.clone()]
    );

    let staff = store
        .create_staff(&NewStaff {
            issuer_id: None,
            username: "rev1".to_owned(),
            display_name: "Reviewer".to_owned(),
            role: "reviewer".to_owned(),
            password_hash: Some("$argon2id$x".to_owned()),
        })
        .await
        .unwrap();
    let (found, hash) = store.get_staff_by_username("rev1").await.unwrap().unwrap();
    assert_eq!(
        (found, hash.as_deref()),
        (staff.clone(), Some("$argon2id$x"))
    );
    assert!(store
        .get_staff_by_username("nobody")
        .await
        .unwrap()
        .is_none());

    assert!(store
        .close_review_case(&case.id, ReviewStatus::Resolved, &staff.id)
        .await
        .unwrap());
    assert!(!store
        .close_review_case(&case.id, ReviewStatus::Dismissed, &staff.id)
        .await
        .unwrap());
    let closed = store.get_review_case(&case.id).await.unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.resolved_by.as_deref()),
        (ReviewStatus::Resolved, Some(staff.id.as_str()))
    );
    assert!(store.list_open_review_cases(10).await.unwrap().is_empty());
    assert_eq!(
        store
            .close_review_case(&case.id, ReviewStatus::Open, &staff.id)
            .await
            .unwrap_err()
            .code(),
        "store-invalid-input"
    );

    let tok = store
        .create_api_token(
            &NewApiToken {
                staff_id: Some(staff.id.clone()),
                scopes: "review".to_owned(),
                ..Default::default()
            },
            "secret-token",
        )
        .await
        .unwrap();
    let now = Utc::now();
    assert_eq!(
        store
            .authenticate_api_token("secret-token", now)
            .await
            .unwrap(),
        Some(tok.clone())
    );
    assert!(store
        .authenticate_api_token("wrong", now)
        .await
        .unwrap()
        .is_none());
    let expiring = store
        .create_api_token(
            &NewApiToken {
                expires_at: Some(now + Duration::seconds(60)),
                scopes: "x".to_owned(),
                ..Default::default()
            },
            "t2",
        )
        .await
        .unwrap();
    assert!(store
        .authenticate_api_token("t2", now)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .authenticate_api_token("t2", now + Duration::seconds(61))
        .await
        .unwrap()
        .is_none());
    assert!(store.revoke_api_token(&tok.id).await.unwrap());
    assert!(store
        .authenticate_api_token("secret-token", now)
        .await
        .unwrap()
        .is_none());
    assert!(store.revoke_api_token(&expiring.id).await.unwrap());
    assert!(store.disable_staff(&staff.id).await.unwrap());
    assert!(!store.disable_staff(&staff.id).await.unwrap());

    let a1 = store
        .append_audit(&NewAuditEntry {
            actor: staff.id.clone(),
            action: "review.resolve".to_owned(),
            subject_kind: "review_case".to_owned(),
            subject_id: case.id.clone(),
            details: serde_json::json!({}),
        })
        .await
        .unwrap();
    let a2 = store
        .append_audit(&NewAuditEntry {
            actor: "system".to_owned(),
            action: "review.reopen".to_owned(),
            subject_kind: "review_case".to_owned(),
            subject_id: case.id.clone(),
            details: serde_json::json!({"n": 1}),
        })
        .await
        .unwrap();
    assert!(a2 > a1);
    let log = store.list_audit("review_case", &case.id).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["review.resolve", "review.reopen"]
    );
}
both!(review_staff_tokens_audit);
