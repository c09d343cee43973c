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
