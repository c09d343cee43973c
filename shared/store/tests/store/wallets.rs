//! Wallet endpoints: registration, listing per patient, disabling.

use store::{NewWalletEndpoint, Store};

use crate::helpers::{both, change, dose, issuer, new_event};

async fn wallet_endpoints_register_list_and_disable(store: Store) {
    let iss = issuer(&store, "wal").await;
    let evt = new_event(&store, "m-wal").await;
    let outcome = store
        .apply_event(&change(
            &evt,
            &iss,
            "P-WAL",
            vec![dose("d1", 1, store::DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let store::ApplyOutcome::Applied { patient_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let new = NewWalletEndpoint {
        patient_id: patient_id.clone(),
        url: "https://wallet.example.org/hook".to_owned(),
        secret: "whsec_c2VjcmV0".to_owned(),
    };
    let a = store.create_wallet_endpoint(&new).await.unwrap();
    let b = store.create_wallet_endpoint(&new).await.unwrap();
    assert!(a.id.starts_with("wal_"));
    assert!(
        !format!("{a:?}").contains("whsec_"),
        "Debug must not print the secret"
    );
    assert_eq!(
        store.get_wallet_endpoint(&a.id).await.unwrap(),
        Some(a.clone())
    );
    let listed = store.list_wallet_endpoints(&patient_id).await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    assert!(store.disable_wallet_endpoint(&a.id).await.unwrap());
    assert!(!store.disable_wallet_endpoint(&a.id).await.unwrap());
    let listed = store.list_wallet_endpoints(&patient_id).await.unwrap();
    assert_eq!(listed, vec![b]);

    // Unknown patient: a constraint error, not a dangling row.
    let err = store
        .create_wallet_endpoint(&NewWalletEndpoint {
            patient_id: "pat_missing".to_owned(),
            ..new
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store-constraint");
}
both!(wallet_endpoints_register_list_and_disable);

async fn due_deliveries_are_claimed_once(store: Store) {
    let iss = issuer(&store, "claim").await;
    let evt = new_event(&store, "m-claim").await;
    let outcome = store
        .apply_event(&change(
            &evt,
            &iss,
            "P-CLAIM",
            vec![dose("d1", 1, store::DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let store::ApplyOutcome::Applied { patient_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let cred = match store
        .store_credential(&store::NewCredential {
            issuer_id: iss.clone(),
            patient_id,
            disease: "covid-19".to_owned(),
            doses_version: 1,
            format: store::CredentialFormat::Shc,
            artefact: "jws".to_owned(),
            kid: "kid".to_owned(),
            rid: None,
            nbf: 0,
            exp: None,
            status: store::CredentialStatus::Active,
        })
        .await
        .unwrap()
    {
        store::StoreCredentialOutcome::Stored { credential_id, .. } => credential_id,
        o => panic!("{o:?}"),
    };
    store.ensure_delivery(&cred, "wallet:x").await.unwrap();
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let due = store.due_deliveries(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let lease = now + chrono::Duration::seconds(60);
    // Two pollers saw the same row: exactly one wins, in parallel too.
    let (a, b) = tokio::join!(
        store.claim_delivery(&due[0].id, due[0].next_attempt_at, lease),
        store.claim_delivery(&due[0].id, due[0].next_attempt_at, lease),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one claim succeeds");
    assert!(
        store.due_deliveries(now, 10).await.unwrap().is_empty(),
        "leased"
    );
    assert_eq!(
        store.due_deliveries(lease, 10).await.unwrap().len(),
        1,
        "due again after the lease"
    );
}
both!(due_deliveries_are_claimed_once);
